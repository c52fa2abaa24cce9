"""deferred foreign keys and category check: rows written in one transaction may land in any order

An outbox row names the thread it tells about, a message id the thread it came with, an
attachment its thread. The unit of work (or a hand-written statement) may write them in any
order inside the transaction; checking those references at COMMIT instead of per statement
makes every order safe while still refusing a dangling reference. The category list, until
now only in the code, becomes a database check.

Revision ID: a51d0c7e2f93
Revises: 3e6f1b2c8d45
Create Date: 2026-12-03 08:00:00
"""
from alembic import op

revision = 'a51d0c7e2f93'
down_revision = '3e6f1b2c8d45'
branch_labels = None
depends_on = None

DEFERRED = [  # (table, column, referred table)
    ("outbox", "ticket_id", "tickets"),
    ("outbox", "thread_id", "threads"),
    ("message_ids", "ticket_id", "tickets"),
    ("message_ids", "thread_id", "threads"),
    ("attachments", "thread_id", "threads"),
]
CATEGORIES = "('account', 'billing', 'bug_report', 'feature_request')"


def _set(deferred: bool) -> None:
    timing = "DEFERRABLE INITIALLY DEFERRED" if deferred else "NOT DEFERRABLE"
    for table, column, referred in DEFERRED:
        op.execute(f"ALTER TABLE {table} ALTER CONSTRAINT fk_{table}_{column}_{referred} {timing}")


def upgrade() -> None:
    _set(True)
    op.create_check_constraint("ck_tickets_category", "tickets", f"category IS NULL OR category IN {CATEGORIES}")


def downgrade() -> None:
    op.drop_constraint("ck_tickets_category", "tickets", type_="check")
    _set(False)
