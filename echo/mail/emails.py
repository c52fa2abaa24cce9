"""Each email Echo sends is a named template set plus one function that builds its context."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import datetime

from flask import current_app, render_template
from sqlalchemy import select, true

from echo.attachments.models import Attachment
from echo.attachments.storage import storage
from echo.extensions import db
from echo.mail import reply_token
from echo.mail.models import CUSTOMER_EMAILS, OutboxMessage
from echo.mail.postmark import OutgoingEmail
from echo.tickets.models import Thread, Ticket

Builder = Callable[[OutboxMessage], tuple[dict, dict[str, str]]]
_BUILDERS: dict[str, Builder] = {}


def email(kind: str):
    def register(builder: Builder) -> Builder:
        _BUILDERS[kind] = builder
        return builder

    return register


def portal_link(ticket: Ticket) -> str | None:
    portal = current_app.config["ECHO"].portal_url
    return f"{portal}/tickets/{ticket.id}" if portal else None


def threading_headers(*message_ids: str | None) -> dict[str, str]:
    ids = [f"<{m}>" for m in message_ids if m]
    return {"In-Reply-To": ids[-1], "References": " ".join(ids)} if ids else {}


# Anything a mail client might turn into a link: URLs (any scheme, or www.), addresses, host names
# (labels of letters, digits or hyphens, ASCII or not, with any of the dots IDNA accepts) and IPv4.
# File names whose extension is no top-level domain ("invoice.pdf") are left alone.
_DOT = r"[.\u3002\uff0e\uff61]"
_LINKISH = re.compile(
    rf"(?:\b[a-z][a-z0-9+.-]{{1,20}}://|\bwww{_DOT})\S*"
    r"|[^\s@<>()\[\]]{1,64}@\S+"
    rf"|\b(?:[^\W_][\w-]{{0,62}}{_DOT}){{1,10}}"
    r"(?!(?:pdf|docx?|xlsx?|pptx?|csv|txt|log|png|jpe?g|gif|heic|js|json|eml|msg)\b)"
    r"(?:[^\W\d_]{2,63}|xn--[\w-]{1,59})\b(?:[/:?#]\S*)?"
    r"|\b\d{1,3}(?:\.\d{1,3}){3}\b(?:[/:?#]\S*)?",
    re.IGNORECASE,
)
MAX_ECHOED_SUBJECT = 100


def echoable_subject(subject: str | None) -> str:
    """The customer's subject as an automatic reply may repeat it: links and addresses removed, and
    short. Anyone can send mail in a customer's name, and what Echo sends on its own must not
    carry a stranger's link (a phishing URL) from the support address."""
    echoed = " ".join(_LINKISH.sub("[link removed]", (subject or "")[:3 * MAX_ECHOED_SUBJECT]).split())
    if not echoed.replace("[link removed]", "").strip(" -:;,.|"):
        return "your message"
    return echoed if len(echoed) <= MAX_ECHOED_SUBJECT else echoed[:MAX_ECHOED_SUBJECT - 1] + "…"


@email("acknowledgement")
def acknowledgement(outbox: OutboxMessage) -> tuple[dict, dict[str, str]]:
    ticket = db.session.get_one(Ticket, outbox.ticket_id)
    context = {"ticket": ticket, "subject": echoable_subject(ticket.subject), "portal_link": portal_link(ticket)}
    headers = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
    headers.update(threading_headers(outbox.context.get("in_reply_to")))
    return context, headers


def thread_ids(ticket: Ticket, before: datetime | None = None) -> list[str]:
    """Message ids of the conversation so far, oldest first (customer mail and our sent replies)."""
    rows = db.session.execute(
        select(Thread.rfc_message_id, OutboxMessage.postmark_message_id, OutboxMessage.message_id, Thread.direction)
        .outerjoin(OutboxMessage, OutboxMessage.thread_id == Thread.id)
        .where(Thread.ticket_id == ticket.id, Thread.direction != "internal",
               Thread.created_at < before if before else true())
        .order_by(Thread.created_at)
    )
    ids = []
    for rfc_id, postmark_id, own_id, direction in rows:
        message_id = rfc_id if direction == "inbound" else (f"{postmark_id}@mtasv.net" if postmark_id else own_id)
        if message_id and message_id not in ids:
            ids.append(message_id)
    return ids


