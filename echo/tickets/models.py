"""Tickets, their threads (messages and notes), and the message ids that thread mail onto them."""

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal, get_args

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    Sequence,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from echo.db import DEFERRED, created_at, utcnow, uuid_pk
from echo.extensions import Model, db

STATUSES = ("open", "pending", "resolved", "closed")
Category = Literal["account", "billing", "bug_report", "feature_request"]
CATEGORIES: tuple[str, ...] = get_args(Category)
DIRECTIONS = ("inbound", "outbound", "internal")
SOURCES = ("email", "portal", "console", "snapshot", "import")

ticket_number_seq = Sequence("ticket_number_seq", metadata=db.metadata)


# The tickets the inbox's views list: not merged away, not quarantined, not snoozed.
LIVE = "merged_into_id IS NULL AND quarantined IS false AND snoozed_until IS NULL"


def format_number(seq: int) -> str:
    return f"TKT-{seq:04d}"


class Ticket(Model):
    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'pending', 'resolved', 'closed')", name="status"),
        CheckConstraint("merged_into_id IS NULL OR merged_into_id <> id", name="not_merged_into_self"),
        CheckConstraint(f"category IS NULL OR category IN {CATEGORIES!r}", name="category"),
        # Only internal (Investigate) tickets have no customer.
        CheckConstraint("customer_id IS NOT NULL OR source = 'snapshot'", name="customer_unless_internal"),
        Index("ix_tickets_customer_created", "customer_id", "created_at"),
        Index("ix_tickets_inbox", "quarantined", "updated_at"),
        # The inbox pages and its per-status counts, without scanning merged, quarantined or snoozed tickets
        # (each predicate is spelled in the queries as a literal, so that generic plans can use them too).
        Index("ix_tickets_inbox_status", "status", text("updated_at DESC"), text("seq DESC"),
              postgresql_where=text(LIVE)),
        # The console's default order: the customer's latest message first (or oldest waiting first).
        Index("ix_tickets_customer_activity", "status", text("coalesce(last_customer_reply_at, created_at) DESC"),
              text("seq DESC"), postgresql_where=text(LIVE)),
        # "All open" (open and pending together) in that order: the first page reads 25 rows, not thousands.
        Index("ix_tickets_active_activity", text("coalesce(last_customer_reply_at, created_at) DESC"),
              text("seq DESC"), postgresql_where=text(f"{LIVE} AND (status = 'open' OR status = 'pending')")),
        # An agent's own views and their counts ("Mine").
        Index("ix_tickets_assignee_status", "assigned_to", "status", postgresql_where=text(LIVE)),
        Index("ix_tickets_merged_into", "merged_into_id", postgresql_where=text("merged_into_id IS NOT NULL")),
        Index("ix_tickets_pending_since", "status_changed_at", postgresql_where=text("status = 'pending'")),
        Index("ix_tickets_snoozed_until", "snoozed_until", postgresql_where=text("snoozed_until IS NOT NULL")),
        Index("ix_tickets_search_document", "search_document", postgresql_using="gin"),
        Index("ix_tickets_number_trgm", "number", postgresql_using="gin", postgresql_ops={"number": "gin_trgm_ops"}),
        Index("ix_tickets_tags", "tags", postgresql_using="gin"),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    seq: Mapped[int] = mapped_column(
        BigInteger, ticket_number_seq, server_default=ticket_number_seq.next_value(), unique=True, nullable=False
    )
    # The human number (TKT-0042) is derived from seq by the database, so it can never disagree.
    number: Mapped[str] = mapped_column(
        String(32), Computed("'TKT-' || lpad(seq::text, greatest(4, length(seq::text)), '0')", persisted=True),
        unique=True,
    )
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="open", server_default="open")
    subject: Mapped[str] = mapped_column(Text, nullable=False, default="")
    tags: Mapped[list[str]] = mapped_column(
        ARRAY(Text), nullable=False, default=list, server_default=text("'{}'::text[]")
    )
    category: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="email", server_default="email")
    quarantined: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("false"))
    quarantine_reason: Mapped[str | None] = mapped_column(String(32))
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tickets.id"))
    previous_ticket_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tickets.id"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    status_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False
    )
    last_customer_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_agent_reply_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    customer_read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A snoozed ticket leaves the open views until then; the clock reopens it and tells its assignee.
    snoozed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Subject + every message, kept by database triggers (migration "ticket search document"): what search matches.
    search_document = mapped_column(TSVECTOR, nullable=False, server_default=text("''::tsvector"), deferred=True)

    threads: Mapped[list["Thread"]] = relationship(
        back_populates="ticket", order_by="Thread.created_at", foreign_keys="Thread.ticket_id"
    )
    customer = relationship("Customer", lazy="joined")
    assignee = relationship("Agent", lazy="joined")


