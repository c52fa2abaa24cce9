"""Customer use cases: the one way a customer is found or created, by mail and by the portal."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Boolean, bindparam, case, exists, false, func, literal_column, select, text
from sqlalchemy.dialects.postgresql import insert

from echo.customers.models import Customer
from echo.db import execute_compiled
from echo.extensions import db
from echo.tickets.models import BlockedSender, Ticket

customers, tickets, blocked_senders = Customer.__table__, Ticket.__table__, BlockedSender.__table__


@dataclass(frozen=True)
class CustomerRef:
    id: uuid.UUID
    email: str
    display_name: str | None
    email_bounced: bool
    recent_tickets: int  # opened in the last 24 hours (the flood guard's count)
    blocked: bool = False  # an agent blocked this sender: their mail is quarantined silently


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
_UPSERT = _new_customer.on_conflict_do_update(
    index_elements=[customers.c.email],
    index_where=text("deleted_at IS NULL"),
    set_={"last_seen_at": func.now(),
          "display_name": case((bindparam("rename", type_=Boolean),
                                func.coalesce(_new_customer.excluded.display_name, customers.c.display_name)),
                               else_=customers.c.display_name)},
).returning(customers.c.id, customers.c.email, customers.c.display_name, customers.c.email_bounced,
            _recent_tickets.label("recent_tickets"),
            exists().where(blocked_senders.c.email == literal_column("customers.email")).label("blocked"))


def upsert_customer(email: str, display_name: str | None, *, rename: bool = True) -> CustomerRef:
    """Find or create the live customer with this (already normalised) email in one statement.

    A new customer takes the name given. A newer non-empty name replaces the stored one; an empty
    one keeps it, and so does `rename=False` (mail whose sender did not prove who they are)."""
    params = {"id": uuid.uuid4(), "email": email, "name": display_name or None, "rename": rename}
    row = execute_compiled(db.session.connection(), _UPSERT, params).fetchone()
    assert row is not None  # an upsert returns its row whether it inserted or updated
    return CustomerRef(row.id, row.email, row.display_name, row.email_bounced, row.recent_tickets, row.blocked)
