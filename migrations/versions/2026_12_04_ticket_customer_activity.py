"""ticket customer activity index: the inbox ordered by the customer's latest message

The console lists tickets by when the customer last wrote (or oldest waiting first), so that a
ticket an agent just closed or tagged does not jump to the top.

Revision ID: 3f6a2d8c1e47
Revises: 9b1e4f7c2a85
Create Date: 2026-12-04 19:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '3f6a2d8c1e47'
down_revision = '9b1e4f7c2a85'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_tickets_customer_activity', 'tickets',
                    ['status', sa.text('coalesce(last_customer_reply_at, created_at) DESC'), sa.text('seq DESC')],
                    unique=False, postgresql_where=sa.text('merged_into_id IS NULL AND quarantined IS false'))


def downgrade() -> None:
    op.drop_index('ix_tickets_customer_activity', table_name='tickets',
                  postgresql_where=sa.text('merged_into_id IS NULL AND quarantined IS false'))
