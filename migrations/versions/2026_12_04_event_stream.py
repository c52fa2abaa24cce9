"""event stream: audit_log rows carry their transaction id, read in commit-safe order

The live event stream (echo.live) reads the ticket rows of audit_log in (xid, id) order, below the
oldest transaction still running, so a reconnecting client resumes exactly where it stopped. Rows
written before this migration have no xid and are not part of the stream (no table rewrite).

Revision ID: 2b7c5e9f1a64
Revises: 8d4f1b6e2a93
Create Date: 2026-12-04 22:40:00
"""
import sqlalchemy as sa
from alembic import op

revision = '2b7c5e9f1a64'
down_revision = '8d4f1b6e2a93'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_log ADD COLUMN xid xid8")
    op.execute("ALTER TABLE audit_log ALTER COLUMN xid SET DEFAULT pg_current_xact_id()")
    op.create_index('ix_audit_log_stream', 'audit_log', ['xid', 'id'], unique=False,
                    postgresql_where=sa.text("target_type = 'ticket' AND xid IS NOT NULL"))


def downgrade() -> None:
    op.drop_index('ix_audit_log_stream', table_name='audit_log',
                  postgresql_where=sa.text("target_type = 'ticket' AND xid IS NOT NULL"))
    op.drop_column('audit_log', 'xid')
