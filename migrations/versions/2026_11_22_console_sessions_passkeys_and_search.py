"""console sessions passkeys search

Revision ID: 9330af97e73b
Revises: 2ab2baaa5cf2
Create Date: 2026-11-22 02:29:37.649057
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '9330af97e73b'
down_revision = '2ab2baaa5cf2'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('agent_invitations',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_invitations_agent_id_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_invitations')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_agent_invitations_token_hash'))
    )
    op.create_index(op.f('ix_agent_invitations_agent_id'), 'agent_invitations', ['agent_id'], unique=False)
    op.create_table('agent_sessions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('method', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_agent_sessions_agent_id_agents')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agent_sessions'))
    )
    op.create_index(op.f('ix_agent_sessions_agent_id'), 'agent_sessions', ['agent_id'], unique=False)
    op.create_table('passkeys',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('agent_id', sa.Uuid(), nullable=True),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('credential_id', sa.LargeBinary(), nullable=False),
    sa.Column('public_key', sa.LargeBinary(), nullable=False),
    sa.Column('sign_count', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('(agent_id IS NULL) <> (customer_id IS NULL)', name=op.f('ck_passkeys_one_owner')),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_passkeys_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_passkeys_customer_id_customers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_passkeys')),
    sa.UniqueConstraint('credential_id', name=op.f('uq_passkeys_credential_id'))
    )
    op.create_index(op.f('ix_passkeys_agent_id'), 'passkeys', ['agent_id'], unique=False)
    op.create_index(op.f('ix_passkeys_customer_id'), 'passkeys', ['customer_id'], unique=False)
    op.create_table('ticket_reads',
    sa.Column('agent_id', sa.Uuid(), nullable=False),
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['agent_id'], ['agents.id'], name=op.f('fk_ticket_reads_agent_id_agents'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_ticket_reads_ticket_id_tickets'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('agent_id', 'ticket_id', name=op.f('pk_ticket_reads'))
    )
    op.add_column('customers', sa.Column('search_vector', postgresql.TSVECTOR(), sa.Computed("to_tsvector('simple'::regconfig, (email || ' ') || coalesce(display_name, ''))", persisted=True), nullable=True))
    op.create_index('ix_customers_email_trgm', 'customers', ['email'], unique=False, postgresql_using='gin', postgresql_ops={'email': 'gin_trgm_ops'})
    op.create_index('ix_customers_search_vector', 'customers', ['search_vector'], unique=False, postgresql_using='gin')
    op.add_column('threads', sa.Column('search_vector', postgresql.TSVECTOR(), sa.Computed("to_tsvector('english'::regconfig, left(stripped_text, 100000))", persisted=True), nullable=True))
    op.create_index('ix_threads_search_vector', 'threads', ['search_vector'], unique=False, postgresql_using='gin')
    op.add_column('tickets', sa.Column('last_agent_reply_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tickets', sa.Column('customer_read_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('tickets', sa.Column('search_vector', postgresql.TSVECTOR(), sa.Computed("setweight(to_tsvector('english'::regconfig, subject), 'A')", persisted=True), nullable=True))
    op.create_index('ix_tickets_number_trgm', 'tickets', ['number'], unique=False, postgresql_using='gin', postgresql_ops={'number': 'gin_trgm_ops'})
    op.create_index('ix_tickets_search_vector', 'tickets', ['search_vector'], unique=False, postgresql_using='gin')
    op.create_index('ix_tickets_tags', 'tickets', ['tags'], unique=False, postgresql_using='gin')


def downgrade() -> None:
    op.drop_index('ix_tickets_tags', table_name='tickets', postgresql_using='gin')
    op.drop_index('ix_tickets_search_vector', table_name='tickets', postgresql_using='gin')
    op.drop_index('ix_tickets_number_trgm', table_name='tickets', postgresql_using='gin', postgresql_ops={'number': 'gin_trgm_ops'})
    op.drop_column('tickets', 'search_vector')
    op.drop_column('tickets', 'customer_read_at')
    op.drop_column('tickets', 'last_agent_reply_at')
    op.drop_index('ix_threads_search_vector', table_name='threads', postgresql_using='gin')
    op.drop_column('threads', 'search_vector')
    op.drop_index('ix_customers_search_vector', table_name='customers', postgresql_using='gin')
    op.drop_index('ix_customers_email_trgm', table_name='customers', postgresql_using='gin', postgresql_ops={'email': 'gin_trgm_ops'})
    op.drop_column('customers', 'search_vector')
    op.drop_table('ticket_reads')
    op.drop_index(op.f('ix_passkeys_customer_id'), table_name='passkeys')
    op.drop_index(op.f('ix_passkeys_agent_id'), table_name='passkeys')
    op.drop_table('passkeys')
    op.drop_index(op.f('ix_agent_sessions_agent_id'), table_name='agent_sessions')
    op.drop_table('agent_sessions')
    op.drop_index(op.f('ix_agent_invitations_agent_id'), table_name='agent_invitations')
    op.drop_table('agent_invitations')
