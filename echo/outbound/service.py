"""Agent replies to customers, and what Postmark tells us about delivery afterwards (SPEC §5)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select, update

from echo.actors import Actor
from echo.attachments import service as attachments
from echo.audit import service as audit
from echo.customers.models import Customer
from echo.db import utcnow
from echo.errors import EchoError, InvalidPayload, NotFound, PayloadTooLarge
from echo.extensions import db
from echo.inbound.sanitize import html_to_text, sanitize_html
from echo.mail.models import OutboxMessage
from echo.mail.service import queue_email
from echo.tickets.models import Thread, Ticket
from echo.tickets.service import TicketClosed, set_status

MAX_BODY = 200_000


class RecipientBounced(EchoError):
    status = 409
    code = "recipient_bounced"


class NoRecipient(EchoError):
    status = 409
    code = "no_recipient"


@dataclass(frozen=True)
class ReplyResult:
    thread: Thread
    outbox: OutboxMessage


def send_reply(ticket: Ticket, *, actor: Actor, body_text: str | None = None, body_html: str | None = None,
               files: Sequence[attachments.IncomingFile] = (), status: str | None = "pending") -> ReplyResult:
    """Write an outbound thread and its outbox entry in the caller's transaction; the worker sends it."""
    if ticket.status == "closed":
        raise TicketClosed("This ticket is closed; it takes no new replies.")
    customer = ticket.customer
    if customer is None or customer.deleted_at is not None:
        raise NoRecipient("This ticket has no customer to write to.")
    if customer.email_bounced:
        raise RecipientBounced(f"Mail to {customer.email} bounced. Clear the bounce before replying.")
    html = sanitize_html(body_html or "", hold_remote_images=False) if body_html else ""
    text = (body_text or "").strip() or html_to_text(html)
    if not text.strip():
        raise InvalidPayload("A reply needs some text.", code="empty_body")
    if len(text) > MAX_BODY or len(html) > MAX_BODY:
        raise PayloadTooLarge("The reply is too long.")

    thread = Thread(
        id=uuid.uuid4(), ticket_id=ticket.id, direction="outbound", source="console", authored_by=actor.id,
        subject=ticket.subject, body_text=text, body_html=html, stripped_text=text, created_at=utcnow(),
    )
    db.session.add(thread)
    for file in files:
        attachments.store_file(thread.id, file)
    db.session.flush()
    outbox = queue_email("reply", to_email=customer.email, ticket=ticket, thread_id=thread.id)
    thread.rfc_message_id = outbox.message_id
    ticket.updated_at = ticket.last_agent_reply_at = thread.created_at
    if status and status != ticket.status:
        set_status(ticket, status, actor=actor)
    audit.record(actor, "tickets.reply", "ticket", ticket.id, thread_id=str(thread.id), outbox_id=str(outbox.id),
                 attachments=len(files))
    return ReplyResult(thread, outbox)


def start_conversation(*, actor: Actor, customer_email: str, customer_name: str | None, subject: str,
                       body_text: str | None = None, body_html: str | None = None,
                       status: str | None = "pending") -> ReplyResult:
    """An agent writes to a customer first: a new ticket (the customer found or created by address, never
    renamed) whose first message is the agent's, sent and threaded like any reply."""
    from echo.customers.service import upsert_customer
    from echo.tickets.service import open_ticket

    customer = upsert_customer(customer_email, customer_name, rename=False)
    ref = open_ticket(customer.id, subject.strip(), source="console", customer_wrote=False)
    ticket = db.session.get_one(Ticket, ref.id)
    audit.record(actor, "tickets.start", "ticket", ticket.id)
    return send_reply(ticket, actor=actor, body_text=body_text, body_html=body_html, status=status)


def clear_bounce(customer_id: uuid.UUID, *, actor: Actor) -> None:
    """An agent confirms the address works again; held replies may be retried."""
    customer = db.session.get(Customer, customer_id)
    if customer and customer.email_bounced:
        customer.email_bounced = False
        audit.record(actor, "customers.clear_bounce", "customer", customer.id)


