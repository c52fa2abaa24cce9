"""Agent replies to customers, and what Postmark tells us about delivery afterwards (SPEC §5)."""

from __future__ import annotations

import email.utils
import re
import uuid
from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from markupsafe import escape
from sqlalchemy import delete, func, literal_column, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from echo.actors import Actor
from echo.attachments import service as attachments
from echo.audit import service as audit
from echo.customers.models import Customer
from echo.db import utcnow
from echo.errors import EchoError, Forbidden, InvalidPayload, NotFound, PayloadTooLarge
from echo.extensions import db
from echo.inbound.sanitize import html_to_text, sanitize_html
from echo.mail.models import OutboxMessage
from echo.mail.service import queue_email
from echo.tickets.models import Draft, MessageId, SavedReply, Thread, Ticket
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
               files: Sequence[attachments.IncomingFile] = (), status: str | None = "pending",
               hold_seconds: int = 0, cc: str | Sequence[str] | None = None, bcc: str | Sequence[str] = (),
               sign: bool = False, seen_until: datetime | None = None) -> ReplyResult:
    """Write an outbound thread and its outbox entry in the caller's transaction; the worker sends it.

    `seen_until` is the time of the latest message the agent had in view when they wrote: if a
    customer message or a colleague's reply has come since, nothing is sent (`ConversationChanged`,
    naming what came) — checked under the ticket's row lock, so of two agents who press send at the
    same moment only the first gets through (the traffic cop).

    `cc` None answers everyone the latest customer message was to (`reply_all`); an agent's own
    list replaces it. `sign` adds the agent's signature under the text. A held reply leaves after
    `hold_seconds`; until then `undo_reply` takes it back.
    The agent's draft of this reply is discarded."""
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
    if seen_until is not None:
        check_unseen(ticket, seen_until, actor=actor)
    if sign and (signature := _signature(actor)) and not text.endswith(signature):
        text = f"{text}\n\n{signature}"
        if html:
            html += f"<p>{escape(signature)}</p>".replace("\n", "<br>")
    if len(text) > MAX_BODY or len(html) > MAX_BODY:
        raise PayloadTooLarge("The reply is too long.")
    skip = {customer.email}
    copied = recipients(reply_all(ticket) if cc is None else cc, "Cc", skip)
    blind = recipients(bcc, "Bcc", skip | set(copied))

    thread = Thread(
        id=uuid.uuid4(), ticket_id=ticket.id, direction="outbound", source="console", authored_by=actor.id,
        subject=ticket.subject, body_text=text, body_html=html, stripped_text=text, created_at=utcnow(),
        cc=copied or None, bcc=blind or None,
    )
    db.session.add(thread)
    for file in files:
        attachments.store_file(thread.id, file)
    db.session.flush()
    before = {"status": ticket.status, "last_agent_reply_at": ticket.last_agent_reply_at.isoformat()
              if ticket.last_agent_reply_at else None}
    outbox = queue_email("reply", to_email=customer.email, ticket=ticket, thread_id=thread.id,
                         hold_seconds=hold_seconds)
    thread.rfc_message_id = outbox.message_id
    ticket.updated_at = ticket.last_agent_reply_at = thread.created_at
    if status and status != ticket.status:
        set_status(ticket, status, actor=actor)
    if hold_seconds:  # what taking it back restores
        outbox.context = {"undo": {**before, "left": ticket.status}}
    audit.record(actor, "tickets.reply", "ticket", ticket.id, thread_id=str(thread.id), outbox_id=str(outbox.id),
                 attachments=len(files), **({"cc": len(copied)} if copied else {}),
                 **({"bcc": len(blind)} if blind else {}))
    if actor.id is not None:
        discard_draft(ticket, actor=actor)
    return ReplyResult(thread, outbox)


MAX_RECIPIENTS = 50


class ConversationChanged(EchoError):
    status = 409
    code = "conversation_changed"


def check_unseen(ticket: Ticket, seen_until: datetime, *, actor: Actor) -> None:
    """Refuse a reply written before a newer customer message or another agent's reply (locks the ticket
    until the caller's commit, so a concurrent sender waits here and then sees this one's reply)."""
    db.session.execute(select(Ticket.id).where(Ticket.id == ticket.id).with_for_update())
    newer = db.session.execute(
        select(Thread.id, Thread.direction, Thread.sender_email, Thread.authored_by, Thread.created_at,
               Thread.stripped_text)
        .where(Thread.ticket_id == ticket.id, Thread.created_at > seen_until, Thread.quarantined.is_(False),
               or_(Thread.direction == "inbound",
                   (Thread.direction == "outbound") & (Thread.authored_by.is_distinct_from(actor.id))))
        .order_by(Thread.created_at)).all()
    if newer:
        details = [{"thread_id": str(row.id), "kind": "customer" if row.direction == "inbound" else "reply",
                    "from": row.sender_email if row.direction == "inbound" else str(row.authored_by),
                    "created_at": row.created_at.isoformat(), "preview": " ".join(row.stripped_text.split())[:200]}
                   for row in newer]
        what = ("the customer wrote again" if all(d["kind"] == "customer" for d in details)
                else "a colleague replied" if all(d["kind"] == "reply" for d in details)
                else "the customer wrote again and a colleague replied")
        raise ConversationChanged(f"Not sent: {what} after you started. Read it, then send anyway or edit.",
                                  details=details)


