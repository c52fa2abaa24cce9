"""Email intake: turn one Postmark inbound message into the right ticket and thread (SPEC §4)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from flask import current_app

from echo.attachments import service as attachments
from echo.customers import service as customers
from echo.extensions import db
from echo.inbound import guards, limits, mail_threading, quotes, reports, sanitize, store
from echo.inbound.schemas import InboundEmail
from echo.outbound import service as outbound
from echo.tickets import service as tickets

MAX_HEADER = limits.MAX_HEADER_VALUE
MAX_AWAITED = 5  # the referred-to ids nearest the message (In-Reply-To first) that may still arrive


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

    Writes through the caller's transaction and never commits; the caller commits once. Nothing
    in the message's content is refused: what does not fit Echo's bounds is cut or left out, said
    so in the message's notices, and the whole original is kept as an attachment beside it.
    """
    settings = current_app.config["ECHO"]
    conn = db.session.connection()
    headers = message.header_map()
    sender_email, sender_name = message.sender()
    rfc_id = mail_threading.normalize_message_id(headers.get("message-id"))
    candidates = mail_threading.candidate_ids(headers.get("in-reply-to"), headers.get("references"))
    report = reports.read_report(headers, message.Subject, message.Attachments, message.TextBody)
    if report:  # a bounce or receipt names the mail it is about in the original it carries
        candidates += [i for i in report.referenced_ids if i not in candidates]
    delivery, known = store.lookup(conn, message.MessageID, candidates + ([rfc_id] if rfc_id else []))
    if delivery:
        return IngestResult(delivery.ticket_id, delivery.number, delivery.thread_id, "duplicate")
    earlier = known.get(rfc_id) if rfc_id else None
    awaited = earlier if earlier and earlier.origin == "awaited" else None
    if earlier and earlier.origin == "inbound" and earlier.sender_email == sender_email:
        return IngestResult(earlier.ticket.id, earlier.ticket.number, None, "duplicate")
    files, notices = attachments.decode_files(message.Attachments, settings.max_attachment_bytes)
    notices = message.notices + notices

    # Who sent it decides how far the mail is believed: weak threading evidence and a new display
    # name need an authenticated sender; a proven forgery is held for an agent unless strong
    # evidence (an id or reply token we minted) ties it to a ticket.
    authentication = guards.sender_authentication(((h.Name, h.Value) for h in message.Headers), sender_email)
    trusted = guards.sender_trusted(authentication)
    customer = customers.upsert_customer(sender_email, sender_name, rename=trusted)
    automated = report is not None or guards.is_automated(headers, sender_email, settings.support_address,
                                                          message.Subject)
    score = guards.spam_score(headers)
    # A blocked sender's mail is kept where agents can look, like spam, and never answered.
    spam = (score is not None and score > settings.spam_threshold) or customer.blocked
    subject = " ".join(message.Subject.split())
    if len(subject) > limits.MAX_SUBJECT:
        notices.append(f"The subject was {len(subject):,} characters long; the first {limits.MAX_SUBJECT:,} are shown.")
        subject = subject[:limits.MAX_SUBJECT]
    html, too_deep = limits.bound_html(message.HtmlBody)
    if too_deep:
        notices.append(f"The HTML nested more than {limits.MAX_HTML_DEPTH} elements deep; the deeper tags were "
                       "removed and their text kept.")
    if notices:
        files.append(_original(message, settings.max_attachment_bytes, notices))

    match = mail_threading.find_ticket(
        conn, customer_id=customer.id, candidates=candidates, known=known, mailbox_hash=message.MailboxHash,
        subject=subject, secret=settings.secret_key, sender_trusted=trusted, awaited=awaited,
    )
    previous = None
    if match and match.ticket.status == "closed" and not automated:
        previous, match = match.ticket, None  # a closed ticket stays closed; the reply starts a new one

    if match:
        ticket = match.ticket
    else:
        # An out-of-office or other automated mail that threads nowhere is kept where agents can look
        # (the quarantine's "auto_reply"), not in the inbox, where nobody needs to answer it.
        reason = ("blocked" if customer.blocked else "spam" if spam
                  else "unauthenticated" if authentication == guards.FAIL else "auto_reply" if automated
                  else "flood" if customer.recent_tickets >= settings.flood_limit else None)
        ticket = tickets.open_ticket(customer.id, subject, source="email", quarantine_reason=reason,
                                     previous_ticket_id=previous.id if previous else None)
    created = match is None

    thread_id = uuid.uuid4()
    stored_files, cid_urls = [], {}
    for file in files:
        attachment = attachments.store_file(thread_id, file, add=False)
        stored_files.append(attachment)
        if file.content_id:
            cid_urls[file.content_id] = attachments.URL_PATH.format(id=attachment.id)
    body_html = sanitize.sanitize_html(html, cid_urls)
    body_text = message.TextBody or sanitize.html_to_text(body_html)
    # Quotes are history only in a reply; a new conversation keeps everything it carries (a
    # forwarded message is the point of the mail, not noise). Echo's own stripper reads every
    # message, from Postmark or an .eml alike: Postmark's StrippedTextReply is not used.
    reply = quotes.strip_reply(message.TextBody, html) if match or candidates else None
    recorded = tickets.record_customer_message(
        ticket, customer,
        tickets.CustomerMessage(
            id=thread_id, source="email", sender_email=sender_email, sender_name=sender_name or None,
            subject=subject, body_html=body_html, body_text=body_text,
            stripped_text=reply.reply if reply and reply.hidden else body_text.strip(),
            rfc_message_id=mail_threading.spell_message_id(headers.get("message-id")),
            postmark_message_id=message.MessageID,
            in_reply_to=(headers.get("in-reply-to") or "")[:MAX_HEADER] or None,
            references=(headers.get("references") or "")[-MAX_HEADER:] or None,
            is_auto_reply=automated, spam_score=score, spam=spam, authentication=authentication,
            notices=notices or None, cc=message.copied(sender_email, settings.support_address) or None,
            # Only an authenticated sender's references may pull a late message onto a ticket.
            awaited_ids=[i for i in candidates if i not in known][:MAX_AWAITED] if trusted else [],
        ),
        opened=created, audit_action="tickets.inbound", register_message_id=earlier is None or awaited is not None,
        audit_payload={
            "created": created, "matched_via": match.via if match else None,
            "previous_ticket_id": str(previous.id) if previous else None, "auto_reply": automated,
            "authentication": authentication, **({"report": report.kind} if report else {}),
            "quarantined": ticket.quarantined or (spam and not created), "attachments": len(files),
            **({"notices": len(notices)} if notices else {}),
        },
    )
    db.session.add_all(stored_files)
    if report and report.failed:
        outbound.record_bounce_report(report.referenced_ids, report.detail, thread_id=thread_id)
    return IngestResult(
        ticket.id, ticket.number, thread_id, "created" if created else "appended",
        matched_via=match.via if match else None, quarantined=ticket.quarantined or recorded.quarantined,
        auto_reply=automated, acknowledged=recorded.acknowledged,
    )


def _original(message: InboundEmail, max_bytes: int, notices: list[str]) -> attachments.IncomingFile:
    """The whole message as it came, as an attachment (its first `max_bytes` if even it is too large)."""
    data = message.original()
    if len(data) > max_bytes:
        notices.append(f"The original message is {len(data):,} bytes; its first {max_bytes:,} are kept.")
        data = data[:max_bytes]
    else:
        notices.append(f"The whole message as it arrived is attached as {limits.ORIGINAL_FILENAME}.")
    return attachments.IncomingFile(limits.ORIGINAL_FILENAME, limits.ORIGINAL_CONTENT_TYPE, data, None)
