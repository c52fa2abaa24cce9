"""Column helpers shared by every feature's models."""

import uuid
from datetime import datetime, timezone

from sqlalchemy import DateTime, Uuid, func, text
from sqlalchemy.orm import Mapped, mapped_column


# References between rows one transaction writes together (an outbox row and its thread, a message
# id and its thread): checked at COMMIT, so whatever order the rows are written in is safe.
DEFERRED = {"deferrable": True, "initially": "DEFERRED"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def uuid_pk() -> Mapped[uuid.UUID]:
    """Primary key generated in Python (ids are needed before flush) with a database default too."""
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()"))


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False)
