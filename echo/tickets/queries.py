"""Read-side queries for tickets: the filtered (and searched) list, and a ticket's conversation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select
from sqlalchemy.dialects.postgresql import distinct_on

from echo.agents.models import Agent
from echo.customers.models import Customer
from echo.extensions import db
from echo.mail.models import OutboxMessage
from echo.search.service import SEARCH_PAGE, search_tickets
from echo.tickets.models import STATUSES, Thread, Ticket

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


def filtered(filters: TicketFilters) -> Select:
    """`select(Ticket)` narrowed by every filter except the search words."""
    query = select(Ticket).where(Ticket.merged_into_id.is_(None), Ticket.quarantined.is_(filters.quarantined))
    if filters.status in STATUSES:
        query = query.where(Ticket.status == filters.status)
    elif filters.status == "active":
        query = query.where(Ticket.status.in_(ACTIVE))
    if filters.assignee == "none":
        query = query.where(Ticket.assigned_to.is_(None))
    elif filters.assignee:
        query = query.where(Ticket.assigned_to == select(Agent.id).where(Agent.email == filters.assignee.lower())
                            .scalar_subquery())
    if filters.tag:
        query = query.where(Ticket.tags.contains([filters.tag.lower()]))
    if filters.customer:
        query = query.where(
            Ticket.customer_id.in_(select(Customer.id).where(Customer.email == filters.customer.lower())))
    return query


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
    return counts


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
