"""Customers: everyone who writes to support, keyed by normalised email."""

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Computed, DateTime, Index, String, text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from echo.db import created_at, utcnow, uuid_pk
from echo.extensions import Model


class Customer(Model):
    __tablename__ = "customers"
    __table_args__ = (
        # Erased customers all become "[deleted]", so uniqueness covers live rows only.
        Index("uq_customers_email_live", "email", unique=True, postgresql_where=text("deleted_at IS NULL")),
        Index("ix_customers_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_customers_email_trgm", "email", postgresql_using="gin", postgresql_ops={"email": "gin_trgm_ops"}),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(200))
    first_seen_at: Mapped[datetime] = created_at()
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    email_bounced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"), nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    search_vector = mapped_column(
        TSVECTOR,
        Computed("to_tsvector('simple'::regconfig, (email || ' ') || coalesce(display_name, ''))", persisted=True),
        deferred=True,
    )
