"""Delivery jobs: send an outbox entry through Postmark exactly once, retrying what is transient."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from sqlalchemy import select

from echo.customers.models import Customer
from echo.db import utcnow
from echo.extensions import db
from echo.jobs import queue, task
from echo.mail import emails, postmark
from echo.mail.models import OutboxMessage
from echo.tickets.models import MessageId

log = logging.getLogger(__name__)

RETRY_DELAYS = [15, 60, 300, 900, 1800, 3600]  # seconds; then hourly
GIVE_UP_AFTER = timedelta(hours=24)


def retry_delay(attempts: int) -> int:
    return RETRY_DELAYS[min(attempts - 1, len(RETRY_DELAYS) - 1)] if attempts > 0 else RETRY_DELAYS[0]


@task
def deliver(outbox_id: str) -> str:
    """Send one queued outbox entry; safe to run twice for the same id."""
    outbox = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.id == uuid.UUID(outbox_id)).with_for_update(skip_locked=True)
    )
    if outbox is None or outbox.state != "queued":
        db.session.rollback()
        return outbox.state if outbox else "missing"
    bounced = db.session.scalar(select(Customer.email_bounced).where(Customer.email == outbox.to_email))
    if bounced:
        outbox.state, outbox.last_error = "failed", "The recipient's address bounced; an agent must clear it first."
        db.session.commit()
        return outbox.state

    message = emails.render(outbox)
    outbox.state = "sending"
    outbox.attempts += 1
    db.session.commit()

    try:
        postmark_id = postmark.send(message)
    except postmark.SendError as exc:
        return _record_failure(outbox, exc)
    outbox.state, outbox.sent_at, outbox.last_error = "sent", utcnow(), None
    outbox.postmark_message_id = postmark_id
    if outbox.ticket_id is not None:
        db.session.add(MessageId(
            message_id=f"{postmark_id.lower()}@mtasv.net", ticket_id=outbox.ticket_id,
            thread_id=outbox.thread_id, origin="outbound",
        ))
    db.session.commit()
    return outbox.state


def _record_failure(outbox: OutboxMessage, exc: postmark.SendError) -> str:
    outbox.last_error = str(exc)[:1000]
    if exc.permanent:
        outbox.state = "failed"
    elif utcnow() - outbox.created_at >= GIVE_UP_AFTER:
        outbox.state = "expired"
    else:
        delay = retry_delay(outbox.attempts)
        outbox.state, outbox.next_attempt_at = "queued", utcnow() + timedelta(seconds=delay)
    db.session.commit()
    if outbox.state == "queued":
        queue("mail").enqueue_in(timedelta(seconds=retry_delay(outbox.attempts)), deliver, str(outbox.id))
    log.warning("outbox %s %s after attempt %s: %s", outbox.id, outbox.state, outbox.attempts, outbox.last_error)
    return outbox.state
