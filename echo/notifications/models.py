"""Notifications, and where the worker has read the event log up to."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from echo.db import created_at, uuid_pk
from echo.extensions import Model

KINDS = ("new_ticket", "customer_reply", "assigned", "mention")
NEW_TICKET_CHOICES = ("all", "unassigned", "none")  # which new tickets (and unassigned replies) an agent hears of


class Notification(Model):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(f"kind IN {KINDS!r}", name="kind"),
        Index("ix_notifications_unread", "agent_id", "created_at", postgresql_where=text("read_at IS NULL")),
        Index("ix_notifications_agent_created", "agent_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), nullable=False)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False,
                                                 index=True)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)  # who did it ("customer:…", "agent:…")
    created_at: Mapped[datetime] = created_at()
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class NotifyCursor(Model):
    """One row: the event-log position the notifier has handled (see `echo.live.stream`)."""

    __tablename__ = "notify_cursor"

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    xid: Mapped[int] = mapped_column(BigInteger, nullable=False)
    row_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
