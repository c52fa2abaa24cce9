"""What a customer may do with their own tickets. Ownership is checked on every call, never cached."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by

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
    tickets: list  # rows with the SUMMARY_COLUMNS
    total: int


# What the portal's list and detail read of a ticket: the allow-list schemas use nothing else.
SUMMARY_COLUMNS = (Ticket.id, Ticket.number, Ticket.subject, Ticket.status, Ticket.created_at, Ticket.updated_at,
                   Ticket.last_agent_reply_at, Ticket.customer_read_at)


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
    """One page of the customer's tickets, newest activity first, with the total from the same statement."""
    if identity.customer_id is None:
        return Page([], 0)
    mine = (Ticket.customer_id == identity.customer_id, Ticket.merged_into_id.is_(None), Ticket.quarantined.is_(False))
    rows = db.session.execute(
        select(*SUMMARY_COLUMNS, func.count().over().label("total")).where(*mine)
        .order_by(Ticket.updated_at.desc(), Ticket.seq.desc()).limit(per_page).offset((page - 1) * per_page)
    ).all()
    if rows:
        return Page(rows, rows[0].total)
    # Past the last page: the window had nothing to count over.
    total = db.session.scalar(select(func.count()).select_from(Ticket).where(*mine)) if page > 1 else 0
    return Page([], total)


# A message's attachments as the portal may show them (never erased ones, never storage keys).
_VISIBLE_ATTACHMENTS = (
    select(func.coalesce(func.json_agg(aggregate_order_by(
        func.json_build_object("id", Attachment.id, "filename", Attachment.filename,
                               "size_bytes", Attachment.size_bytes), Attachment.filename)),
        text("'[]'::json")))
    .where(Attachment.thread_id == Thread.id, Attachment.erased_at.is_(None))
    .scalar_subquery()
)


def visible_threads(ticket_id: uuid.UUID) -> list:
    """Customer mail and our replies, oldest first, as rows of exactly what the portal shows;
    internal notes and quarantined mail never leave this function."""
    return db.session.execute(
        select(Thread.id, Thread.direction, func.coalesce(func.nullif(Thread.stripped_text, ""), Thread.body_text)
               .label("body"), Thread.created_at, _VISIBLE_ATTACHMENTS.label("attachments"))
        .where(Thread.ticket_id == ticket_id, Thread.direction != "internal", Thread.quarantined.is_(False))
        .order_by(Thread.created_at, Thread.id)
    ).all()


def read_ticket(identity: PortalIdentity, ticket_id: str) -> tuple:
    """The ticket and its visible messages, stamped as read by the customer.

    The usual case (their own, unmerged ticket) is one UPDATE ... RETURNING; anything else goes
    through owned_ticket, which follows merges and tells a missing ticket from someone else's."""
    try:
        key = uuid.UUID(ticket_id)
    except (ValueError, TypeError, AttributeError):
        raise TicketUnavailable() from None
    stamp = (update(Ticket).values(customer_read_at=utcnow()).returning(*SUMMARY_COLUMNS)
             .execution_options(synchronize_session=False))
    row = None
    if identity.customer_id is not None:
        row = db.session.execute(stamp.where(Ticket.id == key, Ticket.customer_id == identity.customer_id,
                                             Ticket.merged_into_id.is_(None))).first()
    if row is None:
        ticket = owned_ticket(identity, ticket_id)
        row = db.session.execute(stamp.where(Ticket.id == ticket.id)).first()
    return row, visible_threads(row.id)


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
