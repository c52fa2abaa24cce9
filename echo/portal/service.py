"""What a customer may do with their own tickets. Ownership is checked on every call, never cached."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import aggregate_order_by

from echo.actors import Actor
from echo.attachments.models import Attachment
from echo.customers import service as customers
from echo.db import utcnow
from echo.errors import EchoError
from echo.extensions import db
from echo.portal.auth import PortalIdentity
from echo.tickets import service as tickets
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
    tickets: Sequence[Any]  # rows with the SUMMARY_COLUMNS
    total: int


# What the portal's list and detail read of a ticket: the allow-list schemas use nothing else.
SUMMARY_COLUMNS = (Ticket.id, Ticket.number, Ticket.subject, Ticket.status, Ticket.created_at, Ticket.updated_at,
                   Ticket.last_agent_reply_at, Ticket.customer_read_at)


def owned_ticket(identity: PortalIdentity, ticket_id: str) -> Ticket:
    """The customer's ticket by its opaque id (merged ids lead to the survivor), or TicketUnavailable.

    A quarantined ticket (held as spam, a flood or an unauthenticated sender) is unavailable too,
    until an agent releases it: it may not be the customer's at all."""
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
    if ticket.quarantined:
        raise TicketUnavailable()
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
    total = db.session.execute(select(func.count()).select_from(Ticket).where(*mine)).scalar_one() if page > 1 else 0
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


def visible_threads(ticket_id: uuid.UUID) -> Sequence[Any]:
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
                                             Ticket.merged_into_id.is_(None), Ticket.quarantined.is_(False))).first()
    if row is None:
        ticket = owned_ticket(identity, ticket_id)
        row = db.session.execute(stamp.where(Ticket.id == ticket.id)).one()
    return row, visible_threads(row.id)


def create_ticket(identity: PortalIdentity, subject: str, body: str, category: str | None) -> Ticket:
    """A new conversation from the portal, filed and acknowledged like one by mail."""
    customer = customers.upsert_customer(identity.email, None)
    ticket = tickets.open_ticket(customer.id, subject, source="portal", category=category, read_by_customer=True)
    tickets.record_customer_message(ticket, customer, _message(customer, subject, body),
                                    opened=True, audit_action="tickets.portal_create")
    return db.session.get_one(Ticket, ticket.id)


def reply(identity: PortalIdentity, ticket_id: str, body: str) -> tickets.Recorded:
    """The customer's reply from the portal: the same effects as a reply by mail."""
    ticket = owned_ticket(identity, ticket_id)
    if ticket.status == "closed":
        raise TicketClosed("This ticket is closed. Open a new ticket and we'll pick it up from there.")
    customer = customers.upsert_customer(identity.email, None)
    recorded = tickets.record_customer_message(ticket, customer, _message(customer, ticket.subject, body),
                                               opened=False, audit_action="tickets.portal_reply")
    ticket.customer_read_at = utcnow()  # they wrote from the ticket's page
    return recorded


def _message(customer: customers.CustomerRef, subject: str, body: str) -> tickets.CustomerMessage:
    return tickets.CustomerMessage(source="portal", sender_email=customer.email, sender_name=customer.display_name,
                                   subject=subject, body_text=body, stripped_text=body)


def resolve(identity: PortalIdentity, ticket_id: str) -> Ticket:
    ticket = owned_ticket(identity, ticket_id)
    if ticket.status not in ("resolved", "closed"):
        assert ticket.customer_id is not None  # owned_ticket found it the customer's
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