def _signature(actor: Actor) -> str:
    from echo.agents.models import Agent

    agent = db.session.get(Agent, actor.id) if actor.kind == "agent" and actor.id else None
    return agent.signature.strip() if agent else ""


def reply_all(ticket: Ticket) -> list[str]:
    """Who else a reply goes to by default, from the latest message either way: after a customer's, whoever
    wrote it (a colleague who replied-all) and whoever it was to; after an agent's, the Cc it went with.
    Never support, never the customer (the reply's To)."""
    latest = db.session.execute(
        select(Thread.direction, Thread.sender_email, Thread.cc)
        .where(Thread.ticket_id == ticket.id, Thread.direction.in_(("inbound", "outbound")),
               Thread.quarantined.is_(False))
        .order_by(Thread.created_at.desc()).limit(1)).first()
    if latest is None:
        return []
    owner = ticket.customer.email if ticket.customer else None
    sender = [latest.sender_email] if latest.direction == "inbound" and latest.sender_email else []
    people = sender + list(latest.cc or [])
    return [address for address in dict.fromkeys(people) if address != owner]


def recipients(raw: str | Sequence[str], field: str, skip: Set[str] = frozenset()) -> list[str]:
    """Addresses an agent typed ("Ana <ana@x.com>, bob@y.org" or a list), normalised, without repeats and
    without `skip` or support's own address; one that is not an address is refused, naming it."""
    from echo.inbound.schemas import is_address, normalize_email

    support = current_app.config["ECHO"].support_address.lower()
    entries = [raw] if isinstance(raw, str) else list(raw)
    found: list[str] = []
    for _name, address in email.utils.getaddresses([e.replace(";", ",") for e in entries if e.strip()]):
        normal = normalize_email(address)
        if not is_address(normal):
            raise InvalidPayload(f"{field}: “{address or _name}” is not an email address.", code="invalid_recipient",
                                 details=[{"field": field.lower(), "problem": "not an email address"}])
        if normal not in found and normal not in skip and normal != support:
            found.append(normal)
    if len(found) > MAX_RECIPIENTS:
        raise InvalidPayload(f"{field}: at most {MAX_RECIPIENTS} addresses.", code="too_many_recipients")
    return found


class AlreadySent(EchoError):
    status = 409
    code = "already_sent"


def undo_reply(ticket: Ticket, thread_id: uuid.UUID, *, actor: Actor) -> str:
    """Take back a held reply that has not left yet: its thread, outbox entry, message id and files go,
    the ticket's status is what it was before (unless someone changed it since). Returns its text, for
    the reply box. Once the worker has claimed it, it is sent: `AlreadySent`, and nothing changes."""
    outbox = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.thread_id == thread_id, OutboxMessage.ticket_id == ticket.id,
                                    OutboxMessage.kind == "reply").with_for_update()
    )
    thread = db.session.get(Thread, thread_id)
    if outbox is None or thread is None or thread.ticket_id != ticket.id:
        raise NotFound("No such reply on this ticket.")
    if outbox.state != "queued" or outbox.attempts or outbox.next_attempt_at <= utcnow():
        raise AlreadySent("This reply has already left; it can no longer be taken back.")
    if thread.authored_by != actor.id:
        raise Forbidden("Only the agent who wrote a reply can take it back.")
    undo = (outbox.context or {}).get("undo") or {}
    text = thread.body_text
    for row in list(thread.attachments):
        db.session.delete(row)
    db.session.execute(delete(MessageId).where(MessageId.message_id == outbox.message_id))
    db.session.delete(outbox)
    db.session.flush()
    db.session.delete(thread)
    previous = undo.get("status")
    if previous and previous != ticket.status and ticket.status == undo.get("left"):
        set_status(ticket, previous, actor=actor)
    if "last_agent_reply_at" in undo:
        ticket.last_agent_reply_at = (datetime.fromisoformat(undo["last_agent_reply_at"])
                                      if undo["last_agent_reply_at"] else None)
    audit.record(actor, "tickets.reply_undone", "ticket", ticket.id, thread_id=str(thread_id))
    save_draft(ticket, actor=actor, body_text=text, cc=", ".join(thread.cc or []), bcc=", ".join(thread.bcc or []))
    return text


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


MAX_DRAFT = MAX_BODY


