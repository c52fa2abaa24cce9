"""Email intake: turn one Postmark inbound message into the right ticket and thread (SPEC §4)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import current_app

from echo.actors import Actor
from echo.attachments import service as attachments
from echo.db import utcnow
from echo.extensions import db
from echo.inbound import guards, sanitize, store, threading
from echo.inbound.schemas import InboundEmail
from echo.mail.service import acknowledgement_params, queue_email
from echo.tickets.models import Ticket
from echo.tickets.service import set_status

MAX_SUBJECT = 1000
REOPENS = ("pending", "resolved")  # a customer's reply on these reopens the ticket
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
    delivery, _ = store.lookup(db.session.connection(), message.MessageID, [])
    return IngestResult(delivery.ticket_id, delivery.number, delivery.thread_id, "duplicate") if delivery else None


def ingest_email(message: InboundEmail) -> IngestResult:
    """File an inbound message: thread it, store it safely, apply status effects, acknowledge it.

    Writes through the caller's transaction and never commits; the caller commits once.
    Raises InvalidPayload or PayloadTooLarge before writing anything it cannot accept.
    """
    settings = current_app.config["ECHO"]
    conn = db.session.connection()
    headers = message.header_map()
    sender_email, sender_name = message.sender()
    rfc_id = threading.normalize_message_id(headers.get("message-id"))
    candidates = threading.candidate_ids(headers.get("in-reply-to"), headers.get("references"))
    delivery, known = store.lookup(conn, message.MessageID, candidates + ([rfc_id] if rfc_id else []))
    if delivery:
        return IngestResult(delivery.ticket_id, delivery.number, delivery.thread_id, "duplicate")
    earlier = known.get(rfc_id) if rfc_id else None
    if earlier and earlier.origin == "inbound" and earlier.sender_email == sender_email:
        return IngestResult(earlier.ticket.id, earlier.ticket.number, None, "duplicate")
    files = attachments.decode_files(message.Attachments, settings.max_attachment_bytes)

    customer = store.upsert_customer(conn, sender_email, sender_name)
    automated = guards.is_automated(headers, sender_email, settings.support_address)
    score = guards.spam_score(headers)
    spam = score is not None and score > settings.spam_threshold
    subject = " ".join(message.Subject.split())[:MAX_SUBJECT]

    match = threading.find_ticket(
        conn, customer_id=customer.id, candidates=candidates, known=known, mailbox_hash=message.MailboxHash,
        subject=subject, secret=settings.secret_key,
    )
    previous = None
    if match and match.ticket.status == "closed" and not automated:
        previous, match = match.ticket, None  # a closed ticket stays closed; the reply starts a new one

    if match:
        ticket_id, number, quarantined = match.ticket.id, match.ticket.number, match.ticket.quarantined
    else:
        reason = "spam" if spam else ("flood" if customer.recent_tickets >= settings.flood_limit else None)
        ticket_id, quarantined = uuid.uuid4(), reason is not None
        number = store.insert_ticket(
            conn, id=ticket_id, customer_id=customer.id, subject=subject or "(no subject)",
            quarantined=quarantined, quarantine_reason=reason,
            previous_ticket_id=previous.id if previous else None,
        )
    created = match is None

    thread_id = uuid.uuid4()
    stored_files, cid_urls = [], {}
    for file in files:
        attachment = attachments.store_file(thread_id, file, add=False)
        stored_files.append(attachment)
        if file.content_id:
            cid_urls[file.content_id] = attachments.URL_PATH.format(id=attachment.id)
    body_html = sanitize.sanitize_html(message.HtmlBody, cid_urls)
    body_text = message.TextBody or sanitize.html_to_text(body_html)
    thread_quarantined = spam and not created
    acknowledged = created and not (automated or quarantined or customer.email_bounced)
    human_reply = match is not None and not automated and not spam
    # A reply to an open, unassigned ticket only stamps its activity, in the write statement itself;
    # reopening it or telling its assignee goes through the workflow services.
    workflow = human_reply and (match.ticket.status in REOPENS or match.ticket.assigned_to is not None)
    store.write_message(
        conn,
        {
            "id": thread_id, "ticket_id": ticket_id, "direction": "inbound", "source": "email",
            "customer_id": customer.id, "sender_email": sender_email, "sender_name": sender_name or None,
            "subject": subject, "body_html": body_html, "body_text": body_text,
            # Quotes are history only in a reply; a new conversation keeps everything it carries
            # (a forwarded message is the point of the mail, not noise).
            "stripped_text": (sanitize.stripped_reply(body_text, message.StrippedTextReply)
                              if match or candidates else body_text.strip()),
            "rfc_message_id": rfc_id, "postmark_message_id": message.MessageID,
            "in_reply_to": (headers.get("in-reply-to") or "")[:MAX_HEADER] or None,
            "references": (headers.get("references") or "")[:MAX_HEADER] or None,
            "is_auto_reply": automated, "spam_score": score, "quarantined": thread_quarantined,
        },
        rfc_id=rfc_id if rfc_id and not earlier else None,
        acknowledgement=acknowledgement_params(rfc_id) if acknowledged else None,
        audit={
            "actor": Actor.customer(customer.id).audit_name, "audit_target": str(ticket_id),
            "audit_payload": {
                "thread_id": str(thread_id), "created": created, "matched_via": match.via if match else None,
                "previous_ticket_id": str(previous.id) if previous else None, "auto_reply": automated,
                "quarantined": quarantined or thread_quarantined, "attachments": len(files),
            },
        },
        customer_replied=human_reply and not workflow,
    )
    db.session.add_all(stored_files)
    if workflow:
        _customer_replied(db.session.get(Ticket, match.ticket.id), customer.id, thread_id)
    return IngestResult(
        ticket_id, number, thread_id, "created" if created else "appended",
        matched_via=match.via if match else None, quarantined=quarantined or thread_quarantined,
        auto_reply=automated, acknowledged=acknowledged,
    )


def _customer_replied(ticket: Ticket, customer_id: uuid.UUID, thread_id: uuid.UUID) -> None:
    """A human reply reopens a waiting or resolved ticket and tells its assignee."""
    now = utcnow()
    if ticket.status in REOPENS:
        set_status(ticket, "open", actor=Actor.customer(customer_id), now=now)
    ticket.updated_at = ticket.last_customer_reply_at = now
    if ticket.assignee is not None and ticket.assignee.active:
        queue_email("customer_reply", to_email=ticket.assignee.email, ticket=ticket, thread_id=thread_id)
