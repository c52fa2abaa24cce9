"""The ticket lifecycle's compiled SQL, used only by `tickets.service` (its one owner).

Mail is Echo's hottest path, so the writes every conversation goes through, by email or the
portal, are SQLAlchemy Core statements compiled once and run on the session's own psycopg
connection (`echo.db.execute_compiled`): one ticket insert for a new conversation, and one
statement whose CTEs write the customer's message, its message id, the acknowledgement's outbox
row, the audit row and, for a reply that changes nothing else, the ticket's activity stamp.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import ARRAY, Boolean, Connection, Text, bindparam, case, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert

from echo.audit.models import AuditLog
from echo.db import execute_compiled
from echo.mail.models import OutboxMessage
from echo.tickets.models import MessageId, Thread, Ticket

threads, tickets, message_ids = Thread.__table__, Ticket.__table__, MessageId.__table__
outbox, audit_log = OutboxMessage.__table__, AuditLog.__table__


@dataclass(frozen=True)
class TicketRef:
    """What threading and the status effects need to know of a ticket, read without the ORM."""

    id: uuid.UUID
    number: str
    customer_id: uuid.UUID | None
    status: str
    quarantined: bool
    merged_into_id: uuid.UUID | None
    assigned_to: uuid.UUID | None
    snoozed_until: datetime | None = None


TICKET_COLUMNS = (tickets.c.id.label("ticket_id"), tickets.c.number, tickets.c.customer_id, tickets.c.status,
                  tickets.c.quarantined, tickets.c.merged_into_id, tickets.c.assigned_to, tickets.c.snoozed_until)


def ticket_ref(row: Any) -> TicketRef:
    return TicketRef(row.ticket_id, row.number, row.customer_id, row.status, row.quarantined, row.merged_into_id,
                     row.assigned_to, row.snoozed_until)


_TICKET_BY_ID = select(*TICKET_COLUMNS).where(tickets.c.id == bindparam("id"))


def ticket_by_id(conn: Connection, ticket_id: uuid.UUID) -> TicketRef | None:
    row = execute_compiled(conn, _TICKET_BY_ID, {"id": ticket_id}).fetchone()
    return ticket_ref(row) if row else None


_INSERT_TICKET = insert(tickets).values(
    id=bindparam("id"), customer_id=bindparam("customer_id"), status="open", subject=bindparam("subject"),
    category=bindparam("category", type_=Text), source=bindparam("source"), quarantined=bindparam("quarantined"),
    quarantine_reason=bindparam("quarantine_reason"), previous_ticket_id=bindparam("previous_ticket_id"),
    created_at=func.now(), updated_at=func.now(), status_changed_at=func.now(),
    # A customer's conversation starts with their message; an internal one has none.
    last_customer_reply_at=case((bindparam("customer_wrote", type_=Boolean), func.now())),
    customer_read_at=case((bindparam("read_by_customer", type_=Boolean), func.now())),
    tags=bindparam("tags", type_=ARRAY(Text)),
).returning(tickets.c.number)


def insert_ticket(conn: Connection, **values: Any) -> str:
    """Create a ticket and return the number the database gave it."""
    row = execute_compiled(conn, _INSERT_TICKET, values).fetchone()
    assert row is not None  # INSERT … RETURNING gives back the row
    return row[0]


THREAD_COLUMNS = (
    "id", "ticket_id", "direction", "source", "customer_id", "sender_email", "sender_name", "subject", "body_html",
    "body_text", "stripped_text", "rfc_message_id", "postmark_message_id", "in_reply_to", "references",
    "is_auto_reply", "spam_score", "quarantined", "notices", "cc",
)


@cache
def _write_statement(with_message_id: bool, with_acknowledgement: bool, with_reply: bool, with_awaited: bool = False):
    """One statement whose CTEs insert the thread and whatever goes with it (a few cached variants)."""
    # Every column with a Python-side default is given explicitly: a CTE cannot run Python defaults.
    thread = insert(threads).values(
        {**{c: bindparam(f"t_{c}") for c in THREAD_COLUMNS}, "created_at": func.now()}
    ).returning(threads.c.id, threads.c.created_at)
    thread_cte = thread.cte("new_thread")
    ctes = []
    if with_message_id:
        # The id was awaited when a later message of the conversation came first: it is this one's now.
        own_id = insert(message_ids).from_select(
            ["message_id", "ticket_id", "thread_id", "origin"],
            select(bindparam("rfc_id", type_=Text), bindparam("t_ticket_id"), thread_cte.c.id, literal("inbound")),
            include_defaults=False,
        )
        ctes.append(own_id.on_conflict_do_update(
            index_elements=[message_ids.c.message_id],
            set_={"origin": own_id.excluded.origin, "ticket_id": own_id.excluded.ticket_id,
                  "thread_id": own_id.excluded.thread_id},
            where=message_ids.c.origin == "awaited",
        ).cte("new_message_id"))
    if with_awaited:
        ctes.append(insert(message_ids).from_select(
            ["message_id", "ticket_id", "thread_id", "origin"],
            select(func.unnest(bindparam("awaited_ids", type_=ARRAY(Text))), bindparam("t_ticket_id"),
                   thread_cte.c.id, literal("awaited")),
            include_defaults=False,
        ).on_conflict_do_nothing().cte("new_awaited_ids"))
    if with_acknowledgement:
        ctes.append(insert(outbox).values(
            id=bindparam("ack_id"), kind="acknowledgement", ticket_id=bindparam("t_ticket_id"),
            to_email=bindparam("t_sender_email"), context=bindparam("ack_context", type_=JSONB),
            message_id=bindparam("ack_message_id"), state="queued", attempts=0,
            next_attempt_at=func.now(), created_at=func.now(),
        ).cte("new_outbox"))
        ctes.append(insert(message_ids).values(
            message_id=bindparam("ack_message_id"), ticket_id=bindparam("t_ticket_id"), origin="outbound",
            created_at=func.now(),
        ).cte("new_ack_id"))
    if with_reply:
        ctes.append(update(tickets).where(tickets.c.id == bindparam("t_ticket_id"))
                    .values(updated_at=func.now(), last_customer_reply_at=func.now()).cte("replied"))
    ctes.append(insert(audit_log).values(
        actor=bindparam("actor"), action=bindparam("audit_action"), target_type="ticket",
        target_id=bindparam("audit_target"), payload=bindparam("audit_payload", type_=JSONB), created_at=func.now(),
    ).cte("new_audit"))
    return select(thread_cte.c.id, thread_cte.c.created_at).add_cte(*ctes)


def write_message(conn: Connection, thread: dict, *, rfc_id: str | None, acknowledgement: dict | None,
                  audit: dict, customer_replied: bool = False, awaited_ids: list[str] | None = None) -> datetime:
    """Insert the thread with its message id, acknowledgement outbox row and audit row in one statement;
    `customer_replied` also stamps the ticket's activity (a human reply that changes nothing else);
    `awaited_ids` (ids the message refers to that Echo has not seen) are kept as `awaited`, pointing
    here, so that the message they name joins this ticket when it arrives late.
    Returns the thread's creation time."""
    params = {f"t_{c}": thread[c] for c in THREAD_COLUMNS}
    params.update(audit, audit_payload=Jsonb(audit["audit_payload"]))
    if rfc_id:
        params["rfc_id"] = rfc_id
    if acknowledgement:
        params.update(acknowledgement, ack_context=Jsonb(acknowledgement["ack_context"]))
    if awaited_ids:
        params["awaited_ids"] = awaited_ids
    statement = _write_statement(rfc_id is not None, acknowledgement is not None, customer_replied, bool(awaited_ids))
    row = execute_compiled(conn, statement, params).fetchone()
    assert row is not None  # the statement returns the inserted thread
    return row.created_at
