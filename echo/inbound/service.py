"""Email intake: turn one Postmark inbound message into the right ticket and thread (SPEC §4)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from echo.actors import Actor
from echo.attachments import service as attachments
from echo.audit import service as audit
from echo.customers.service import CustomerRef, upsert_customer
from echo.db import utcnow
from echo.extensions import db
from echo.inbound import guards, sanitize, threading
from echo.inbound.schemas import InboundEmail
from echo.mail.service import queue_acknowledgement, queue_email
from echo.tickets.models import MessageId, Thread, Ticket
from echo.tickets.service import set_status

MAX_SUBJECT = 1000
MAX_HEADER = 20_000


@dataclass(frozen=True)
class IngestResult:
    ticket_id: uuid.UUID
    ticket_number: str
    thread_id: uuid.UUID | None
    outcome: str  # "created" | "appended" | "duplicate"
    matched_via: str | None = None
    quarantined: bool = False
    auto_reply: bool = False
    acknowledged: bool = False


def find_duplicate(message: InboundEmail) -> IngestResult | None:
    """The earlier delivery of this same Postmark message, if there was one."""
    row = db.session.execute(
        select(Thread.id, Thread.ticket_id, Ticket.number)
        .join(Ticket, Ticket.id == Thread.ticket_id)
        .where(Thread.postmark_message_id == message.MessageID)
    ).first()
    return IngestResult(row.ticket_id, row.number, row.id, "duplicate") if row else None


def ingest_email(message: InboundEmail) -> IngestResult:
    """File an inbound message: thread it, store it safely, apply status effects, acknowledge it.

    Flushes but never commits; the caller commits once. Raises InvalidPayload or
    PayloadTooLarge before writing anything when the message cannot be accepted.
    """
    settings = current_app.config["ECHO"]
    duplicate = find_duplicate(message)
    if duplicate:
        return duplicate
    files = attachments.decode_files(message.Attachments, settings.max_attachment_bytes)

    headers = message.header_map()
    sender_email, sender_name = message.sender()
    rfc_id = threading.normalize_message_id(headers.get("message-id"))
    candidates = threading.candidate_ids(headers.get("in-reply-to"), headers.get("references"))
    known = threading.known_ids(candidates + ([rfc_id] if rfc_id else []))
    earlier = known.get(rfc_id) if rfc_id else None
    if earlier and earlier.origin == "inbound" and earlier.sender_email == sender_email:
        ticket = db.session.get(Ticket, earlier.ticket_id)
        return IngestResult(ticket.id, ticket.number, None, "duplicate")

    customer = upsert_customer(sender_email, sender_name)
    automated = guards.is_automated(headers, sender_email, settings.support_address)
    score = guards.spam_score(headers)
    spam = score is not None and score > settings.spam_threshold
    subject = " ".join(message.Subject.split())[:MAX_SUBJECT]

    match = threading.find_ticket(
        customer_id=customer.id, candidates=candidates, known=known, mailbox_hash=message.MailboxHash,
        subject=subject, secret=settings.secret_key,
    )
    previous = None
    if match and match.ticket.status == "closed" and not automated:
        previous, match = match.ticket, None  # a closed ticket stays closed; the reply starts a new one

    now = utcnow()
    if match:
        ticket, created = match.ticket, False
    else:
        ticket, created = _open_ticket(customer, subject, spam, previous), True

    thread = Thread(
        id=uuid.uuid4(), ticket_id=ticket.id, direction="inbound", source="email", customer_id=customer.id,
        sender_email=sender_email, sender_name=sender_name or None, subject=subject,
        rfc_message_id=rfc_id, postmark_message_id=message.MessageID,
        in_reply_to=(headers.get("in-reply-to") or "")[:MAX_HEADER] or None,
        references=(headers.get("references") or "")[:MAX_HEADER] or None,
        is_auto_reply=automated, spam_score=score, quarantined=spam and not created, created_at=now,
    )
    cid_urls = {}
    for file in files:
        stored = attachments.store_file(thread.id, file)
        if file.content_id:
            cid_urls[file.content_id] = attachments.URL_PATH.format(id=stored.id)
    thread.body_html = sanitize.sanitize_html(message.HtmlBody, cid_urls)
    thread.body_text = message.TextBody or sanitize.html_to_text(thread.body_html)
    thread.stripped_text = sanitize.stripped_reply(thread.body_text, message.StrippedTextReply)
    db.session.add(thread)
    if rfc_id and not earlier:
        db.session.execute(
            insert(MessageId)
            .values(message_id=rfc_id, ticket_id=ticket.id, thread_id=thread.id, origin="inbound")
            .on_conflict_do_nothing()
        )

    if not created and not automated and not spam:
        if ticket.status in ("pending", "resolved"):
            set_status(ticket, "open", actor=Actor.customer(customer.id), now=now)
        ticket.updated_at = now
        ticket.last_customer_reply_at = now
        if ticket.assignee is not None and ticket.assignee.active:
            queue_email("customer_reply", to_email=ticket.assignee.email, ticket=ticket, thread_id=thread.id)

    acknowledged = created and not (automated or ticket.quarantined or customer.email_bounced)
    if acknowledged:
        queue_acknowledgement(ticket, customer.email, rfc_id)

    audit.record(
        Actor.customer(customer.id), "tickets.inbound", "ticket", ticket.id,
        thread_id=str(thread.id), created=created, matched_via=match.via if match else None,
        previous_ticket_id=str(previous.id) if previous else None, auto_reply=automated,
        quarantined=ticket.quarantined or thread.quarantined, attachments=len(files),
    )
    db.session.flush()
    return IngestResult(
        ticket.id, ticket.number, thread.id, "created" if created else "appended",
        matched_via=match.via if match else None, quarantined=ticket.quarantined or thread.quarantined,
        auto_reply=automated, acknowledged=acknowledged,
    )


def _open_ticket(customer: CustomerRef, subject: str, spam: bool, previous: Ticket | None) -> Ticket:
    """Create a ticket, quarantining spam and floods (more than the limit in 24 hours)."""
    settings = current_app.config["ECHO"]
    reason = "spam" if spam else None
    if reason is None:
        recent = db.session.scalar(
            select(func.count()).select_from(Ticket).where(
                Ticket.customer_id == customer.id, Ticket.created_at > utcnow() - timedelta(hours=24)
            )
        )
        if recent >= settings.flood_limit:
            reason = "flood"
    now = utcnow()
    ticket = Ticket(
        id=uuid.uuid4(), customer_id=customer.id, status="open", subject=subject or "(no subject)",
        source="email", quarantined=reason is not None, quarantine_reason=reason,
        previous_ticket_id=previous.id if previous else None, created_at=now, updated_at=now,
        status_changed_at=now, last_customer_reply_at=now,
    )
    db.session.add(ticket)
    db.session.flush()  # the database assigns the ticket number
    return ticket
