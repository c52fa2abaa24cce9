"""revoked portal sessions: host-issued portal session ids an operator revoked

Tokens minted by a host platform name session ids Echo never issued, so there was no record to
revoke. This table holds the SHA-256 of each revoked id until the 12-hour session maximum has
passed (`echo-desk portal revoke-session`).

Revision ID: 5c2e8f1a9d37
Revises: a51d0c7e2f93
Create Date: 2026-12-03 08:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '5c2e8f1a9d37'
down_revision = 'a51d0c7e2f93'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('revoked_portal_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_revoked_portal_sessions'))
    )
    op.create_index(op.f('ix_revoked_portal_sessions_expires_at'), 'revoked_portal_sessions', ['expires_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_revoked_portal_sessions_expires_at'), table_name='revoked_portal_sessions')
    op.drop_table('revoked_portal_sessions')
