"""agent tokens, outbox attempts, internal tickets

Revision ID: 2ab2baaa5cf2
Revises: 19a951cc8d1a
Create Date: 2026-11-22 02:17:27.334230
"""
import sqlalchemy as sa
from alembic import op

revision = '2ab2baaa5cf2'
down_revision = '19a951cc8d1a'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('agent_tokens',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_tokens_agent_id_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_agent_tokens_token_hash'))
    )
    op.create_index(op.f('ix_agent_tokens_agent_id'), 'agent_tokens', ['agent_id'], unique=False)
    op.add_column('outbox', sa.Column('attempted_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tickets', sa.Column('status_changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False))
    op.execute("UPDATE tickets SET status_changed_at = updated_at")
    op.alter_column('tickets', 'customer_id',
               existing_type=sa.UUID(),
               nullable=True)
    op.create_check_constraint(
        op.f("ck_tickets_customer_unless_internal"), "tickets", "customer_id IS NOT NULL OR source = 'snapshot'"
    )
    op.create_index('ix_tickets_pending_since', 'tickets', ['status_changed_at'], unique=False, postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    op.drop_index('ix_tickets_pending_since', table_name='tickets', postgresql_where=sa.text("status = 'pending'"))
    op.drop_constraint(op.f("ck_tickets_customer_unless_internal"), "tickets", type_="check")
    op.alter_column('tickets', 'customer_id',
               existing_type=sa.UUID(),
               nullable=False)
    op.drop_column('tickets', 'status_changed_at')
    op.drop_column('outbox', 'attempted_at')
    op.drop_index(op.f('ix_agent_tokens_agent_id'), table_name='agent_tokens')
    op.drop_table('agent_tokens')
