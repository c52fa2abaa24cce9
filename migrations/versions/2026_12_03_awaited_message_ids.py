"""awaited message ids: ids a customer's message referred to before the message they name arrived

Postmark retries a message late, after the customer's follow-up (which refers to it) has
already opened a ticket. The follow-up's unseen ids are kept as `awaited`, pointing at its
ticket, so that the late message joins that ticket instead of opening a second one.

Revision ID: 9b1e4f7c2a85
Revises: 7d4a9c3e1b62
Create Date: 2026-12-03 14:10:00
"""
from alembic import op

revision = '9b1e4f7c2a85'
down_revision = '7d4a9c3e1b62'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint(op.f('ck_message_ids_origin'), 'message_ids', type_='check')
    op.create_check_constraint(op.f('ck_message_ids_origin'), 'message_ids', "origin IN ('inbound', 'outbound', 'awaited')")


def downgrade() -> None:
    op.execute("DELETE FROM message_ids WHERE origin = 'awaited'")
    op.drop_constraint(op.f('ck_message_ids_origin'), 'message_ids', type_='check')
    op.create_check_constraint(op.f('ck_message_ids_origin'), 'message_ids', "origin IN ('inbound', 'outbound')")
