"""Read-side queries for tickets: the filtered (and searched) list, and a ticket's conversation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import g, has_app_context
from sqlalchemy import Select, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import distinct_on

from echo.agents.models import Agent
from echo.audit.models import AuditLog
from echo.customers.models import Customer
from echo.extensions import db
from echo.mail.models import OutboxMessage
from echo.search.service import SEARCH_PAGE, search_tickets
from echo.tickets.models import LIVE, STATUSES, Draft, Thread, Ticket

ACTIVE = ("open", "pending")  # the console's default view, "All open": what still needs the team
ORDERS = ("updated", "newest", "waiting")


@dataclass(frozen=True)
class TicketFilters:
    status: str | None = None  # one of STATUSES, "active" (open or pending), or None for every status
    assignee: str | None = None  # an email, "none" for unassigned
    tag: str | None = None
    customer: str | None = None  # an email
    q: str | None = None
    quarantined: bool = False
    # Snoozed tickets are out of every status view until they wake; the Snoozed view lists only them.
    snoozed: bool = False
    ranked: bool = False
    page: int = 1
    per_page: int = 25
    # "updated": latest activity of any kind first (the agent API's); "newest": the customer's latest
    # message first; "waiting": the longest-waiting customer first.
    order: str = "updated"


@dataclass
class TicketPage:
    tickets: list[Ticket]
    total: int
    capped: bool = False
    snippets: dict[uuid.UUID, str] = field(default_factory=dict)


# Spelled as the partial indexes spell them (literals, not parameters), so that a prepared statement's
# generic plan can use those indexes as well as a custom plan can.
_LIVE = text(LIVE)
_ACTIVE = text("(tickets.status = 'open' OR tickets.status = 'pending')")


def filtered(filters: TicketFilters) -> Select:
    """`select(Ticket)` narrowed by every filter except the search words."""
    if filters.status is not None and not filters.snoozed and not filters.quarantined:
        query = select(Ticket).where(_LIVE)
    else:
        query = select(Ticket).where(Ticket.merged_into_id.is_(None), Ticket.quarantined.is_(filters.quarantined))
        if filters.snoozed:
            query = query.where(Ticket.snoozed_until.is_not(None))
        elif filters.status is not None:
            query = query.where(Ticket.snoozed_until.is_(None))
    if filters.status in STATUSES:
        query = query.where(Ticket.status == filters.status)
    elif filters.status == "active":
        query = query.where(_ACTIVE)
    if filters.assignee == "none":
        query = query.where(Ticket.assigned_to.is_(None))
    elif filters.assignee:
        query = query.where(Ticket.assigned_to == _agent_id(filters.assignee))
    if filters.tag:
        query = query.where(Ticket.tags.contains([filters.tag.lower()]))
    if filters.customer:
        query = query.where(
            Ticket.customer_id.in_(select(Customer.id).where(Customer.email == filters.customer.lower())))
    return query


def _agent_id(email: str) -> uuid.UUID | None:
    """An agent's id by email, looked up once per request (the list and each of its counts filter by it)."""
    cache = g.setdefault("echo_agent_ids", {}) if has_app_context() else {}
    key = email.lower()
    if key not in cache:
        cache[key] = db.session.scalar(select(Agent.id).where(Agent.email == key))
    return cache[key]


def list_tickets(filters: TicketFilters) -> TicketPage:
    """One page of tickets, newest activity first (or ranked, for a search), with the total."""
    base = filtered(filters)
    if filters.q:
        found = search_tickets(filters.q, base, page=filters.page, per_page=filters.per_page, ranked=filters.ranked)
        rows = (db.session.execute(SEARCH_PAGE, {"ids": found.ticket_ids, "q": found.query}).all()
                if found.ticket_ids else [])
        by_id = {ticket.id: (ticket, snippet) for ticket, snippet in rows}
        page = [by_id[i] for i in found.ticket_ids if i in by_id]
        return TicketPage([ticket for ticket, _ in page], found.total, found.capped,
                          {ticket.id: snippet for ticket, snippet in page if snippet})
    # Counted up to COUNT_CAP + 1 like the tabs: past that the page says "more than 10,000".
    total = db.session.execute(select(func.count()).select_from(
        base.with_only_columns(Ticket.id).limit(COUNT_CAP + 1).subquery())).scalar_one()
    tickets = db.session.scalars(
        base.order_by(*_ORDER_BY.get(filters.order, _ORDER_BY["updated"]))
        .limit(filters.per_page).offset((filters.page - 1) * filters.per_page)
    ).all()
    return TicketPage(list(tickets), min(total, COUNT_CAP), capped=total > COUNT_CAP)


