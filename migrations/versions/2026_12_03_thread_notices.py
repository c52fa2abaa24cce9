"""thread notices: what the intake cut from a message, shown to the agent beside it

Mail is never refused for its size or shape: a body too long, HTML nested too deep, an attachment
over the limit or not base64 is cut or left out, the original message is kept as an attachment,
and these sentences say what happened.

Revision ID: 7d4a9c3e1b62
Revises: 5c2e8f1a9d37
Create Date: 2026-12-03 14:00:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '7d4a9c3e1b62'
down_revision = '5c2e8f1a9d37'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('threads', sa.Column('notices', postgresql.ARRAY(sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('threads', 'notices')