def save_draft(ticket: Ticket, *, actor: Actor, body_text: str, cc: str = "", bcc: str = "") -> Draft | None:
    """Keep what an agent is typing as they type it (one draft per agent and ticket); an empty box deletes it.
    The Cc and Bcc are kept as typed: they are checked when the reply is sent."""
    if len(body_text) > MAX_DRAFT or len(cc) > 20_000 or len(bcc) > 20_000:
        raise PayloadTooLarge("The draft is too long.")
    if not (body_text.strip() or cc.strip() or bcc.strip()):
        discard_draft(ticket, actor=actor)
        return None
    statement = insert(Draft).values(agent_id=actor.id, ticket_id=ticket.id, body_text=body_text, cc=cc, bcc=bcc,
                                     updated_at=utcnow())
    started: bool = db.session.execute(statement.on_conflict_do_update(
        index_elements=[Draft.agent_id, Draft.ticket_id],
        set_={"body_text": statement.excluded.body_text, "cc": statement.excluded.cc, "bcc": statement.excluded.bcc,
              "updated_at": statement.excluded.updated_at}).returning(literal_column("xmax = 0"))).scalar_one()
    if started:  # a new draft (not each keystroke's save): colleagues see "Ana has a draft" live
        audit.record(actor, "tickets.draft_started", "ticket", ticket.id)
    return db.session.get(Draft, (actor.id, ticket.id), populate_existing=True)


def discard_draft(ticket: Ticket, *, actor: Actor) -> None:
    db.session.execute(delete(Draft).where(Draft.agent_id == actor.id, Draft.ticket_id == ticket.id))


def drafts(ticket: Ticket) -> list[Draft]:
    """Every agent's draft on the ticket, latest first."""
    return list(db.session.scalars(select(Draft).where(Draft.ticket_id == ticket.id)
                                   .order_by(Draft.updated_at.desc())))


# --- Saved replies ---------------------------------------------------------------------------

PLACEHOLDERS = {
    "first_name": "the customer's first name (or “there”)", "name": "the customer's name or address",
    "email": "the customer's address", "ticket_number": "the ticket's number", "subject": "the ticket's subject",
    "agent_name": "your name",
}
_PLACEHOLDER = re.compile(r"\{\s*([a-z_]+)\s*\}")


class SavedReplyExists(EchoError):
    status = 409
    code = "saved_reply_exists"


def saved_replies(q: str | None = None) -> list[SavedReply]:
    """The team's saved replies by name, those whose name or text hold `q` when given."""
    query = select(SavedReply).order_by(func.lower(SavedReply.name))
    if q and q.strip():
        like = f"%{q.strip()[:100].replace('%', '').replace('_', '')}%"
        query = query.where(or_(SavedReply.name.ilike(like), SavedReply.body_text.ilike(like)))
    return list(db.session.scalars(query.limit(200)))


def saved_reply_names() -> list[tuple[uuid.UUID, str]]:
    return [(row.id, row.name) for row in db.session.execute(
        select(SavedReply.id, SavedReply.name).order_by(func.lower(SavedReply.name)).limit(500))]


def save_saved_reply(*, actor: Actor, name: str, body_text: str, saved_id: uuid.UUID | None = None) -> SavedReply:
    """Create a saved reply, or change one (`saved_id`); names are unique, whatever their case."""
    name = " ".join((name or "").split())[:200]
    body = (body_text or "").replace("\r\n", "\n").strip()
    if not name or not body:
        raise InvalidPayload("A saved reply needs a name and some text.", code="empty_body")
    if len(body) > MAX_BODY:
        raise PayloadTooLarge("The saved reply is too long.")
    clash = db.session.scalar(select(SavedReply).where(func.lower(SavedReply.name) == name.lower()))
    if clash is not None and clash.id != saved_id:
        raise SavedReplyExists(f"There is already a saved reply called “{clash.name}”.")
    if saved_id is None:
        row = SavedReply(id=uuid.uuid4(), name=name, body_text=body, created_by=actor.id)
        db.session.add(row)
    else:
        found = db.session.get(SavedReply, saved_id)
        if found is None:
            raise NotFound("No such saved reply.")
        row = found
        row.name, row.body_text, row.updated_at = name, body, utcnow()
    db.session.flush()
    audit.record(actor, "saved_replies.save", "saved_reply", row.id, name=name)
    return row


def delete_saved_reply(saved_id: uuid.UUID, *, actor: Actor) -> None:
    row = db.session.get(SavedReply, saved_id)
    if row is None:
        raise NotFound("No such saved reply.")
    db.session.delete(row)
    audit.record(actor, "saved_replies.delete", "saved_reply", saved_id, name=row.name)


def fill_saved_reply(saved_id: uuid.UUID, ticket: Ticket, agent_name: str) -> str:
    """A saved reply's text for this ticket, its placeholders filled in (unknown ones are left as typed)."""
    row = db.session.get(SavedReply, saved_id)
    if row is None:
        raise NotFound("No such saved reply.")
    customer = ticket.customer
    name = (customer.display_name or "").strip() if customer else ""
    values = {
        "first_name": name.split()[0] if name else "there", "name": name or (customer.email if customer else ""),
        "email": customer.email if customer else "", "ticket_number": ticket.number, "subject": ticket.subject,
        "agent_name": agent_name,
    }
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), row.body_text)
