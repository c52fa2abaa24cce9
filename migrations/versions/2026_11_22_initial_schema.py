"""initial schema

Revision ID: 19a951cc8d1a
Revises:
Create Date: 2026-11-22 02:06:03.905157
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '19a951cc8d1a'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.schema.CreateSequence(sa.Sequence("ticket_number_seq")))
    op.create_table('agents',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('active', sa.Boolean(), server_default=sa.text('true'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("role IN ('ops', 'superadmin')", name=op.f('ck_agents_role')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agents')),
    sa.UniqueConstraint('email', name=op.f('uq_agents_email'))
    )
    op.create_table('audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    op.create_index('ix_audit_log_target', 'audit_log', ['target_type', 'target_id'], unique=False)
    op.create_table('customers',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('email_bounced', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customers'))
    )
    op.create_index('uq_customers_email_live', 'customers', ['email'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('support_audit_log',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('resource_id', sa.String(length=64), nullable=True),
    sa.Column('ip_prefix', sa.String(length=64), nullable=True),
    sa.Column('session_id_hash', sa.String(length=64), nullable=True),
    sa.Column('success', sa.Boolean(), nullable=False),
    sa.Column('error_code', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_support_audit_log'))
    )
    op.create_index('ix_support_audit_log_created', 'support_audit_log', ['created_at'], unique=False)
    op.create_index(op.f('ix_support_audit_log_customer_id'), 'support_audit_log', ['customer_id'], unique=False)
    op.create_table('tickets',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('seq', sa.BigInteger(), server_default=sa.text("nextval('ticket_number_seq')"), nullable=False),
    sa.Column('number', sa.String(length=32), sa.Computed("'TKT-' || lpad(seq::text, greatest(4, length(seq::text)), '0')", persisted=True), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=False),
    sa.Column('assigned_to', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=16), server_default='open', nullable=False),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('tags', postgresql.ARRAY(sa.Text()), server_default=sa.text("'{}'::text[]"), nullable=False),
    sa.Column('category', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=16), server_default='email', nullable=False),
    sa.Column('quarantined', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('quarantine_reason', sa.String(length=32), nullable=True),
    sa.Column('merged_into_id', sa.Uuid(), nullable=True),
    sa.Column('previous_ticket_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_customer_reply_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('open', 'pending', 'resolved', 'closed')", name=op.f('ck_tickets_status')),
    sa.CheckConstraint('merged_into_id IS NULL OR merged_into_id <> id', name=op.f('ck_tickets_not_merged_into_self')),
    sa.ForeignKeyConstraint(['assigned_to'], ['agents.id'], name=op.f('fk_tickets_assigned_to_agents')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_tickets_customer_id_customers')),
    sa.ForeignKeyConstraint(['merged_into_id'], ['tickets.id'], name=op.f('fk_tickets_merged_into_id_tickets')),
    sa.ForeignKeyConstraint(['previous_ticket_id'], ['tickets.id'], name=op.f('fk_tickets_previous_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tickets')),
    sa.UniqueConstraint('number', name=op.f('uq_tickets_number')),
    sa.UniqueConstraint('seq', name=op.f('uq_tickets_seq'))
    )
    op.create_index(op.f('ix_tickets_assigned_to'), 'tickets', ['assigned_to'], unique=False)
    op.create_index('ix_tickets_customer_created', 'tickets', ['customer_id', 'created_at'], unique=False)
    op.create_index('ix_tickets_inbox', 'tickets', ['quarantined', 'updated_at'], unique=False)
    op.create_table('threads',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('direction', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('customer_id', sa.Uuid(), nullable=True),
    sa.Column('sender_email', sa.String(length=320), nullable=True),
    sa.Column('sender_name', sa.String(length=200), nullable=True),
    sa.Column('authored_by', sa.Uuid(), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('body_html', sa.Text(), nullable=False),
    sa.Column('body_text', sa.Text(), nullable=False),
    sa.Column('stripped_text', sa.Text(), nullable=False),
    sa.Column('rfc_message_id', sa.Text(), nullable=True),
    sa.Column('postmark_message_id', sa.String(length=100), nullable=True),
    sa.Column('in_reply_to', sa.Text(), nullable=True),
    sa.Column('references', sa.Text(), nullable=True),
    sa.Column('is_auto_reply', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('spam_score', sa.Numeric(precision=6, scale=2), nullable=True),
    sa.Column('quarantined', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("direction IN ('inbound', 'outbound', 'internal')", name=op.f('ck_threads_direction')),
    sa.CheckConstraint("source IN ('email', 'portal', 'console', 'snapshot', 'import')", name=op.f('ck_threads_source')),
    sa.ForeignKeyConstraint(['authored_by'], ['agents.id'], name=op.f('fk_threads_authored_by_agents')),
    sa.ForeignKeyConstraint(['customer_id'], ['customers.id'], name=op.f('fk_threads_customer_id_customers')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_threads_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_threads'))
    )
    op.create_index('ix_threads_ticket_created', 'threads', ['ticket_id', 'created_at'], unique=False)
    op.create_index('uq_threads_postmark_message_id', 'threads', ['postmark_message_id'], unique=True, postgresql_where=sa.text('postmark_message_id IS NOT NULL'))
    op.create_table('attachments',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('thread_id', sa.Uuid(), nullable=False),
    sa.Column('filename', sa.Text(), nullable=False),
    sa.Column('content_type', sa.String(length=255), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('s3_key', sa.String(length=255), nullable=False),
    sa.Column('content_id', sa.String(length=255), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_attachments_thread_id_threads')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attachments')),
    sa.UniqueConstraint('s3_key', name=op.f('uq_attachments_s3_key'))
    )
    op.create_index(op.f('ix_attachments_thread_id'), 'attachments', ['thread_id'], unique=False)
    op.create_table('message_ids',
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('ticket_id', sa.Uuid(), nullable=False),
    sa.Column('thread_id', sa.Uuid(), nullable=True),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("origin IN ('inbound', 'outbound')", name=op.f('ck_message_ids_origin')),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_message_ids_thread_id_threads')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_message_ids_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_message_ids'))
    )
    op.create_index(op.f('ix_message_ids_ticket_id'), 'message_ids', ['ticket_id'], unique=False)
    op.create_table('outbox',
    sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('ticket_id', sa.Uuid(), nullable=True),
    sa.Column('thread_id', sa.Uuid(), nullable=True),
    sa.Column('to_email', sa.String(length=320), nullable=False),
    sa.Column('context', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('state', sa.String(length=16), server_default='queued', nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('message_id', sa.Text(), nullable=False),
    sa.Column('postmark_message_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("state IN ('queued', 'sending', 'sent', 'delivered', 'failed', 'expired')", name=op.f('ck_outbox_state')),
    sa.ForeignKeyConstraint(['thread_id'], ['threads.id'], name=op.f('fk_outbox_thread_id_threads')),
    sa.ForeignKeyConstraint(['ticket_id'], ['tickets.id'], name=op.f('fk_outbox_ticket_id_tickets')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox'))
    )
    op.create_index('ix_outbox_pending', 'outbox', ['next_attempt_at'], unique=False, postgresql_where=sa.text("state IN ('queued', 'sending')"))
    op.create_index(op.f('ix_outbox_thread_id'), 'outbox', ['thread_id'], unique=False)
    op.create_index(op.f('ix_outbox_ticket_id'), 'outbox', ['ticket_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_outbox_ticket_id'), table_name='outbox')
    op.drop_index(op.f('ix_outbox_thread_id'), table_name='outbox')
    op.drop_index('ix_outbox_pending', table_name='outbox', postgresql_where=sa.text("state IN ('queued', 'sending')"))
    op.drop_table('outbox')
    op.drop_index(op.f('ix_message_ids_ticket_id'), table_name='message_ids')
    op.drop_table('message_ids')
    op.drop_index(op.f('ix_attachments_thread_id'), table_name='attachments')
    op.drop_table('attachments')
    op.drop_index('uq_threads_postmark_message_id', table_name='threads', postgresql_where=sa.text('postmark_message_id IS NOT NULL'))
    op.drop_index('ix_threads_ticket_created', table_name='threads')
    op.drop_table('threads')
    op.drop_index('ix_tickets_inbox', table_name='tickets')
    op.drop_index('ix_tickets_customer_created', table_name='tickets')
    op.drop_index(op.f('ix_tickets_assigned_to'), table_name='tickets')
    op.drop_table('tickets')
    op.drop_index(op.f('ix_support_audit_log_customer_id'), table_name='support_audit_log')
    op.drop_index('ix_support_audit_log_created', table_name='support_audit_log')
    op.drop_table('support_audit_log')
    op.drop_index('uq_customers_email_live', table_name='customers', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_table('customers')
    op.drop_index('ix_audit_log_target', table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('agents')
    op.execute(sa.schema.DropSequence(sa.Sequence("ticket_number_seq")))
