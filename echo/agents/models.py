"""Agents: the people who answer tickets in the console."""

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, String, text
from sqlalchemy.orm import Mapped, mapped_column

from echo.db import created_at, uuid_pk
from echo.extensions import db

ROLES = ("ops", "superadmin")


class Agent(db.Model):
    __tablename__ = "agents"
    __table_args__ = (CheckConstraint("role IN ('ops', 'superadmin')", name="role"),)

    id: Mapped[uuid.UUID] = uuid_pk()
    email: Mapped[str] = mapped_column(String(320), unique=True, nullable=False)
    display_name: Mapped[str] = mapped_column(String(200), nullable=False)
    role: Mapped[str] = mapped_column(String(20), nullable=False, default="ops")
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"), nullable=False)
    created_at: Mapped[datetime] = created_at()
