"""Customer sessions (behind the portal JWTs), revoked host-issued sessions, and one-time enrolment links."""

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from echo.db import created_at, uuid_pk
from echo.extensions import Model


class CustomerSession(Model):
    """A signed-in portal session; JWTs name it in `sid`, so revoking it revokes them all."""

    __tablename__ = "customer_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False,
                                                   index=True)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CustomerEnrolment(Model):
    """An emailed link that proves a customer owns an address, so they may register a passkey."""

    __tablename__ = "customer_enrolments"

    id: Mapped[uuid.UUID] = uuid_pk()
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), nullable=False,
                                                   index=True)
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RevokedPortalSession(Model):
    """A portal session id Echo never issued (the host platform's), refused until `expires_at`.

    Kept for SESSION_MAX after revocation: that outlives every token minted before it, and the
    host session itself (12 hours at most), so the id cannot come back while anyone holds it."""

    __tablename__ = "revoked_portal_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the sid, as in support_audit_log
    revoked_at: Mapped[datetime] = created_at()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, index=True)
