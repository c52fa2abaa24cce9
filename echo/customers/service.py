"""Customer use cases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, text
from sqlalchemy.dialects.postgresql import insert

from echo.customers.models import Customer
from echo.extensions import db


@dataclass(frozen=True)
class CustomerRef:
    id: uuid.UUID
    email: str
    email_bounced: bool


def upsert_customer(email: str, display_name: str | None) -> CustomerRef:
    """Find or create the live customer with this (already normalised) email in one statement.

    A newer non-empty display name replaces the stored one; an empty one keeps it.
    """
    name = display_name or None
    new = insert(Customer).values(
        id=uuid.uuid4(), email=email, display_name=name, first_seen_at=func.now(), last_seen_at=func.now()
    )
    statement = new.on_conflict_do_update(
        index_elements=[Customer.email],
        index_where=text("deleted_at IS NULL"),
        set_={
            "last_seen_at": func.now(),
            "display_name": func.coalesce(new.excluded.display_name, Customer.display_name),
        },
    ).returning(Customer.id, Customer.email, Customer.email_bounced)
    row = db.session.execute(statement).one()
    return CustomerRef(row.id, row.email, row.email_bounced)