class Thread(Model):
    """One message on a ticket: customer mail in, agent reply out, or an internal note."""

    __tablename__ = "threads"
    __table_args__ = (
        CheckConstraint("direction IN ('inbound', 'outbound', 'internal')", name="direction"),
        CheckConstraint("source IN ('email', 'portal', 'console', 'snapshot', 'import')", name="source"),
        Index("ix_threads_ticket_created", "ticket_id", "created_at"),
        Index(
            "uq_threads_postmark_message_id", "postmark_message_id", unique=True,
            postgresql_where=text("postmark_message_id IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = uuid_pk()
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), nullable=False)
    direction: Mapped[str] = mapped_column(String(16), nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False, default="email")
    customer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("customers.id"))
    sender_email: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str | None] = mapped_column(String(200))
    authored_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id"))
    subject: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text, nullable=False, default="")
    body_text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    stripped_text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    rfc_message_id: Mapped[str | None] = mapped_column(Text)
    postmark_message_id: Mapped[str | None] = mapped_column(String(100))
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[str | None] = mapped_column(Text)
    is_auto_reply: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("false"))
    spam_score: Mapped[Decimal | None] = mapped_column(Numeric(6, 2))
    quarantined: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default=text("false"))
    # What the intake had to cut or leave out of the message, as sentences for the agent (the
    # original then sits among its attachments); null when it was kept whole.
    notices: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    # Who else the message was to: inbound, the Cc header; outbound, the Cc and Bcc the agent sent to.
    cc: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    bcc: Mapped[list[str] | None] = mapped_column(ARRAY(Text))
    created_at: Mapped[datetime] = created_at()
    erased_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The new text of each message (quotes stripped), capped so one huge mail cannot fill its ticket's
    # search document (which is built from these vectors).
    search_vector = mapped_column(
        TSVECTOR,
        Computed("to_tsvector('english'::regconfig, left(stripped_text, 100000))", persisted=True),
        deferred=True,
    )

    ticket: Mapped[Ticket] = relationship(back_populates="threads", foreign_keys=[ticket_id])
    attachments = relationship("Attachment", order_by="Attachment.filename", lazy="selectin")

    @property
    def hides_text(self) -> bool:
        """Whether quoted history or a signature is collapsed under what is shown first."""
        return bool(self.stripped_text) and self.stripped_text.strip() != self.body_text.strip()


class MessageId(Model):
    """Every RFC Message-ID Echo has seen or sent, normalised, pointing at its ticket.

    `origin` says whose id it is: `outbound` ids were minted by Echo or Postmark (random,
    unguessable), `inbound` ids came from a customer's mail client and prove nothing about
    who is writing; `awaited` ids were referred to by a customer's message before the message
    they name arrived (it joins that ticket when it does, and the id becomes `inbound`).
    """

    __tablename__ = "message_ids"
    __table_args__ = (CheckConstraint("origin IN ('inbound', 'outbound', 'awaited')", name="origin"),)

    message_id: Mapped[str] = mapped_column(Text, primary_key=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", **DEFERRED), nullable=False, index=True)
    thread_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("threads.id", **DEFERRED))
    origin: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = created_at()


class TicketRead(Model):
    """When an agent last opened a ticket, for the inbox's new-reply marker."""

    __tablename__ = "ticket_reads"

    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Draft(Model):
    """A reply an agent is writing, saved as they type: one per agent and ticket, gone once sent."""

    __tablename__ = "ticket_drafts"

    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True,
                                                 index=True)
    body_text: Mapped[str] = mapped_column(Text, nullable=False, default="")
    cc: Mapped[str] = mapped_column(Text, nullable=False, default="")
    bcc: Mapped[str] = mapped_column(Text, nullable=False, default="")
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class SavedReply(Model):
    """A team-wide canned answer; `{first_name}`, `{ticket_number}`… are filled in when it is used."""

    __tablename__ = "saved_replies"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    body_text: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = created_at()
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class BlockedSender(Model):
    """An address whose mail an agent blocked: it is still kept (never refused), quarantined silently."""

    __tablename__ = "blocked_senders"

    email: Mapped[str] = mapped_column(String(320), primary_key=True)
    blocked_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("agents.id"))
    created_at: Mapped[datetime] = created_at()
