"""The intake's reads, built once at import and compiled once: the webhook is Echo's hottest path.

Each request makes at most four statements before the commit: this module's one lookup
(earlier delivery and every referenced message id together), the customer upsert
(`customers.service`), the ticket insert for a new conversation and the one statement that
writes the message with everything that goes with it (`tickets.service`, through
`tickets.store`). The lookup also returns the ticket of every referenced id, so threading a
reply by its headers needs no query of its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ARRAY, Connection, Text, bindparam, func, literal, null, select, union_all

from echo.db import execute_compiled
from echo.tickets.store import TICKET_COLUMNS, TicketRef, message_ids, threads, ticket_ref, tickets


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


_LOOKUP = union_all(
    select(literal("delivery").label("kind"), threads.c.id.label("thread_id"), null().label("origin"),
           null().label("sender_email"), null().label("message_id"), *TICKET_COLUMNS)
    .join(tickets, tickets.c.id == threads.c.ticket_id)
    .where(threads.c.postmark_message_id == bindparam("postmark_id")),
    select(literal("id"), message_ids.c.thread_id, message_ids.c.origin, threads.c.sender_email,
           message_ids.c.message_id, *TICKET_COLUMNS)
    .join(tickets, tickets.c.id == message_ids.c.ticket_id)
    .outerjoin(threads, threads.c.id == message_ids.c.thread_id)
    .where(message_ids.c.message_id == func.any(bindparam("ids", type_=ARRAY(Text)))),
)


def lookup(conn: Connection, postmark_id: str, ids: list[str]) -> tuple[Delivery | None, dict[str, Known]]:
    """The earlier delivery of this Postmark message (if any) and every known id among `ids`, each
    with its ticket (one round trip: a reply usually needs nothing more to be threaded)."""
    delivery, known = None, {}
    for row in execute_compiled(conn, _LOOKUP, {"postmark_id": postmark_id, "ids": ids}):
        if row.kind == "delivery":
            delivery = Delivery(row.ticket_id, row.number, row.thread_id)
        else:
            known[row.message_id] = Known(row.message_id, row.origin, row.sender_email, ticket_ref(row))
    return delivery, known


_TICKET_BY_SEQ = select(*TICKET_COLUMNS).where(tickets.c.seq == bindparam("seq"),
                                               tickets.c.customer_id == bindparam("customer_id"))


def customer_ticket_by_seq(conn: Connection, seq: int, customer_id: uuid.UUID) -> TicketRef | None:
    """The customer's own ticket with this number, if it is theirs."""
    row = execute_compiled(conn, _TICKET_BY_SEQ, {"seq": seq, "customer_id": customer_id}).fetchone()
    return ticket_ref(row) if row else None
