"""Ticket workflow use cases (SPEC §6). Shared by the console, the agent API, the portal and the CLI.

Every function flushes but never commits, and writes one audit row per change.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from redis.exceptions import RedisError
from sqlalchemy import select, update

from echo.actors import SYSTEM, Actor
from echo.agents.models import Agent
from echo.audit import service as audit
from echo.audit.models import AuditLog
from echo.customers.service import CustomerRef
from echo.db import affected_rows, utcnow
from echo.errors import EchoError, InvalidPayload, NotFound
from echo.extensions import db
from echo.jobs import note_redis_failure, redis_connection, redis_unavailable
from echo.mail.service import acknowledgement_params, queue_email
from echo.security import token_hash
from echo.tickets import store
from echo.tickets.models import CATEGORIES, STATUSES, MessageId, Thread, Ticket
from echo.tickets.store import TicketRef

DONE = ("resolved", "closed")
REOPENS = ("pending", "resolved")  # a customer's reply on these reopens the ticket
MAX_TAGS = 30
_NUMBER = re.compile(r"^\s*(?:TKT-?)?0*(\d{1,12})\s*$", re.IGNORECASE)
_TAG_JUNK = re.compile(r"[^a-z0-9_:.\-]+")
log = logging.getLogger(__name__)

# Acknowledgements to senders who did not authenticate, per recipient domain and clock hour: a
# forged From: must not turn Echo into a mail cannon aimed at one company. The big free-mail
# domains carry many unrelated customers, so they get more; each of their addresses is already
# held to the flood guard's few new tickets a day. Authenticated senders are not counted: the
# acknowledgement goes to the person who wrote.
ACK_LIMIT_PER_DOMAIN = 20
ACK_LIMIT_FREE_MAIL = 200
FREE_MAIL_DOMAINS = frozenset({
    "gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com", "yahoo.com",
    "ymail.com", "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "gmx.com",
    "gmx.de", "gmx.net", "web.de", "mail.ru", "yandex.ru", "qq.com", "163.com", "zoho.com", "fastmail.com",
})


class TicketNotFound(NotFound):
    code = "not_found"


class TicketClosed(EchoError):
    status = 409
    code = "ticket_closed"


class CannotMerge(EchoError):
    status = 422
    code = "cannot_merge"


class UnknownAgent(EchoError):
    status = 422
    code = "unknown_agent"


def get_ticket(reference: str | uuid.UUID, *, follow_merges: bool = True) -> Ticket:
    """Find a ticket by number (`TKT-0042`, `tkt-42`, `42`) or id; merged numbers lead to the survivor."""
    ticket = None
    if isinstance(reference, uuid.UUID):
        ticket = db.session.get(Ticket, reference)
    elif (match := _NUMBER.match(reference or "")) is not None:
        ticket = db.session.scalar(select(Ticket).where(Ticket.seq == int(match.group(1))))
    else:
        try:
            ticket = db.session.get(Ticket, uuid.UUID(reference))
        except (ValueError, TypeError):
            ticket = None
    if ticket is None:
        raise TicketNotFound(f"No ticket {reference}.")
    return survivor(ticket) if follow_merges else ticket


T = TypeVar("T", Ticket, TicketRef)


def follow_merges(ticket: T, load: Callable[[uuid.UUID], T | None]) -> T:
    """Follow merges to the ticket that lives on (bounded, in case of a cycle), loading each with `load`."""
    for _ in range(20):
        if ticket.merged_into_id is None:
            break
        following = load(ticket.merged_into_id)
        if following is None:
            break
        ticket = following
    return ticket


def survivor(ticket: Ticket) -> Ticket:
    return follow_merges(ticket, lambda ticket_id: db.session.get(Ticket, ticket_id))


def open_ticket(customer_id: uuid.UUID | None, subject: str, *, source: str, category: str | None = None,
                tags: Sequence[str] = (), quarantine_reason: str | None = None,
                previous_ticket_id: uuid.UUID | None = None, read_by_customer: bool = False,
                customer_wrote: bool | None = None) -> TicketRef:
    """Start a conversation: the one place a ticket is created (mail, portal, reports), in one INSERT.

    A customer's ticket starts with their message (`record_customer_message` writes it next), an
    agent's with the agent's (`customer_wrote=False`, `outbound.service.start_conversation`);
    `quarantine_reason` holds it out of the inbox (spam, flood, unauthenticated, auto_reply)."""
    if category is not None and category not in CATEGORIES:
        raise InvalidPayload(f"Category must be one of {', '.join(CATEGORIES)}.", code="invalid_category")
    ticket_id = uuid.uuid4()
    number = store.insert_ticket(
        db.session.connection(), id=ticket_id, customer_id=customer_id, subject=subject or "(no subject)",
        category=category, source=source, quarantined=quarantine_reason is not None,
        quarantine_reason=quarantine_reason, previous_ticket_id=previous_ticket_id, tags=normalize_tags(list(tags)),
        customer_wrote=customer_id is not None if customer_wrote is None else customer_wrote,
        read_by_customer=read_by_customer,
    )
    return TicketRef(ticket_id, number, customer_id, "open", quarantine_reason is not None, None, None)


@dataclass(frozen=True)
class CustomerMessage:
    """A message from a customer, by mail or the portal, as it is stored (already sanitised)."""

    source: str
    sender_email: str
    sender_name: str | None
    subject: str
    body_text: str
    stripped_text: str
    body_html: str = ""
    rfc_message_id: str | None = None
    postmark_message_id: str | None = None
    in_reply_to: str | None = None
    references: str | None = None
    is_auto_reply: bool = False
    spam_score: float | None = None
    spam: bool = False
    # The sender's authentication (inbound.guards: "pass", "fail", "none", "unchecked"). A portal
    # message comes from a signed-in customer.
    authentication: str = "pass"
    notices: list[str] | None = None  # what the intake cut or left out (the original is attached)
    cc: list[str] | None = None  # the others it was written to (To and Cc, not support), for reply-all
    # Ids this message refers to that Echo has not seen: the message they name may still come
    # (Postmark retries late), and joins this ticket when it does.
    awaited_ids: list[str] = field(default_factory=list)
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class Recorded:
    thread_id: uuid.UUID
    created_at: datetime
    quarantined: bool  # the message itself is held (spam on an existing ticket)
    acknowledged: bool


def record_customer_message(
    ticket: TicketRef | Ticket, customer: CustomerRef, message: CustomerMessage, *, opened: bool, audit_action: str,
    audit_payload: dict[str, Any] | None = None, register_message_id: bool = True,
) -> Recorded:
    """File a customer's message on `ticket` and apply what it means: a new conversation is
    acknowledged (unless automated, held, bounced, from a sender who failed authentication, or past
    the hourly quota of its domain for senders who did not authenticate); a human reply stamps the
    ticket's activity, reopens it if it was waiting or resolved, and tells its assignee.

    The message and its companions are one compiled statement (the intake's hot path); only a reply
    that reopens a ticket or has an assignee to tell goes on through the ORM."""
    held = message.spam and not opened
    acknowledge = opened and not (message.is_auto_reply or ticket.quarantined or customer.email_bounced
                                  or message.authentication == "fail")
    if acknowledge and message.authentication != "pass":
        acknowledge = _within_acknowledgement_quota(message.sender_email)
    human_reply = not opened and not message.is_auto_reply and not message.spam
    # A reply to an open, unassigned ticket only stamps its activity, in the write statement itself.
    workflow = human_reply and (ticket.status in REOPENS or ticket.assigned_to is not None
                                or ticket.snoozed_until is not None)
    thread = {**vars(message), "ticket_id": ticket.id, "direction": "inbound", "customer_id": customer.id,
              "quarantined": held}
    # Ids are compared case-insensitively (message_ids holds them lower-cased); the thread keeps
    # the sender's spelling for the In-Reply-To and References of Echo's answers.
    rfc_id = message.rfc_message_id.lower() if register_message_id and message.rfc_message_id else None
    created_at = store.write_message(
        db.session.connection(), thread, rfc_id=rfc_id,
        acknowledgement=acknowledgement_params(message.rfc_message_id) if acknowledge else None,
        audit={"actor": Actor.customer(customer.id).audit_name, "audit_action": audit_action,
               "audit_target": str(ticket.id),
               "audit_payload": {"thread_id": str(message.id), **(audit_payload or {})}},
        customer_replied=human_reply and not workflow,
        awaited_ids=[i for i in message.awaited_ids if i != rfc_id],
    )
    audit.ticket_changed()  # its audit row was written by that statement
    if workflow:
        _customer_replied(db.session.get_one(Ticket, ticket.id), customer.id, message.id)
    return Recorded(message.id, created_at, held, acknowledge)


def _within_acknowledgement_quota(address: str) -> bool:
    """Count one acknowledgement against its recipient domain's quota for this hour (in Redis).

    Without Redis the intake still answers, and the acknowledgement goes out: the quota bounds an
    attack, and an outage does not make one."""
    domain = address.rpartition("@")[2]
    key = f"echo:acknowledgements:{domain}:{int(time.time() // 3600)}"
    if redis_unavailable():
        return True
    try:
        with redis_connection().pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, 3600)
            count, _ = pipe.execute()
    except RedisError as exc:
        note_redis_failure(exc)
        log.warning("acknowledgement quota not counted (Redis unavailable) for %s", domain)
        return True
    return count <= (ACK_LIMIT_FREE_MAIL if domain in FREE_MAIL_DOMAINS else ACK_LIMIT_PER_DOMAIN)


def _customer_replied(ticket: Ticket, customer_id: uuid.UUID, thread_id: uuid.UUID) -> None:
    """A human reply reopens a waiting or resolved ticket and tells its assignee."""
    now = utcnow()
    if ticket.snoozed_until is not None:  # the customer wrote: the snooze is over
        ticket.snoozed_until = None
        audit.record(Actor.customer(customer_id), "tickets.woke", "ticket", ticket.id, reason="customer_replied")
    if ticket.status in REOPENS:
        set_status(ticket, "open", actor=Actor.customer(customer_id), now=now)
    ticket.updated_at = ticket.last_customer_reply_at = now
    if ticket.assignee is not None and ticket.assignee.active:
        queue_email("customer_reply", to_email=ticket.assignee.email, ticket=ticket, thread_id=thread_id)


def set_status(ticket: Ticket, status: str, *, actor: Actor, now: datetime | None = None) -> None:
    """Move a ticket to any status; resolved and closed stamp closed_at, reopening clears it."""
    if status not in STATUSES:
        raise InvalidPayload(f"Status must be one of {', '.join(STATUSES)}.", code="invalid_status")
    if status == ticket.status:
        return
    now = now or utcnow()
    previous, ticket.status = ticket.status, status
    ticket.status_changed_at = ticket.updated_at = now
    ticket.closed_at = (ticket.closed_at or now) if status in DONE else None
    audit.record(actor, "tickets.status", "ticket", ticket.id, old=previous, new=status)


def assign(ticket: Ticket, agent_email: str | None, *, actor: Actor) -> Agent | None:
    """Assign to an active agent (by email) or to nobody; the new assignee is told by email."""
    agent = None
    if agent_email:
        agent = db.session.scalar(select(Agent).where(Agent.email == agent_email.strip().lower(), Agent.active))
        if agent is None:
            raise UnknownAgent(f"No active agent {agent_email}.")
    new_id = agent.id if agent else None
    if new_id == ticket.assigned_to:
        return agent
    previous, ticket.assigned_to = ticket.assigned_to, new_id
    ticket.updated_at = utcnow()
    audit.record(actor, "tickets.assign", "ticket", ticket.id,
                 old=str(previous) if previous else None, new=str(new_id) if new_id else None)
    if agent is not None and agent.id != actor.id:
        queue_email("assignment", to_email=agent.email, ticket=ticket,
                    context={"agent_id": str(agent.id), "by": actor.audit_name})
    return agent


def normalize_tags(tags: list[str]) -> list[str]:
    """Lower-case, hyphenated, de-duplicated tags in their given order."""
    seen: list[str] = []
    for raw in tags:
        if not isinstance(raw, str):
            raise InvalidPayload("Tags must be strings.", code="invalid_tags")
        tag = _TAG_JUNK.sub("-", raw.strip().lower()).strip("-")[:40]
        if tag and tag not in seen:
            seen.append(tag)
    if len(seen) > MAX_TAGS:
        raise InvalidPayload(f"A ticket can carry at most {MAX_TAGS} tags.", code="invalid_tags")
    return seen


def set_tags(ticket: Ticket, tags: list[str], *, actor: Actor) -> list[str]:
    new = normalize_tags(tags)
    if new != list(ticket.tags):
        added = [t for t in new if t not in ticket.tags]
        removed = [t for t in ticket.tags if t not in new]
        ticket.tags, ticket.updated_at = new, utcnow()
        audit.record(actor, "tickets.tags", "ticket", ticket.id, added=added, removed=removed)
    return new


def set_category(ticket: Ticket, category: str | None, *, actor: Actor) -> None:
    if category is not None and category not in CATEGORIES:
        raise InvalidPayload(f"Category must be one of {', '.join(CATEGORIES)}.", code="invalid_category")
    if category != ticket.category:
        previous, ticket.category = ticket.category, category
        ticket.updated_at = utcnow()
        audit.record(actor, "tickets.category", "ticket", ticket.id, old=previous, new=category)


def add_note(ticket: Ticket, *, actor: Actor, body_text: str, body_html: str = "", source: str = "console",
             subject: str | None = None) -> Thread:
    """An internal note: never emailed, never shown to customers."""
    body = (body_text or "").strip()
    if not body:
        raise InvalidPayload("A note needs some text.", code="empty_body")
    thread = Thread(
        id=uuid.uuid4(), ticket_id=ticket.id, direction="internal", source=source, authored_by=actor.id,
        subject=subject, body_text=body, stripped_text=body, body_html=body_html, created_at=utcnow(),
    )
    db.session.add(thread)
    ticket.updated_at = thread.created_at
    audit.record(actor, "tickets.note", "ticket", ticket.id, thread_id=str(thread.id))
    return thread


def merge(source: Ticket, into: Ticket, *, actor: Actor) -> Ticket:
    """Fold `source` into `into` (same customer): threads and message ids move, both numbers resolve.

    What moved and what both tickets were is kept on the audit row, so `unmerge` can put it back.
    """
    if source.id == into.id:
        raise CannotMerge("A ticket cannot be merged into itself.")
    if source.merged_into_id is not None or into.merged_into_id is not None:
        raise CannotMerge("One of these tickets was already merged.")
    if source.customer_id != into.customer_id:
        raise CannotMerge("Only tickets of the same customer can be merged.")
    before = {"source_status": source.status, "into_status": into.status, "into_tags": list(into.tags)}
    threads = db.session.scalars(
        update(Thread).where(Thread.ticket_id == source.id).values(ticket_id=into.id).returning(Thread.id)
        .execution_options(synchronize_session=False)).all()
    ids = db.session.scalars(
        update(MessageId).where(MessageId.ticket_id == source.id).values(ticket_id=into.id)
        .returning(MessageId.message_id).execution_options(synchronize_session=False)).all()
    now = utcnow()
    # Decide before the source is closed: an open conversation folded into a finished one reopens it.
    if into.status in DONE and source.status not in DONE:
        set_status(into, "open", actor=actor, now=now)
    source.merged_into_id = into.id
    set_status(source, "closed", actor=actor, now=now)
    into.tags = normalize_tags(list(into.tags) + list(source.tags))
    into.updated_at = now
    audit.record(actor, "tickets.merged_into", "ticket", source.id, into_id=str(into.id), into_number=into.number)
    audit.record(actor, "tickets.merge", "ticket", into.id, source_id=str(source.id), threads_moved=len(threads),
                 source_number=source.number, into_number=into.number, threads=[str(t) for t in threads],
                 message_ids=list(ids), **before)
    db.session.flush()
    db.session.expire_all()  # threads moved by a bulk UPDATE; reload what the session had cached
    return into


class CannotUnmerge(EchoError):
    status = 409
    code = "cannot_unmerge"


def unmerge(source: Ticket, *, actor: Actor) -> Ticket:
    """Undo a merge: `source`'s threads and message ids go back to it, and both tickets' statuses (and
    the survivor's tags) are what they were before. What arrived on the survivor since stays there."""
    if source.merged_into_id is None:
        raise CannotUnmerge(f"{source.number} is not merged into another ticket.")
    into = db.session.get_one(Ticket, source.merged_into_id)
    record = db.session.scalar(
        select(AuditLog).where(AuditLog.action == "tickets.merge", AuditLog.target_type == "ticket",
                               AuditLog.target_id == str(into.id),
                               AuditLog.payload["source_id"].astext == str(source.id))
        .order_by(AuditLog.id.desc()).limit(1))
    if record is None or "threads" not in record.payload:
        raise CannotUnmerge("This merge was made before merges could be undone.")
    done = record.payload
    thread_ids = [uuid.UUID(t) for t in done["threads"]]
    back = affected_rows(db.session.execute(
        update(Thread).where(Thread.id.in_(thread_ids), Thread.ticket_id == into.id).values(ticket_id=source.id)
        .execution_options(synchronize_session=False)))
    db.session.execute(
        update(MessageId).where(MessageId.message_id.in_(done["message_ids"]), MessageId.ticket_id == into.id)
        .values(ticket_id=source.id).execution_options(synchronize_session=False))
    now = utcnow()
    source.merged_into_id = None
    set_status(source, done["source_status"], actor=actor, now=now)
    if into.status != done["into_status"]:
        set_status(into, done["into_status"], actor=actor, now=now)
    into.tags = normalize_tags([t for t in into.tags if t in done["into_tags"] or t not in source.tags])
    into.updated_at = source.updated_at = now
    audit.record(actor, "tickets.unmerge", "ticket", into.id, source_id=str(source.id), threads_moved=back,
                 source_number=source.number, into_number=into.number)
    audit.record(actor, "tickets.unmerge", "ticket", source.id, source_id=str(source.id), threads_moved=back,
                 source_number=source.number, into_number=into.number)
    db.session.flush()
    db.session.expire_all()
    return source


NO_ACKNOWLEDGEMENT_ON_RELEASE = frozenset({"unauthenticated", "spam", "auto_reply", "blocked", "deleted"})


def release_from_quarantine(ticket: Ticket, *, actor: Actor) -> None:
    """Put a quarantined ticket (spam, flood, unauthenticated, auto_reply) into the inbox; it is
    acknowledged like new mail when it was held for its volume (flood), never when it was spam, an
    automated mail, or from a sender who failed authentication (the address may be a forgery's victim)."""
    if not ticket.quarantined:
        return
    reason = ticket.quarantine_reason
    ticket.quarantined, ticket.quarantine_reason, ticket.updated_at = False, None, utcnow()
    audit.record(actor, "tickets.release", "ticket", ticket.id, reason=reason)
    customer = ticket.customer
    if (customer is not None and not customer.email_bounced and customer.deleted_at is None
            and reason not in NO_ACKNOWLEDGEMENT_ON_RELEASE):
        queue_email("acknowledgement", to_email=customer.email, ticket=ticket, context={})


def close_stale_pending(days: int, *, now: datetime | None = None) -> list[uuid.UUID]:
    """Close tickets pending longer than `days` with no customer reply since, and tell each customer."""
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    stale = db.session.scalars(
        select(Ticket).where(Ticket.status == "pending", Ticket.status_changed_at < cutoff,
                             Ticket.merged_into_id.is_(None))
        .with_for_update(of=Ticket, skip_locked=True)
    ).all()
    closed = []
    for ticket in stale:
        last_reply = ticket.last_customer_reply_at
        if last_reply is not None and last_reply >= cutoff:
            continue
        set_status(ticket, "closed", actor=SYSTEM, now=now)
        audit.record(SYSTEM, "tickets.auto_close", "ticket", ticket.id, days=days)
        if ticket.customer is not None and not ticket.customer.email_bounced and ticket.customer.deleted_at is None:
            queue_email("auto_closed", to_email=ticket.customer.email, ticket=ticket, context={"days": days})
        closed.append(ticket.id)
    return closed


# --- Snooze, spam, blocked senders, delete ------------------------------------------------------

MAX_SNOOZE = timedelta(days=366)


def snooze(ticket: Ticket, until: datetime | None, *, actor: Actor, now: datetime | None = None) -> None:
    """Put a ticket out of the open views until `until` (None wakes it now); the clock reopens it then
    and tells its assignee (`wake_snoozed`). A new customer message wakes it at once."""
    now = now or utcnow()
    if until is not None:
        if until.tzinfo is None:
            raise InvalidPayload("A snooze needs a time with its zone.", code="invalid_snooze")
        if until <= now:
            raise InvalidPayload("Snooze until a time in the future.", code="invalid_snooze")
        if until - now > MAX_SNOOZE:
            raise InvalidPayload("A ticket can be snoozed for at most a year.", code="invalid_snooze")
        if ticket.status == "closed":
            raise TicketClosed("A closed ticket cannot be snoozed.")
    if until == ticket.snoozed_until:
        return
    previous, ticket.snoozed_until, ticket.updated_at = ticket.snoozed_until, until, now
    audit.record(actor, "tickets.snooze" if until else "tickets.unsnooze", "ticket", ticket.id,
                 until=until.isoformat() if until else None, old=previous.isoformat() if previous else None)


def wake_snoozed(now: datetime | None = None) -> list[uuid.UUID]:
    """Reopen every ticket whose snooze has ended, and tell each assignee (run by the clock)."""
    now = now or utcnow()
    due = db.session.scalars(
        select(Ticket).where(Ticket.snoozed_until.is_not(None), Ticket.snoozed_until <= now)
        .order_by(Ticket.snoozed_until).limit(500).with_for_update(of=Ticket, skip_locked=True)).all()
    for ticket in due:
        wake(ticket, actor=SYSTEM, now=now, reason="snooze_ended")
    return [ticket.id for ticket in due]


def wake(ticket: Ticket, *, actor: Actor, now: datetime, reason: str) -> None:
    """End a ticket's snooze: it is open again, and its assignee hears of it (unless they woke it)."""
    ticket.snoozed_until = None
    if ticket.status not in ("open", "closed"):
        set_status(ticket, "open", actor=actor, now=now)
    ticket.updated_at = now
    audit.record(actor, "tickets.woke", "ticket", ticket.id, reason=reason)
    assignee = ticket.assignee
    if assignee is not None and assignee.active and assignee.id != actor.id:
        queue_email("snooze_ended", to_email=assignee.email, ticket=ticket, context={"reason": reason})


def quarantine(ticket: Ticket, reason: str, *, actor: Actor) -> None:
    """Hold a ticket out of the inbox (an agent calling it spam, or deleting it: both can be released)."""
    if ticket.quarantined and ticket.quarantine_reason == reason:
        return
    previous = ticket.quarantine_reason
    ticket.quarantined, ticket.quarantine_reason, ticket.updated_at = True, reason, utcnow()
    audit.record(actor, f"tickets.{reason}", "ticket", ticket.id, old=previous)


def mark_spam(ticket: Ticket, *, actor: Actor, block: bool = False) -> None:
    """This is spam: into the quarantine as spam; `block` also quarantines the sender's future mail."""
    quarantine(ticket, "spam", actor=actor)
    if block and ticket.customer is not None:
        block_sender(ticket.customer.email, actor=actor)


def block_sender(address: str, *, actor: Actor) -> bool:
    """Quarantine this address's future mail silently (it is kept, never refused, never acknowledged)."""
    from sqlalchemy.dialects.postgresql import insert

    from echo.inbound.schemas import normalize_email
    from echo.tickets.models import BlockedSender

    email = normalize_email(address)
    if not email:
        raise InvalidPayload(f"{address!r} is not an email address.", code="invalid_email")
    if email == current_support_address():
        raise InvalidPayload("Support's own address cannot be blocked.", code="invalid_email")
    added = affected_rows(db.session.execute(
        insert(BlockedSender).values(email=email, blocked_by=actor.id).on_conflict_do_nothing()))
    if added:  # audit rows name no address: the sender by its hash
        audit.record(actor, "senders.blocked", "sender", token_hash(email))
    return bool(added)


def unblock_sender(address: str, *, actor: Actor) -> bool:
    from sqlalchemy import delete

    from echo.inbound.schemas import normalize_email
    from echo.tickets.models import BlockedSender

    email = normalize_email(address)
    removed = affected_rows(db.session.execute(delete(BlockedSender).where(BlockedSender.email == email)))
    if removed:
        audit.record(actor, "senders.unblocked", "sender", token_hash(email))
    return bool(removed)


def current_support_address() -> str:
    from flask import current_app

    return current_app.config["ECHO"].support_address.lower()


def delete_ticket(ticket: Ticket, *, actor: Actor) -> bool:
    """Delete: a ticket in the inbox moves to the quarantine as `deleted` (it can be released); one already
    in the quarantine is purged for good, with its messages, files and unsent mail. Returns whether it was purged."""
    if not ticket.quarantined:
        quarantine(ticket, "deleted", actor=actor)
        return False
    purge(ticket, actor=actor)
    return True


def purge(ticket: Ticket, *, actor: Actor) -> None:
    """Remove a quarantined ticket and everything on it (the storage bytes go with the orphan sweep).
    A ticket others were merged into, or a thread on it that was merged from elsewhere, is refused."""
    from sqlalchemy import delete, or_

    from echo.attachments.models import Attachment
    from echo.mail.models import OutboxMessage

    if db.session.scalar(select(Ticket.id).where(Ticket.merged_into_id == ticket.id).limit(1)) is not None:
        raise EchoError("Other tickets were merged into this one; undo those merges first.", status=409,
                        code="has_merged_tickets")
    threads = select(Thread.id).where(Thread.ticket_id == ticket.id)
    db.session.execute(delete(Attachment).where(Attachment.thread_id.in_(threads)))
    db.session.execute(delete(MessageId).where(or_(MessageId.ticket_id == ticket.id, MessageId.thread_id.in_(threads))))
    db.session.execute(delete(OutboxMessage).where(or_(OutboxMessage.ticket_id == ticket.id,
                                                       OutboxMessage.thread_id.in_(threads))))
    db.session.execute(delete(Thread).where(Thread.ticket_id == ticket.id))
    db.session.execute(update(Ticket).where(Ticket.previous_ticket_id == ticket.id).values(previous_ticket_id=None))
    audit.record(actor, "tickets.purged", "ticket", ticket.id, number=ticket.number,
                 reason=ticket.quarantine_reason)
    db.session.flush()
    db.session.execute(delete(Ticket).where(Ticket.id == ticket.id))
    db.session.expunge(ticket)


# --- Bulk actions ---------------------------------------------------------------------------

BULK_LIMIT = 1000
BULK_ACTIONS = ("status", "assign", "tag", "untag", "snooze", "spam", "delete", "release")


@dataclass(frozen=True)
class BulkResult:
    changed: list[str]  # ticket numbers, as they were named
    skipped: dict[str, str]  # number -> why it was left alone


def bulk(numbers: Sequence[str], action: str, *, actor: Actor, value: str | None = None,
         until: datetime | None = None) -> BulkResult:
    """Apply one action to many tickets at once, each through the same function as a single change.

    Every ticket named must exist and not be merged, or nothing changes (the caller sees which were
    wrong); a ticket that cannot take the action (a closed one cannot be snoozed) is skipped and named."""
    if action not in BULK_ACTIONS:
        raise InvalidPayload(f"Action must be one of {', '.join(BULK_ACTIONS)}.", code="invalid_action")
    wanted = list(dict.fromkeys(n.strip().upper() for n in numbers if isinstance(n, str) and n.strip()))
    if not wanted:
        raise InvalidPayload("Choose at least one ticket.", code="no_tickets")
    if len(wanted) > BULK_LIMIT:
        raise InvalidPayload(f"At most {BULK_LIMIT} tickets at once.", code="too_many_tickets")
    seqs = {}
    for number in wanted:
        found = _NUMBER.match(number)
        if found is None:
            raise InvalidPayload(f"{number} is not a ticket number.", code="unknown_tickets",
                                 details=[{"ticket": number, "problem": "not a ticket number"}])
        seqs[int(found.group(1))] = number
    rows = db.session.scalars(select(Ticket).where(Ticket.seq.in_(list(seqs))).order_by(Ticket.seq)
                              .with_for_update(of=Ticket)).all()
    by_seq = {ticket.seq: ticket for ticket in rows}
    problems = [{"ticket": name, "problem": "no such ticket" if seq not in by_seq else "merged into another"}
                for seq, name in seqs.items() if seq not in by_seq or by_seq[seq].merged_into_id is not None]
    if problems:
        raise NotFound("Some of these tickets do not exist or were merged: "
                       + ", ".join(p["ticket"] for p in problems) + ". Nothing was changed.",
                       code="unknown_tickets", details=problems)
    if action == "assign" and value:
        agent = db.session.scalar(select(Agent).where(Agent.email == value.strip().lower(), Agent.active))
        if agent is None:
            raise UnknownAgent(f"No active agent {value}.")
    if action in ("tag", "untag") and not normalize_tags([value or ""]):
        raise InvalidPayload("Name the tag.", code="invalid_tags")
    if action == "status" and value not in STATUSES:
        raise InvalidPayload(f"Status must be one of {', '.join(STATUSES)}.", code="invalid_status")
    if action == "snooze" and (until is None or until <= utcnow()):
        raise InvalidPayload("Snooze until a time in the future.", code="invalid_snooze")
    # What a ticket cannot take is known before anything changes; it is skipped and named.
    unfit: dict[str, Callable[[Ticket], str | None]] = {
        "snooze": lambda t: "a closed ticket cannot be snoozed" if t.status == "closed" else None,
        "tag": lambda t: (f"it already has {MAX_TAGS} tags" if len(t.tags) >= MAX_TAGS
                          and normalize_tags([value or ""])[0] not in t.tags else None),
        "release": lambda t: None if t.quarantined else "it is not in the quarantine",
    }
    work: dict[str, Callable[[Ticket], Any]] = {
        "status": lambda t: set_status(t, value or "", actor=actor),
        "assign": lambda t: assign(t, value or None, actor=actor),
        "tag": lambda t: set_tags(t, [*t.tags, value or ""], actor=actor),
        "untag": lambda t: set_tags(t, [x for x in t.tags if x != normalize_tags([value or ""])[0]], actor=actor),
        "snooze": lambda t: snooze(t, until, actor=actor),
        "spam": lambda t: mark_spam(t, actor=actor),
        "delete": lambda t: delete_ticket(t, actor=actor),
        "release": lambda t: release_from_quarantine(t, actor=actor),
    }
    changed, skipped = [], {}
    check = unfit.get(action)
    for seq, name in seqs.items():
        ticket = by_seq[seq]
        if check is not None and (why := check(ticket)):
            skipped[name] = why
            continue
        work[action](ticket)
        changed.append(name)
    audit.record(actor, "tickets.bulk", "tickets", action, count=len(changed), skipped=len(skipped))
    return BulkResult(changed, skipped)
