"""outbox unsent-to index: a customer's mail leaves in the order it was written

A reply waiting for a retry (or for its undo window to end) holds back the later mail to the
same address; the claim looks for such an earlier email by address.

Revision ID: 5c2e9a7d4b10
Revises: 3f6a2d8c1e47
Create Date: 2026-12-04 22:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '5c2e9a7d4b10'
down_revision = '3f6a2d8c1e47'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_outbox_unsent_to', 'outbox', ['to_email', 'created_at'], unique=False,
                    postgresql_where=sa.text("state IN ('queued', 'sending')"))


def downgrade() -> None:
    op.drop_index('ix_outbox_unsent_to', table_name='outbox', postgresql_where=sa.text("state IN ('queued', 'sending')"))
