"""inbox status index

Revision ID: 4f4e04d732b6
Revises: 9b0008954e8a
Create Date: 2026-11-22 04:20:04.574542
"""
import sqlalchemy as sa
from alembic import op

revision = '4f4e04d732b6'
down_revision = '9b0008954e8a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_tickets_inbox_status', 'tickets', ['status', sa.literal_column('updated_at DESC'), sa.literal_column('seq DESC')], unique=False, postgresql_where=sa.text('merged_into_id IS NULL AND quarantined IS false'))


def downgrade() -> None:
    op.drop_index('ix_tickets_inbox_status', table_name='tickets', postgresql_where=sa.text('merged_into_id IS NULL AND quarantined IS false'))
