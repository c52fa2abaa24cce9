"""The intake's SQL, built once at import and compiled once: the webhook is Echo's hottest path.

Each request makes at most four statements before the commit: one lookup (earlier delivery
and every referenced message id together), one customer upsert that also counts the
sender's recent tickets, one ticket insert for a new conversation, and one statement whose
CTEs write the thread, its message id, the acknowledgement's outbox row, the audit row and,
for a reply that changes nothing else, the ticket's activity stamp. The lookup also returns
the ticket of every referenced id, so threading a reply by its headers needs no query of its own.
The statements are SQLAlchemy Core, compiled to the driver's SQL on first use and then run on
the request's own psycopg connection (inside the session's transaction), which skips
re-deriving cache keys and building SQLAlchemy result objects on every request.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache

import psycopg
from psycopg.rows import namedtuple_row
from psycopg.types.json import Jsonb
from sqlalchemy import (
    ARRAY, Connection, Text, bindparam, false, func, literal, literal_column, null, select, text, union_all, update,
)
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.exc import DBAPIError

from echo.audit.models import AuditLog
from echo.customers.models import Customer
from echo.mail.models import OutboxMessage
from echo.tickets.models import MessageId, Thread, Ticket

threads, tickets, message_ids = Thread.__table__, Ticket.__table__, MessageId.__table__
customers, outbox, audit_log = Customer.__table__, OutboxMessage.__table__, AuditLog.__table__


_compiled: dict[int, tuple[str, dict]] = {}


def _run(conn: Connection, statement, params: dict) -> psycopg.Cursor:
    """Execute a module-level statement by its once-compiled SQL (literal values folded into the
    defaults) on the connection's psycopg connection; rows come back as named tuples."""
    entry = _compiled.get(id(statement))
    if entry is None:
        compiled = statement.compile(dialect=conn.dialect)
        entry = _compiled[id(statement)] = (str(compiled), dict(compiled.params))
    sql, defaults = entry
    missing = [name for name, value in defaults.items() if value is None and name not in params]
    if missing:  # a column whose Python-side default the driver would not run
        raise ValueError(f"no value for {missing}")
    cursor = conn.connection.driver_connection.cursor(row_factory=namedtuple_row)
    try:
        return cursor.execute(sql, {**defaults, **params})
    except psycopg.Error as exc:
        # Raise what SQLAlchemy itself would (IntegrityError when a duplicate delivery raced us,
        # OperationalError when the server is away, with the connection invalidated), without the
        # parameters: they hold mail bodies.
        gone = conn.dialect.is_disconnect(exc, conn.connection, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, psycopg.Error, hide_parameters=True, connection_invalidated=gone,
                                  dialect=conn.dialect) from exc


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


@dataclass(frozen=True)
class Known:
    message_id: str
    origin: str
    sender_email: str | None
    ticket: TicketRef


@dataclass(frozen=True)
class Delivery:
    ticket_id: uuid.UUID
    number: str
    thread_id: uuid.UUID


_TICKET_COLUMNS = (tickets.c.id.label("ticket_id"), tickets.c.number, tickets.c.customer_id, tickets.c.status,
                   tickets.c.quarantined, tickets.c.merged_into_id, tickets.c.assigned_to)


def _ref(row) -> TicketRef:
    return TicketRef(row.ticket_id, row.number, row.customer_id, row.status, row.quarantined, row.merged_into_id,
                     row.assigned_to)


_LOOKUP = union_all(
    select(literal("delivery").label("kind"), threads.c.id.label("thread_id"), null().label("origin"),
           null().label("sender_email"), null().label("message_id"), *_TICKET_COLUMNS)
    .join(tickets, tickets.c.id == threads.c.ticket_id)
    .where(threads.c.postmark_message_id == bindparam("postmark_id")),
    select(literal("id"), message_ids.c.thread_id, message_ids.c.origin, threads.c.sender_email,
           message_ids.c.message_id, *_TICKET_COLUMNS)
    .join(tickets, tickets.c.id == message_ids.c.ticket_id)
    .outerjoin(threads, threads.c.id == message_ids.c.thread_id)
    .where(message_ids.c.message_id == func.any(bindparam("ids", type_=ARRAY(Text)))),
)


def lookup(conn: Connection, postmark_id: str, ids: list[str]) -> tuple[Delivery | None, dict[str, Known]]:
    """The earlier delivery of this Postmark message (if any) and every known id among `ids`, each
    with its ticket (one round trip: a reply usually needs nothing more to be threaded)."""
    delivery, known = None, {}
    for row in _run(conn, _LOOKUP, {"postmark_id": postmark_id, "ids": ids}):
        if row.kind == "delivery":
            delivery = Delivery(row.ticket_id, row.number, row.thread_id)
        else:
            known[row.message_id] = Known(row.message_id, row.origin, row.sender_email, _ref(row))
    return delivery, known


_TICKET_BY_ID = select(*_TICKET_COLUMNS).where(tickets.c.id == bindparam("id"))
_TICKET_BY_SEQ = select(*_TICKET_COLUMNS).where(tickets.c.seq == bindparam("seq"),
                                                tickets.c.customer_id == bindparam("customer_id"))


