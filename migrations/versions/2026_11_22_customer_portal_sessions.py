"""portal sessions

Revision ID: 9b0008954e8a
Revises: 9330af97e73b
Create Date: 2026-11-22 02:47:06.308213
"""
import sqlalchemy as sa
from alembic import op

revision = '9b0008954e8a'
down_revision = '9330af97e73b'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_enrolments',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_enrolments_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_enrolments')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_customer_enrolments_token_hash'))
    )
    op.create_index(op.f('ix_customer_enrolments_customer_id'), 'customer_enrolments', ['customer_id'], unique=False)
    op.create_table('customer_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_customer_sessions_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_sessions'))
    )
    op.create_index(op.f('ix_customer_sessions_customer_id'), 'customer_sessions', ['customer_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_customer_sessions_customer_id'), table_name='customer_sessions')
    op.drop_table('customer_sessions')
    op.drop_index(op.f('ix_customer_enrolments_customer_id'), table_name='customer_enrolments')
    op.drop_table('customer_enrolments')
