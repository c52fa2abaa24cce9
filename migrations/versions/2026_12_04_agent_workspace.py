"""agent workspace: drafts, saved replies, Cc/Bcc, snooze, blocked senders, agents' zones and signatures

Revision ID: 8d4f1b6e2a93
Revises: 5c2e9a7d4b10
Create Date: 2026-12-04 22:10:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '8d4f1b6e2a93'
down_revision = '5c2e9a7d4b10'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('agents', sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False))
    op.add_column('agents', sa.Column('signature', sa.Text(), server_default='', nullable=False))
    op.add_column('agents', sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tickets', sa.Column('snoozed_until', sa.DateTime(timezone=True), nullable=True))
    op.create_index('ix_tickets_snoozed_until', 'tickets', ['snoozed_until'], unique=False,
                    postgresql_where=sa.text('snoozed_until IS NOT NULL'))
    op.add_column('threads', sa.Column('cc', postgresql.ARRAY(sa.Text()), nullable=True))
    op.add_column('threads', sa.Column('bcc', postgresql.ARRAY(sa.Text()), nullable=True))
    op.create_table(
        'ticket_drafts',
        sa.Column('agent_id', sa.Uuid(), nullable=False),
        sa.Column('ticket_id', sa.Uuid(), nullable=False),
        sa.Column('body_text', sa.Text(), nullable=False),
        sa.Column('cc', sa.Text(), nullable=False),
        sa.Column('bcc', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_ticket_drafts_agent_id_agents'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_drafts_ticket_id_tickets'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('agent_id', 'ticket_id', name=op.f('pk_ticket_drafts')),
    )
    op.create_index(op.f('ix_ticket_drafts_ticket_id'), 'ticket_drafts', ['ticket_id'], unique=False)
    op.create_table(
        'saved_replies',
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('body_text', sa.Text(), nullable=False),
        sa.Column('created_by', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by'], ['agents.id'], name=op.f('fk_saved_replies_created_by_agents')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_saved_replies')),
        sa.UniqueConstraint('name', name=op.f('uq_saved_replies_name')),
    )
    op.create_table(
        'blocked_senders',
        sa.Column('email', sa.String(length=320), nullable=False),
        sa.Column('blocked_by', sa.Uuid(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['blocked_by'], ['agents.id'], name=op.f('fk_blocked_senders_blocked_by_agents')),
        sa.PrimaryKeyConstraint('email', name=op.f('pk_blocked_senders')),
    )


def downgrade() -> None:
    op.drop_table('blocked_senders')
    op.drop_table('saved_replies')
    op.drop_index(op.f('ix_ticket_drafts_ticket_id'), table_name='ticket_drafts')
    op.drop_table('ticket_drafts')
    op.drop_column('threads', 'bcc')
    op.drop_column('threads', 'cc')
    op.drop_index('ix_tickets_snoozed_until', table_name='tickets', postgresql_where=sa.text('snoozed_until IS NOT NULL'))
    op.drop_column('tickets', 'snoozed_until')
    op.drop_column('agents', 'deactivated_at')
    op.drop_column('agents', 'signature')
    op.drop_column('agents', 'time_zone')