COUNT_CAP = 10_000
# When the customer last wrote (a conversation an agent started: when it began).
# Spelled as the index `ix_tickets_customer_activity` spells it, so that the planner can use it.
_CUSTOMER_ACTIVITY = func.coalesce(Ticket.last_customer_reply_at, Ticket.created_at)
_ORDER_BY = {
    "updated": (Ticket.updated_at.desc(), Ticket.seq.desc()),
    "newest": (_CUSTOMER_ACTIVITY.desc(), Ticket.seq.desc()),
    "waiting": (_CUSTOMER_ACTIVITY.asc(), Ticket.seq.asc()),
}


def status_counts(filters: TicketFilters) -> dict[str, int]:
    """How many tickets each status tab holds under the other filters, counted up to COUNT_CAP + 1
    (the tab shows "10000+"), so a large help desk never pays for a full scan per page view."""
    counts = {}
    for status in STATUSES:
        base = filtered(TicketFilters(status=status, assignee=filters.assignee, tag=filters.tag,
                                      customer=filters.customer, quarantined=filters.quarantined))
        limited = base.with_only_columns(Ticket.id).limit(COUNT_CAP + 1).subquery()
        counts[status] = db.session.execute(select(func.count()).select_from(limited)).scalar_one()
    counts["active"] = sum(counts[status] for status in ACTIVE)
    snoozed = filtered(TicketFilters(assignee=filters.assignee, tag=filters.tag, customer=filters.customer,
                                     quarantined=filters.quarantined, snoozed=True))
    counts["snoozed"] = db.session.execute(select(func.count()).select_from(
        snoozed.with_only_columns(Ticket.id).limit(COUNT_CAP + 1).subquery())).scalar_one()
    return counts


def next_after(filters: TicketFilters, ticket: Ticket) -> Ticket | None:
    """The ticket after `ticket` in a view's order ("send and next"); None at the end, or for a search."""
    if filters.q:
        return None
    key: tuple[Any, ...]
    if filters.order == "updated":
        key, mine = (Ticket.updated_at, Ticket.seq), (ticket.updated_at, ticket.seq)
    else:
        key = (_CUSTOMER_ACTIVITY, Ticket.seq)
        mine = (ticket.last_customer_reply_at or ticket.created_at, ticket.seq)
    after = tuple_(*key) > tuple_(*mine) if filters.order == "waiting" else tuple_(*key) < tuple_(*mine)
    return db.session.scalars(
        filtered(filters).where(after, Ticket.id != ticket.id)
        .order_by(*_ORDER_BY.get(filters.order, _ORDER_BY["updated"])).limit(1)).first()


PREVIEW_CHARS = 160


