"""What a customer may do with their own tickets. Ownership is checked on every call, never cached."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select

from echo.actors import Actor
from echo.attachments.models import Attachment
from echo.audit import service as audit
from echo.customers.models import Customer
from echo.db import utcnow
from echo.errors import EchoError
from echo.extensions import db
from echo.inbound import store
from echo.mail.service import queue_email
from echo.portal.auth import PortalIdentity
from echo.tickets.models import Thread, Ticket
from echo.tickets.service import TicketClosed, set_status, survivor

UNAVAILABLE = "This ticket is no longer available."


class TicketUnavailable(EchoError):
    """Missing and not-yours look identical from outside; `privacy_violation` tells the audit log which."""

    status = 403
    code = "not_found"

    def __init__(self, privacy_violation: bool = False):
        super().__init__(UNAVAILABLE)
        self.privacy_violation = privacy_violation


@dataclass(frozen=True)
class Page:
    tickets: list[Ticket]
    total: int


def owned_ticket(identity: PortalIdentity, ticket_id: str) -> Ticket:
    """The customer's ticket by its opaque id (merged ids lead to the survivor), or TicketUnavailable."""
    try:
        key = uuid.UUID(ticket_id)
    except (ValueError, TypeError, AttributeError):
        raise TicketUnavailable() from None
    ticket = db.session.get(Ticket, key)
    if ticket is None:
        raise TicketUnavailable()
    ticket = survivor(ticket)
    if identity.customer_id is None or ticket.customer_id != identity.customer_id:
        raise TicketUnavailable(privacy_violation=True)
    return ticket


def list_tickets(identity: PortalIdentity, page: int, per_page: int) -> Page:
    if identity.customer_id is None:
        return Page([], 0)
    query = select(Ticket).where(Ticket.customer_id == identity.customer_id, Ticket.merged_into_id.is_(None),
                                 Ticket.quarantined.is_(False))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    rows = db.session.scalars(
        query.order_by(Ticket.updated_at.desc(), Ticket.seq.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    return Page(list(rows), total)


def visible_threads(ticket: Ticket) -> list[Thread]:
    """Customer mail and our replies, oldest first; internal notes never leave this function."""
    return list(db.session.scalars(
        select(Thread).where(Thread.ticket_id == ticket.id, Thread.direction != "internal",
                             Thread.quarantined.is_(False))
        .order_by(Thread.created_at, Thread.id)
    ))


def read_ticket(identity: PortalIdentity, ticket_id: str) -> tuple[Ticket, list[Thread]]:
    ticket = owned_ticket(identity, ticket_id)
    ticket.customer_read_at = utcnow()
    return ticket, visible_threads(ticket)


def _customer(identity: PortalIdentity) -> Customer:
    """The customer row for the token's email, created on their first portal ticket."""
    row = store.upsert_customer(db.session.connection(), identity.email, None)
    return db.session.get(Customer, row.id)


def create_ticket(identity: PortalIdentity, subject: str, body: str, category: str | None) -> Ticket:
    customer = _customer(identity)
    now = utcnow()
    ticket = Ticket(id=uuid.uuid4(), customer_id=customer.id, status="open", subject=subject, category=category,
                    source="portal", created_at=now, updated_at=now, status_changed_at=now,
                    last_customer_reply_at=now, customer_read_at=now)
    db.session.add(ticket)
    db.session.flush()
    thread = _customer_thread(ticket, customer, body, now)
    audit.record(Actor.customer(customer.id), "tickets.portal_create", "ticket", ticket.id, thread_id=str(thread.id))
    if not customer.email_bounced:
        queue_email("acknowledgement", to_email=customer.email, ticket=ticket, context={})
    return ticket


def reply(identity: PortalIdentity, ticket_id: str, body: str) -> Thread:
    ticket = owned_ticket(identity, ticket_id)
    if ticket.status == "closed":
        raise TicketClosed("This ticket is closed. Open a new ticket and we'll pick it up from there.")
    customer = ticket.customer
    now = utcnow()
    thread = _customer_thread(ticket, customer, body, now)
    actor = Actor.customer(customer.id)
    if ticket.status in ("pending", "resolved"):
        set_status(ticket, "open", actor=actor, now=now)
    ticket.updated_at = ticket.last_customer_reply_at = ticket.customer_read_at = now
    audit.record(actor, "tickets.portal_reply", "ticket", ticket.id, thread_id=str(thread.id))
    if ticket.assignee is not None and ticket.assignee.active:
        queue_email("customer_reply", to_email=ticket.assignee.email, ticket=ticket, thread_id=thread.id)
    return thread


def resolve(identity: PortalIdentity, ticket_id: str) -> Ticket:
    ticket = owned_ticket(identity, ticket_id)
    if ticket.status not in ("resolved", "closed"):
        set_status(ticket, "resolved", actor=Actor.customer(ticket.customer_id))
    return ticket


def attachment(identity: PortalIdentity, ticket_id: str, attachment_id: str) -> Attachment:
    """An attachment of a customer-visible message on the customer's own ticket."""
    ticket = owned_ticket(identity, ticket_id)
    try:
        key = uuid.UUID(attachment_id)
    except (ValueError, TypeError):
        raise TicketUnavailable() from None
    row = db.session.scalar(
        select(Attachment).join(Thread, Thread.id == Attachment.thread_id)
        .where(Attachment.id == key, Thread.ticket_id == ticket.id, Thread.direction != "internal",
               Thread.quarantined.is_(False), Attachment.erased_at.is_(None))
    )
    if row is None:
        raise TicketUnavailable()
    return row


def _customer_thread(ticket: Ticket, customer: Customer, body: str, now) -> Thread:
    thread = Thread(
        id=uuid.uuid4(), ticket_id=ticket.id, direction="inbound", source="portal", customer_id=customer.id,
        sender_email=customer.email, sender_name=customer.display_name, subject=ticket.subject,
        body_text=body, stripped_text=body, body_html="", created_at=now,
    )
    db.session.add(thread)
    return thread
