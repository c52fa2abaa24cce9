"""notifications: the bell, per-agent choices, and the notifier's place in the event log

Revision ID: 9f2d4b7a6c18
Revises: 6e3a1c8b5d27
Create Date: 2026-12-04 23:20:00
"""
import sqlalchemy as sa
from alembic import op

revision = '9f2d4b7a6c18'
down_revision = '6e3a1c8b5d27'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('agents', sa.Column('notify_new', sa.String(length=16), server_default='all', nullable=False))
    op.add_column('agents', sa.Column('notify_email', sa.Boolean(), server_default=sa.text('true'), nullable=False))
    op.create_table(
        'notifications',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('agent_id', sa.Uuid(), nullable=False),
        sa.Column('ticket_id', sa.Uuid(), nullable=False),
        sa.Column('kind', sa.String(length=32), nullable=False),
        sa.Column('actor', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("kind IN ('new_ticket', 'customer_reply', 'assigned', 'mention')",
                           name=op.f('ck_notifications_kind')),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_notifications_agent_id_agents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_notifications_ticket_id_tickets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
    )
    op.create_index('ix_notifications_agent_created', 'notifications', ['agent_id', 'created_at'], unique=False)
    op.create_index(op.f('ix_notifications_ticket_id'), 'notifications', ['ticket_id'], unique=False)
    op.create_index('ix_notifications_unread', 'notifications', ['agent_id', 'created_at'], unique=False,
                    postgresql_where=sa.text('read_at IS NULL'))
    op.create_table(
        'notify_cursor',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('xid', sa.BigInteger(), nullable=False),
        sa.Column('row_id', sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notify_cursor')),
    )


def downgrade() -> None:
    op.drop_table('notify_cursor')
    op.drop_index('ix_notifications_unread', table_name='notifications', postgresql_where=sa.text('read_at IS NULL'))
    op.drop_index(op.f('ix_notifications_ticket_id'), table_name='notifications')
    op.drop_index('ix_notifications_agent_created', table_name='notifications')
    op.drop_table('notifications')
    op.drop_column('agents', 'notify_email')
    op.drop_column('agents', 'notify_new')