def retry_outbox(outbox_id: uuid.UUID, *, actor: Actor, ticket_id: uuid.UUID | None = None) -> OutboxMessage:
    """Put a failed or expired message back in the queue (after the agent fixed the cause), or send a
    queued one that is waiting for its next attempt now ("send now")."""
    from echo.jobs import enqueue_after_commit
    from echo.mail.tasks import deliver_due, job_options, queue_for

    outbox = db.session.get(OutboxMessage, outbox_id)
    if outbox is None or (ticket_id is not None and outbox.ticket_id != ticket_id):
        raise NotFound("No such outgoing message.")
    if outbox.state in ("failed", "expired") or (outbox.state == "queued" and outbox.next_attempt_at > utcnow()):
        if outbox.state != "queued":
            outbox.created_at = utcnow()  # a fresh day of attempts before it expires again
        outbox.state, outbox.next_attempt_at = "queued", utcnow()
        audit.record(actor, "outbox.retry", "outbox", outbox.id)
        enqueue_after_commit(deliver_due, str(outbox.id), queue_name=queue_for(outbox.kind), **job_options(outbox.id))
    return outbox


BOUNCE_FLAGS = {"HardBounce", "SpamComplaint"}


def record_delivery_event(payload: dict) -> str:
    """Apply one Postmark webhook record (Bounce, SpamComplaint, Delivery); unknown kinds are no-ops."""
    record_type = str(payload.get("RecordType") or "")
    message_id = str(payload.get("MessageID") or "")
    outbox = (
        db.session.scalar(select(OutboxMessage).where(OutboxMessage.postmark_message_id == message_id))
        if message_id else None
    )
    if record_type == "Delivery":
        if outbox is not None and outbox.state in ("sent", "sending", "queued"):
            outbox.state, outbox.delivered_at = "delivered", utcnow()
            return "delivered"
        return "ignored"
    if record_type in ("Bounce", "SpamComplaint"):
        kind = "SpamComplaint" if record_type == "SpamComplaint" else str(payload.get("Type") or "")
        address = str(payload.get("Email") or (outbox.to_email if outbox else "")).strip().lower()
        if kind not in BOUNCE_FLAGS or not address:
            return "ignored"
        flagged = db.session.execute(
            update(Customer).where(Customer.email == address, Customer.deleted_at.is_(None)).values(email_bounced=True)
            .returning(Customer.id)
        ).scalars().all()
        if outbox is not None:
            outbox.state, outbox.last_error = "failed", f"{kind}: the recipient's server refused this message."
        for customer_id in flagged:
            audit.record(Actor("system"), "customers.bounced", "customer", customer_id, kind=kind,
                         outbox_id=str(outbox.id) if outbox else None)
        return "flagged"
    return "ignored"


def record_bounce_report(message_ids: Sequence[str], detail: str, *, thread_id: uuid.UUID) -> int:
    """Mark Echo's own mail that a bounce arriving as mail says was refused for good; how many rows.

    The report names the mail by its Message-ID: the one Echo minted, or the one Postmark gave it
    (`<uuid@mtasv.net>`); both are random, so only a real recipient's server can name them. The
    customer is not flagged as bounced: Postmark's bounce webhook does that when Postmark itself
    saw the refusal; this only tells the agent why the reply failed.
    """
    postmark_ids = [i.removesuffix("@mtasv.net") for i in message_ids if i.endswith("@mtasv.net")]
    if not message_ids:
        return 0
    failed = db.session.scalars(
        update(OutboxMessage)
        .where(or_(OutboxMessage.message_id.in_(list(message_ids)),
                   OutboxMessage.postmark_message_id.in_(postmark_ids)),
               OutboxMessage.state.in_(("sent", "delivered")))
        .values(state="failed", last_error=("The recipient's server returned this message"
                                            + (f" ({detail})" if detail else "") + ".")[:1000])
        .returning(OutboxMessage.id)
        .execution_options(synchronize_session=False)
    ).all()
    for outbox_id in failed:
        audit.record(Actor("system"), "outbox.bounced", "outbox", outbox_id, thread_id=str(thread_id))
    return len(failed)
