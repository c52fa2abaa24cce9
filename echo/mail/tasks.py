"""Delivery jobs: send each outbox entry through Postmark exactly once, retrying what is transient.

The outbox row is the source of truth. A send is marked `sending` (and committed) before
Postmark is called; if the worker dies before recording the result, the sweeper finds the
stale `sending` row and asks Postmark (by the Metadata we sent) whether it went out, so a
crash never causes a second email.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import insert

from echo.customers.models import Customer
from echo.db import affected_rows, utcnow
from echo.extensions import db
from echo.jobs import queue, task
from echo.mail import emails, postmark
from echo.mail.models import CUSTOMER_EMAILS, OutboxMessage
from echo.tickets.models import MessageId

log = logging.getLogger(__name__)

RETRY_DELAYS = [15, 60, 300, 900, 1800, 3600]  # seconds; then hourly
GIVE_UP_AFTER = timedelta(hours=24)
STALE_SENDING = timedelta(minutes=2)


def retry_delay(attempts: int) -> int:
    return RETRY_DELAYS[min(max(attempts, 1) - 1, len(RETRY_DELAYS) - 1)]


@task
def deliver(outbox_id: str) -> str:
    """Send one outbox entry if it is due; safe to run any number of times for the same id."""
    now = utcnow()
    bounced = (select(Customer.email_bounced)
               .where(Customer.email == OutboxMessage.to_email, Customer.deleted_at.is_(None)).scalar_subquery())
    row = db.session.execute(
        select(OutboxMessage, bounced).where(OutboxMessage.id == uuid.UUID(outbox_id))
        .with_for_update(skip_locked=True, of=OutboxMessage)
    ).first()
    if row is None:
        db.session.rollback()
        return "busy-or-missing"
    outbox, bounced = row
    if outbox.state == "sending" and outbox.attempted_at and now - outbox.attempted_at >= STALE_SENDING:
        return _recover(outbox)
    if outbox.state != "queued" or outbox.next_attempt_at > now:
        state = outbox.state
        db.session.rollback()
        return state
    if bounced:
        outbox.state = "failed"
        outbox.last_error = "Not sent: this address bounced. Clear the bounce to send again."
        db.session.commit()
        return outbox.state

    message = emails.render(outbox)
    outbox.state, outbox.attempted_at = "sending", now
    outbox.attempts += 1
    _commit_keeping_values()

    try:
        postmark_id = postmark.send(message)
    except postmark.SendError as exc:
        return _record_failure(outbox, exc)
    return _record_sent(outbox, postmark_id)


# Context values that grant access (sign-up links) are kept only until the email is out.
SECRET_CONTEXT_KEYS = ("link",)


def _record_sent(outbox: OutboxMessage, postmark_id: str) -> str:
    outbox.state, outbox.sent_at, outbox.last_error = "sent", utcnow(), None
    if any(key in outbox.context for key in SECRET_CONTEXT_KEYS):
        outbox.context = {k: v for k, v in outbox.context.items() if k not in SECRET_CONTEXT_KEYS}
    outbox.postmark_message_id = postmark_id
    if outbox.ticket_id is not None and outbox.kind in CUSTOMER_EMAILS:
        db.session.execute(insert(MessageId).values(
            message_id=f"{postmark_id.lower()}@mtasv.net", ticket_id=outbox.ticket_id,
            thread_id=outbox.thread_id, origin="outbound",
        ).on_conflict_do_nothing(index_elements=[MessageId.message_id]))
    db.session.commit()
    return "sent"


def _commit_keeping_values() -> None:
    """Commit without expiring the loaded rows: they hold what was just written, and reading
    them again after the send would cost a query per row."""
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _recover(outbox: OutboxMessage) -> str:
    """A worker died mid-send: ask Postmark before sending again."""
    try:
        postmark_id = postmark.find_sent(str(outbox.id))
    except postmark.SendError as exc:
        outbox.last_error = f"Could not confirm an interrupted send: {exc}"[:1000]
        db.session.commit()
        return outbox.state
    if postmark_id:
        log.info("outbox %s: interrupted send had reached Postmark; recorded without resending", outbox.id)
        return _record_sent(outbox, postmark_id)
    outbox.state, outbox.next_attempt_at = "queued", utcnow()
    db.session.commit()
    return deliver(str(outbox.id))


def _record_failure(outbox: OutboxMessage, exc: postmark.SendError) -> str:
    outbox.last_error = str(exc)[:1000]
    if exc.permanent:
        outbox.state = "failed"
        if exc.error_code in (300, 406):
            _flag_recipient(outbox.to_email)
    elif utcnow() - outbox.created_at >= GIVE_UP_AFTER:
        outbox.state = "expired"
    else:
        outbox.state = "queued"
        outbox.next_attempt_at = utcnow() + timedelta(seconds=retry_delay(outbox.attempts))
    db.session.commit()
    log.warning("outbox %s %s after attempt %s (%s)", outbox.id, outbox.state, outbox.attempts,
                f"error {exc.error_code}" if exc.error_code is not None else "transient")
    return outbox.state


def _flag_recipient(address: str) -> None:
    """Postmark says this address can never receive mail: stop writing to it until an agent clears it."""
    db.session.execute(
        Customer.__table__.update().where(Customer.email == address, Customer.deleted_at.is_(None))
        .values(email_bounced=True)
    )


@task
def sweep_outbox(now: datetime | None = None) -> int:
    """Enqueue every outbox entry that is due: retries, lost enqueues, and sends a dead worker left."""
    now = now or utcnow()
    due = db.session.scalars(
        select(OutboxMessage.id).where(or_(
            (OutboxMessage.state == "queued") & (OutboxMessage.next_attempt_at <= now),
            (OutboxMessage.state == "sending") & (OutboxMessage.attempted_at <= now - STALE_SENDING),
        )).limit(500)
    ).all()
    db.session.rollback()
    expired = affected_rows(db.session.execute(
        OutboxMessage.__table__.update()
        .where(OutboxMessage.state == "queued", OutboxMessage.created_at <= now - GIVE_UP_AFTER)
        .values(state="expired", last_error="Gave up after 24 hours of failed attempts.")
    ))
    db.session.commit()
    mail = queue("mail")
    for outbox_id in due:
        mail.enqueue(deliver, str(outbox_id))
    if expired:
        log.warning("%s outbox entries expired after 24 hours", expired)
    return len(due)
