"""inbox indexes: snoozed tickets out of the views' indexes, "All open" in order, "Mine", merges

Revision ID: 6e3a1c8b5d27
Revises: 2b7c5e9f1a64
Create Date: 2026-12-04 22:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '6e3a1c8b5d27'
down_revision = '2b7c5e9f1a64'
branch_labels = None
depends_on = None

OLD = "merged_into_id IS NULL AND quarantined IS false"
LIVE = "merged_into_id IS NULL AND quarantined IS false AND snoozed_until IS NULL"
ACTIVITY = "coalesce(last_customer_reply_at, created_at) DESC"


def _status_indexes(where: str) -> None:
    op.create_index('ix_tickets_inbox_status', 'tickets', ['status', sa.text('updated_at DESC'), sa.text('seq DESC')],
                    unique=False, postgresql_where=sa.text(where))
    op.create_index('ix_tickets_customer_activity', 'tickets', ['status', sa.text(ACTIVITY), sa.text('seq DESC')],
                    unique=False, postgresql_where=sa.text(where))


def upgrade() -> None:
    op.drop_index('ix_tickets_inbox_status', table_name='tickets')
    op.drop_index('ix_tickets_customer_activity', table_name='tickets')
    _status_indexes(LIVE)
    op.create_index('ix_tickets_active_activity', 'tickets', [sa.text(ACTIVITY), sa.text('seq DESC')], unique=False,
                    postgresql_where=sa.text(f"{LIVE} AND (status = 'open' OR status = 'pending')"))
    op.create_index('ix_tickets_assignee_status', 'tickets', ['assigned_to', 'status'], unique=False,
                    postgresql_where=sa.text(LIVE))
    op.create_index('ix_tickets_merged_into', 'tickets', ['merged_into_id'], unique=False,
                    postgresql_where=sa.text('merged_into_id IS NOT NULL'))


def downgrade() -> None:
    op.drop_index('ix_tickets_merged_into', table_name='tickets')
    op.drop_index('ix_tickets_assignee_status', table_name='tickets')
    op.drop_index('ix_tickets_active_activity', table_name='tickets')
    op.drop_index('ix_tickets_inbox_status', table_name='tickets')
    op.drop_index('ix_tickets_customer_activity', table_name='tickets')
    _status_indexes(OLD)