def previews(ticket_ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The start of each ticket's latest customer message (what the agent reads first), for the list's rows."""
    if not ticket_ids:
        return {}
    rows = db.session.execute(
        select(Thread.ticket_id, func.left(Thread.stripped_text, PREVIEW_CHARS * 2))
        .where(Thread.ticket_id.in_(ticket_ids), Thread.direction == "inbound")
        .order_by(Thread.ticket_id, Thread.created_at.desc()).ext(distinct_on(Thread.ticket_id))
    ).all()
    return {ticket_id: _one_line(text)[:PREVIEW_CHARS] for ticket_id, text in rows if text}


def _one_line(text: str) -> str:
    return " ".join(text.split())


def conversation(ticket: Ticket) -> list[tuple[Thread, OutboxMessage | None]]:
    """Every thread of a ticket, oldest first, each outbound one with its outbox entry."""
    rows = db.session.execute(
        select(Thread, OutboxMessage)
        .outerjoin(OutboxMessage, (OutboxMessage.thread_id == Thread.id) & (OutboxMessage.kind == "reply"))
        .where(Thread.ticket_id == ticket.id)
        .order_by(Thread.created_at, Thread.id)
    ).all()
    return [(thread, outbox) for thread, outbox in rows]


def draft_marks(ticket_ids: list[uuid.UUID], agent_id: uuid.UUID) -> dict[uuid.UUID, str]:
    """For the list's rows: "Your draft", or who else has one ("Ana has a draft")."""
    if not ticket_ids:
        return {}
    marks: dict[uuid.UUID, list[str]] = {}
    mine: set[uuid.UUID] = set()
    for ticket_id, author, name in db.session.execute(
            select(Draft.ticket_id, Draft.agent_id, Agent.display_name).join(Agent, Agent.id == Draft.agent_id)
            .where(Draft.ticket_id.in_(ticket_ids)).order_by(Draft.updated_at.desc())):
        if author == agent_id:
            mine.add(ticket_id)
        else:
            marks.setdefault(ticket_id, []).append(name)
    return {ticket_id: "Your draft" if ticket_id in mine else f"{' and '.join(marks[ticket_id][:2])} "
            f"{'has' if len(marks[ticket_id]) == 1 else 'have'} a draft"
            for ticket_id in {*mine, *marks}}


TIMELINE_ACTIONS = (
    "tickets.status", "tickets.assign", "tickets.tags", "tickets.category", "tickets.merge", "tickets.merged_into",
    "tickets.unmerge", "tickets.snooze", "tickets.unsnooze", "tickets.woke", "tickets.spam", "tickets.deleted",
    "tickets.release", "tickets.reply_undone", "tickets.auto_close", "tickets.start",
)


@dataclass(frozen=True)
class Event:
    at: datetime
    actor: str  # an agent's name, "The customer" or "Echo"
    text: str
    error: bool = False


def timeline(ticket: Ticket) -> list[Event]:
    """What happened to a ticket besides its messages, oldest first: status, assignment, tags, merges,
    snoozes, quarantine, and mail that could not be delivered (from `audit_log` and the outbox)."""
    rows = db.session.scalars(
        select(AuditLog).where(AuditLog.target_type == "ticket", AuditLog.target_id == str(ticket.id),
                               AuditLog.action.in_(TIMELINE_ACTIONS))
        .order_by(AuditLog.id).limit(500)).all()
    agent_ids = {uuid.UUID(v) for row in rows for v in _agent_ids(row)}
    names = dict(db.session.execute(select(Agent.id, Agent.display_name).where(Agent.id.in_(agent_ids))).all()) \
        if agent_ids else {}
    events = [Event(row.created_at, _actor_name(row.actor, names), _describe(row, names)) for row in rows]
    for outbox in db.session.scalars(select(OutboxMessage).where(
            OutboxMessage.ticket_id == ticket.id, OutboxMessage.state.in_(("failed", "expired")))):
        events.append(Event(outbox.sent_at or outbox.attempted_at or outbox.created_at, "Echo",
                            f"The {outbox.kind.replace('_', ' ')} to {outbox.to_email} was not delivered: "
                            f"{outbox.last_error or outbox.state}", error=True))
    return sorted(events, key=lambda e: e.at)


def _agent_ids(row: AuditLog) -> list[str]:
    found = [row.actor.split(":", 1)[1]] if row.actor.startswith("agent:") else []
    if row.action == "tickets.assign":
        found += [v for v in (row.payload.get("old"), row.payload.get("new")) if v]
    return found


def _actor_name(actor: str, names: dict) -> str:
    if actor.startswith("agent:"):
        return names.get(uuid.UUID(actor.split(":", 1)[1]), "A former agent")
    return "The customer" if actor.startswith("customer:") else "Echo"


def _describe(row: AuditLog, names: dict) -> str:
    p = row.payload or {}

    def who(value):
        return names.get(uuid.UUID(value), "a former agent") if value else "nobody"

    match row.action:
        case "tickets.status":
            return f"changed the status from {p.get('old')} to {p.get('new')}"
        case "tickets.assign":
            return f"assigned it to {who(p.get('new'))}" if p.get("new") else "unassigned it"
        case "tickets.tags":
            parts = ([f"added {', '.join(p['added'])}"] if p.get("added") else []) + (
                [f"removed {', '.join(p['removed'])}"] if p.get("removed") else [])
            return "tags: " + "; ".join(parts) if parts else "changed the tags"
        case "tickets.category":
            return f"set the category to {(p.get('new') or 'none').replace('_', ' ')}"
        case "tickets.merge":
            return f"merged {p.get('source_number', 'a ticket')} into this ticket"
        case "tickets.merged_into":
            return f"merged this ticket into {p.get('into_number', 'another')}"
        case "tickets.unmerge":
            return f"undid the merge of {p.get('source_number')} into {p.get('into_number')}"
        case "tickets.snooze":
            return f"snoozed it until {p.get('until', '')[:16].replace('T', ' ')} UTC"
        case "tickets.unsnooze":
            return "ended the snooze"
        case "tickets.woke":
            return "the snooze ended" if p.get("reason") == "snooze_ended" else "woke it from its snooze by writing"
        case "tickets.spam":
            return "marked it as spam"
        case "tickets.deleted":
            return "deleted it (it is in the quarantine)"
        case "tickets.release":
            return "released it from the quarantine"
        case "tickets.reply_undone":
            return "took back a reply before it was sent"
        case "tickets.auto_close":
            return f"closed it after {p.get('days')} days waiting on the customer"
        case "tickets.start":
            return "started the conversation"
    return row.action
