"""Agents: the people who answer tickets in the console, their API tokens, invitations and sessions."""

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from echo.db import created_at, uuid_pk
from echo.extensions import Model

ROLES = ("ops", "superadmin")


class Agent(Model):
    __tablename__ = "agents"
    __table_args__ = (CheckConstraint("role IN ('ops', 'superadmin')", name="role"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False, default="ops")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"), nullable=False)
    created_at: Mapped[datetime] = created_at()
    # An IANA zone name ("Europe/Berlin"): the console shows this agent times in it.
    time_zone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC", server_default="UTC")
    # Added under each reply the agent writes in the console (plain text).
    signature: Mapped[str] = mapped_column(Text, nullable=False, default="", server_default="")
    deactivated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Which new tickets (and replies on unassigned ones) this agent hears of: all, unassigned, none;
    # and whether notifications also come by email (assignments and @mentions always notify).
    notify_new: Mapped[str] = mapped_column(String(16), nullable=False, default="all", server_default="all")
    notify_email: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True, server_default=text("true"))


class AgentToken(Model):
    """A personal access token (`echo_pat_…`); only its SHA-256 is stored."""

    __tablename__ = "agent_tokens"

    id: Mapped[uuid.UUID] = uuid_pk()
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    created_at: Mapped[datetime] = created_at()
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    agent: Mapped[Agent] = relationship(lazy="joined")


class AgentInvitation(Model):
    """A one-time enrolment link: random, stored as SHA-256, expiring, single use."""

    __tablename__ = "agent_invitations"

    id: Mapped[uuid.UUID] = uuid_pk()
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    agent: Mapped[Agent] = relationship(lazy="joined")


class AgentSession(Model):
    """A signed-in console session; the cookie carries only its random id."""

    __tablename__ = "agent_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie value
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("agents.id"), nullable=False, index=True)
    method: Mapped[str] = mapped_column(String(16), nullable=False)  # passkey | cf-access | dev
    created_at: Mapped[datetime] = created_at()
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    agent: Mapped[Agent] = relationship(lazy="joined")
