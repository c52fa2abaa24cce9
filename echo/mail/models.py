"""The outbox: every message Echo sends, with its delivery state, so none is silently lost."""

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from echo.db import DEFERRED, created_at, utcnow, uuid_pk
from echo.extensions import Model

STATES = ("queued", "sending", "sent", "delivered", "failed", "expired")
# Emails to customers thread (reply token, registered ids); notifications to agents do not.
CUSTOMER_EMAILS = frozenset({"acknowledgement", "reply", "auto_closed"})


class OutboxMessage(Model):
    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(f"state IN {STATES!r}", name="state"),
        Index("ix_outbox_pending", "next_attempt_at", postgresql_where=text("state IN ('queued', 'sending')")),
        # An address's unsent mail in the order it was written: a later email waits for an earlier retry.
        Index("ix_outbox_unsent_to", "to_email", "created_at", postgresql_where=text("state IN ('queued', 'sending')")),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tickets.id", **DEFERRED), index=True)
    thread_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("threads.id", **DEFERRED), index=True)
    to_email: Mapped[str] = mapped_column(String(320), nullable=False)
    context: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="queued", server_default="queued")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(Text, nullable=False)
    postmark_message_id: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = created_at()
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    # When the current send began; a `sending` row older than a few minutes means its worker died.
    attempted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
