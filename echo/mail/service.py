"""Outbound mail use cases: put a message in the outbox now, deliver it after the commit."""

from __future__ import annotations

import uuid
from datetime import timedelta

from flask import current_app

from echo.db import utcnow
from echo.extensions import db
from echo.jobs import enqueue_after_commit
from echo.mail.models import CUSTOMER_EMAILS, OutboxMessage
from echo.tickets.models import MessageId, Ticket


def mint_message_id() -> str:
    """A random Message-ID of our own (normalised form, without angle brackets)."""
    return f"echo.{uuid.uuid4().hex}@{current_app.config['ECHO'].support_domain}"


def queue_email(kind: str, *, to_email: str, ticket: Ticket | None = None, thread_id: uuid.UUID | None = None,
                context: dict | None = None, hold_seconds: int = 0) -> OutboxMessage:
    """Add an outbox entry and schedule its delivery for after the commit.

    A held entry (an agent's reply that may still be taken back) is due only after `hold_seconds`:
    it gets no job now, and the outbox sweep, every five seconds, gives it one when it is due."""
    from echo.mail.tasks import deliver_due, job_options, queue_for

    outbox = OutboxMessage(
        id=uuid.uuid4(), kind=kind, to_email=to_email, ticket_id=ticket.id if ticket else None,
        thread_id=thread_id, context=context or {}, message_id=mint_message_id(),
        next_attempt_at=utcnow() + timedelta(seconds=hold_seconds),
    )
    db.session.add(outbox)
    if ticket is not None and kind in CUSTOMER_EMAILS:
        db.session.add(MessageId(message_id=outbox.message_id, ticket_id=ticket.id, thread_id=thread_id,
                                 origin="outbound"))
    if not hold_seconds:
        enqueue_after_commit(deliver_due, str(outbox.id), queue_name=queue_for(kind), **job_options(outbox.id))
    return outbox


def acknowledgement_params(in_reply_to: str | None) -> dict:
    """Values for the acknowledgement's outbox row, which the intake writes in its own statement.

    Its delivery is scheduled here, for after the commit, like every other email's.
    """
    from echo.mail.tasks import deliver_due, job_options, queue_for

    outbox_id = uuid.uuid4()
    enqueue_after_commit(deliver_due, str(outbox_id), queue_name=queue_for("acknowledgement"), **job_options(outbox_id))
    return {"ack_id": outbox_id, "ack_message_id": mint_message_id(), "ack_context": {"in_reply_to": in_reply_to}}