def references_header(ids: list[str]) -> dict[str, str]:
    """In-Reply-To the latest message; References the first and the most recent ones (RFC 5322 §3.6.4)."""
    if not ids:
        return {}
    kept = ids if len(ids) <= 10 else [ids[0]] + ids[-9:]
    return {"In-Reply-To": f"<{ids[-1]}>", "References": " ".join(f"<{i}>" for i in kept)}


@email("reply")
def reply(outbox: OutboxMessage) -> tuple[dict, dict[str, str]]:
    ticket = db.session.get_one(Ticket, outbox.ticket_id)
    thread = db.session.get_one(Thread, outbox.thread_id)
    earlier = thread_ids(ticket, before=thread.created_at)
    # The first message of a conversation an agent started answers nothing: no "Re:".
    context = {"ticket": ticket, "thread": thread, "portal_link": portal_link(ticket), "first": not earlier}
    return context, references_header(earlier)


@email("auto_closed")
def auto_closed(outbox: OutboxMessage) -> tuple[dict, dict[str, str]]:
    ticket = db.session.get_one(Ticket, outbox.ticket_id)
    context = {"ticket": ticket, "portal_link": portal_link(ticket), "days": outbox.context.get("days")}
    headers = {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}
    headers.update(references_header(thread_ids(ticket)))
    return context, headers


def _agent_notification(outbox: OutboxMessage) -> tuple[dict, dict[str, str]]:
    ticket = db.session.get_one(Ticket, outbox.ticket_id)
    console = current_app.config["ECHO"].console_url
    context = {"ticket": ticket, "console_link": f"{console}/tickets/{ticket.number}" if console else None}
    return context, {"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"}


@email("portal_enrol")
def portal_enrol(outbox: OutboxMessage) -> tuple[dict, dict[str, str]]:
    return {"link": outbox.context.get("link")}, {"Auto-Submitted": "auto-generated"}


email("assignment")(_agent_notification)
email("customer_reply")(_agent_notification)
email("snooze_ended")(_agent_notification)
for _kind in ("new_ticket", "customer_reply", "assigned", "mention"):
    email(f"notify_{_kind}")(_agent_notification)


def render(outbox: OutboxMessage) -> OutgoingEmail:
    """Turn an outbox entry into the email Postmark will send."""
    settings = current_app.config["ECHO"]
    context, headers = _BUILDERS[outbox.kind](outbox)
    context.setdefault("from_name", settings.from_name)
    headers.setdefault("X-Loop", settings.support_address)
    template = f"email/{outbox.kind}"
    ticket = context.get("ticket")
    reply_to = (
        reply_token.reply_address(settings.secret_key, settings.support_address, ticket.id)
        if ticket is not None and outbox.kind in CUSTOMER_EMAILS else settings.support_address
    )
    thread = context.get("thread") if outbox.kind == "reply" else None
    metadata = {"echo_outbox_id": str(outbox.id)}
    if ticket is not None:
        metadata["echo_ticket_id"] = str(ticket.id)
    return OutgoingEmail(
        to=outbox.to_email,
        subject=" ".join(render_template(f"{template}/subject.txt", **context).split()),
        text_body=render_template(f"{template}/body.txt", **context),
        html_body=render_template(f"{template}/body.html", **context),
        reply_to=reply_to,
        headers=headers,
        metadata=metadata,
        tag=outbox.kind,
        attachments=_attachments(outbox.thread_id) if outbox.kind == "reply" else None,
        cc=", ".join(thread.cc or []) if thread is not None else "",
        bcc=", ".join(thread.bcc or []) if thread is not None else "",
    )


def _attachments(thread_id) -> list[dict]:
    files = db.session.scalars(
        select(Attachment).where(Attachment.thread_id == thread_id, Attachment.erased_at.is_(None))
    ).all()
    return [
        {"Name": f.filename, "Content": base64.b64encode(storage().get(f.s3_key)).decode(),
         "ContentType": f.content_type}
        for f in files
    ]
