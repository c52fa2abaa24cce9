"""Read-side queries for tickets: the filtered list and a ticket's full conversation."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from echo.agents.models import Agent
from echo.customers.models import Customer
from echo.extensions import db
from echo.mail.models import OutboxMessage
from echo.tickets.models import STATUSES, Thread, Ticket


@dataclass(frozen=True)
class TicketFilters:
    status: str | None = None
    assignee: str | None = None  # an email, "none" for unassigned
    tag: str | None = None
    customer: str | None = None  # an email
    q: str | None = None
    quarantined: bool = False
    page: int = 1
    per_page: int = 25


def list_tickets(filters: TicketFilters) -> tuple[list[Ticket], int]:
    """Tickets matching the filters, newest activity first, with the total for pagination."""
    query = select(Ticket).where(Ticket.merged_into_id.is_(None), Ticket.quarantined.is_(filters.quarantined))
    if filters.status in STATUSES:
        query = query.where(Ticket.status == filters.status)
    if filters.assignee == "none":
        query = query.where(Ticket.assigned_to.is_(None))
    elif filters.assignee:
        query = query.where(Ticket.assigned_to == select(Agent.id).where(Agent.email == filters.assignee.lower())
                            .scalar_subquery())
    if filters.tag:
        query = query.where(Ticket.tags.contains([filters.tag.lower()]))
    if filters.customer:
        query = query.where(Ticket.customer_id.in_(select(Customer.id).where(Customer.email == filters.customer.lower())))
    if filters.q:
        query = query.where(Ticket.subject.ilike(f"%{_escape_like(filters.q)}%", escape="\\"))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.order_by(Ticket.updated_at.desc(), Ticket.seq.desc())
        .limit(filters.per_page).offset((filters.page - 1) * filters.per_page)
    ).all()
    return list(rows), total


def conversation(ticket: Ticket) -> list[tuple[Thread, OutboxMessage | None]]:
    """Every thread of a ticket, oldest first, each outbound one with its outbox entry."""
    rows = db.session.execute(
        select(Thread, OutboxMessage)
        .outerjoin(OutboxMessage, (OutboxMessage.thread_id == Thread.id) & (OutboxMessage.kind == "reply"))
        .where(Thread.ticket_id == ticket.id)
        .order_by(Thread.created_at, Thread.id)
    ).all()
    return [(thread, outbox) for thread, outbox in rows]


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
