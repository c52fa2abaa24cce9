"""Ticket workflow use cases (SPEC §6). Shared by the console, the agent API, the portal and the CLI.

Every function flushes but never commits, and writes one audit row per change.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update

from echo.actors import SYSTEM, Actor
from echo.agents.models import Agent
from echo.audit import service as audit
from echo.db import utcnow
from echo.errors import EchoError, Forbidden, InvalidPayload, NotFound
from echo.extensions import db
from echo.tickets.models import CATEGORIES, STATUSES, MessageId, Thread, Ticket

DONE = ("resolved", "closed")
MAX_TAGS = 30
_NUMBER = re.compile(r"^\s*(?:TKT-?)?0*(\d{1,12})\s*$", re.IGNORECASE)
_TAG_JUNK = re.compile(r"[^a-z0-9_:.\-]+")


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


def survivor(ticket: Ticket) -> Ticket:
    """Follow merges to the ticket that lives on (bounded, in case of a cycle)."""
    for _ in range(20):
        if ticket.merged_into_id is None:
            return ticket
        ticket = db.session.get(Ticket, ticket.merged_into_id)
    return ticket


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
    from echo.mail.service import queue_email

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


def add_tags(ticket: Ticket, tags: list[str], *, actor: Actor) -> list[str]:
    return set_tags(ticket, list(ticket.tags) + list(tags), actor=actor)


def remove_tags(ticket: Ticket, tags: list[str], *, actor: Actor) -> list[str]:
    gone = set(normalize_tags(tags))
    return set_tags(ticket, [t for t in ticket.tags if t not in gone], actor=actor)


def set_category(ticket: Ticket, category: str | None, *, actor: Actor) -> None:
    if category is not None and category not in CATEGORIES:
        raise InvalidPayload(f"Category must be one of {', '.join(CATEGORIES)}.", code="invalid_category")
    if category != ticket.category:
        previous, ticket.category = ticket.category, category
        ticket.updated_at = utcnow()
        audit.record(actor, "tickets.category", "ticket", ticket.id, old=previous, new=category)


def add_note(ticket: Ticket, *, actor: Actor, body_text: str) -> Thread:
    """An internal note: never emailed, never shown to customers."""
    body = (body_text or "").strip()
    if not body:
        raise InvalidPayload("A note needs some text.", code="empty_body")
    thread = Thread(
        id=uuid.uuid4(), ticket_id=ticket.id, direction="internal", source="console", authored_by=actor.id,
        body_text=body, stripped_text=body, body_html="", created_at=utcnow(),
    )
    db.session.add(thread)
    ticket.updated_at = thread.created_at
    audit.record(actor, "tickets.note", "ticket", ticket.id, thread_id=str(thread.id))
    return thread


def merge(source: Ticket, into: Ticket, *, actor: Actor) -> Ticket:
    """Fold `source` into `into` (same customer): threads and message ids move, both numbers resolve.

    Merges are hard to undo, so among agents only superadmins may merge.
    """
    if actor.kind == "agent" and actor.role != "superadmin":
        raise Forbidden("Only a superadmin may merge tickets.")
    if source.id == into.id:
        raise CannotMerge("A ticket cannot be merged into itself.")
    if source.merged_into_id is not None or into.merged_into_id is not None:
        raise CannotMerge("One of these tickets was already merged.")
    if source.customer_id != into.customer_id:
        raise CannotMerge("Only tickets of the same customer can be merged.")
    moved = db.session.execute(update(Thread).where(Thread.ticket_id == source.id).values(ticket_id=into.id)).rowcount
    db.session.execute(update(MessageId).where(MessageId.ticket_id == source.id).values(ticket_id=into.id))
    now = utcnow()
    # Decide before the source is closed: an open conversation folded into a finished one reopens it.
    if into.status in DONE and source.status not in DONE:
        set_status(into, "open", actor=actor, now=now)
    source.merged_into_id = into.id
    set_status(source, "closed", actor=actor, now=now)
    into.tags = normalize_tags(list(into.tags) + list(source.tags))
    into.updated_at = now
    audit.record(actor, "tickets.merge", "ticket", into.id, source_id=str(source.id), threads_moved=moved)
    db.session.flush()
    db.session.expire_all()  # threads moved by a bulk UPDATE; reload what the session had cached
    return into


def release_from_quarantine(ticket: Ticket, *, actor: Actor) -> None:
    """Put a quarantined ticket (spam or flood) into the inbox; it is acknowledged like new mail."""
    from echo.mail.service import queue_email

    if not ticket.quarantined:
        return
    ticket.quarantined, ticket.quarantine_reason, ticket.updated_at = False, None, utcnow()
    audit.record(actor, "tickets.release", "ticket", ticket.id)
    customer = ticket.customer
    if customer is not None and not customer.email_bounced and customer.deleted_at is None:
        queue_email("acknowledgement", to_email=customer.email, ticket=ticket, context={})


def close_stale_pending(days: int, *, now: datetime | None = None) -> list[uuid.UUID]:
    """Close tickets pending longer than `days` with no customer reply since, and tell each customer."""
    from echo.mail.service import queue_email

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