def ticket_by_id(conn: Connection, ticket_id: uuid.UUID) -> TicketRef | None:
    row = _run(conn, _TICKET_BY_ID, {"id": ticket_id}).fetchone()
    return _ref(row) if row else None


def customer_ticket_by_seq(conn: Connection, seq: int, customer_id: uuid.UUID) -> TicketRef | None:
    """The customer's own ticket with this number, if it is theirs."""
    row = _run(conn, _TICKET_BY_SEQ, {"seq": seq, "customer_id": customer_id}).fetchone()
    return _ref(row) if row else None


def survivor(conn: Connection, ticket: TicketRef) -> TicketRef:
    """Follow merges to the ticket that lives on (bounded, in case of a cycle)."""
    for _ in range(20):
        if ticket.merged_into_id is None:
            break
        following = ticket_by_id(conn, ticket.merged_into_id)
        if following is None:
            break
        ticket = following
    return ticket


_recent_tickets = (
    select(func.count()).select_from(tickets)
    # RETURNING does not correlate like a SELECT would, so name the returned row's column literally.
    .where(tickets.c.customer_id == literal_column("customers.id"),
           tickets.c.created_at > func.now() - text("interval '24 hours'"))
    .scalar_subquery()
)
_new_customer = insert(customers).values(
    id=bindparam("id"), email=bindparam("email"), display_name=bindparam("name"),
    first_seen_at=func.now(), last_seen_at=func.now(), email_bounced=false(),
)
_UPSERT_CUSTOMER = _new_customer.on_conflict_do_update(
    index_elements=[customers.c.email],
    index_where=text("deleted_at IS NULL"),
    set_={"last_seen_at": func.now(),
          "display_name": func.coalesce(_new_customer.excluded.display_name, customers.c.display_name)},
).returning(customers.c.id, customers.c.email, customers.c.email_bounced, _recent_tickets.label("recent_tickets"))


def upsert_customer(conn: Connection, email: str, name: str | None):
    """Find or create the live customer by email; also says how many tickets they opened in 24 h."""
    return _run(conn, _UPSERT_CUSTOMER, {"id": uuid.uuid4(), "email": email, "name": name or None}).fetchone()


_INSERT_TICKET = insert(tickets).values(
    id=bindparam("id"), customer_id=bindparam("customer_id"), status="open", subject=bindparam("subject"),
    source="email", quarantined=bindparam("quarantined"), quarantine_reason=bindparam("quarantine_reason"),
    previous_ticket_id=bindparam("previous_ticket_id"), created_at=func.now(), updated_at=func.now(),
    status_changed_at=func.now(), last_customer_reply_at=func.now(), tags=text("'{}'::text[]"),
).returning(tickets.c.number)


def insert_ticket(conn: Connection, **values) -> str:
    """Create a ticket and return the number the database gave it."""
    return _run(conn, _INSERT_TICKET, values).fetchone()[0]


THREAD_COLUMNS = (
    "id", "ticket_id", "direction", "source", "customer_id", "sender_email", "sender_name", "subject", "body_html",
    "body_text", "stripped_text", "rfc_message_id", "postmark_message_id", "in_reply_to", "references",
    "is_auto_reply", "spam_score", "quarantined",
)


@cache
def _write_statement(with_message_id: bool, with_acknowledgement: bool, with_reply: bool):
    """One statement whose CTEs insert the thread and whatever goes with it (a few cached variants)."""
    # Every column with a Python-side default is given explicitly: a CTE cannot run Python defaults.
    thread = insert(threads).values(
        {**{c: bindparam(f"t_{c}") for c in THREAD_COLUMNS}, "created_at": func.now()}
    ).returning(threads.c.id)
    thread_cte = thread.cte("new_thread")
    ctes = []
    if with_message_id:
        ctes.append(insert(message_ids).from_select(
            ["message_id", "ticket_id", "thread_id", "origin"],
            select(bindparam("rfc_id", type_=Text), bindparam("t_ticket_id"), thread_cte.c.id, literal("inbound")),
            include_defaults=False,
        ).on_conflict_do_nothing().cte("new_message_id"))
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
        actor=bindparam("actor"), action="tickets.inbound", target_type="ticket",
        target_id=bindparam("audit_target"), payload=bindparam("audit_payload", type_=JSONB), created_at=func.now(),
    ).cte("new_audit"))
    return select(thread_cte.c.id).add_cte(*ctes)


def write_message(conn: Connection, thread: dict, *, rfc_id: str | None, acknowledgement: dict | None,
                  audit: dict, customer_replied: bool = False) -> None:
    """Insert the thread with its message id, acknowledgement outbox row and audit row in one statement;
    `customer_replied` also stamps the ticket's activity (a human reply that changes nothing else)."""
    params = {f"t_{c}": thread[c] for c in THREAD_COLUMNS}
    params.update(audit, audit_payload=Jsonb(audit["audit_payload"]))
    if rfc_id:
        params["rfc_id"] = rfc_id
    if acknowledgement:
        params.update(acknowledgement, ack_context=Jsonb(acknowledgement["ack_context"]))
    _run(conn, _write_statement(rfc_id is not None, acknowledgement is not None, customer_replied), params)

