"""Portal authentication: HS256 JWTs verified with SESSION_KEY; only the token's email identifies a customer.

Echo's own sign-in mints the tokens of sessions it records (`customer_sessions`); a host platform
may mint its own with session ids Echo never saw. Either way a token lives at most SESSION_MAX
from its `iat`, and either kind of session can be revoked (`revoke_session`).
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from flask import current_app, request
from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from echo.customers.models import Customer
from echo.db import utcnow
from echo.errors import Unauthorized
from echo.extensions import db
from echo.portal.models import CustomerSession, RevokedPortalSession
from echo.security import token_hash

TOKEN_TTL = timedelta(minutes=15)
REFRESH_WHEN_UNDER = timedelta(minutes=5)
SESSION_MAX = timedelta(hours=12)


class Unauthenticated(Unauthorized):
    """No valid portal token; the SPA signs the customer in again (`session_expired`: it had one)."""

    def __init__(self, message: str, *, code: str | None = None):
        super().__init__(message, challenge='Bearer realm="echo-portal"', code=code)


@dataclass(frozen=True)
class PortalIdentity:
    customer_id: uuid.UUID | None  # None: the email has never written to support yet
    email: str
    session_id: str
    expires_at: datetime

    @property
    def session_hash(self) -> str:
        return token_hash(self.session_id)


def _key() -> str:
    return current_app.config["ECHO"].session_key


def mint_jwt(customer: Customer, session_id: str, *, now: datetime | None = None,
             session_expires: datetime | None = None) -> tuple[str, datetime]:
    """A 15-minute token, never outliving its session's 12-hour maximum."""
    now = now or utcnow()
    expires = min(now + TOKEN_TTL, session_expires or now + TOKEN_TTL)
    token = jwt.encode(
        {"sub": str(customer.id), "customer_email": customer.email, "sid": session_id,
         "iat": int(now.timestamp()), "exp": int(expires.timestamp())},
        _key(), algorithm="HS256",
    )
    return token, expires


def start_session(customer: Customer) -> tuple[str, datetime]:
    """Open a session for a customer who proved a passkey; returns its first JWT."""
    session_id = secrets.token_urlsafe(24)
    while session_id.startswith("-"):  # an operator pastes it into `echo-desk portal revoke-session SID`
        session_id = secrets.token_urlsafe(24)
    now = utcnow()
    record = CustomerSession(id=token_hash(session_id), customer_id=customer.id,
                             expires_at=now + SESSION_MAX)
    db.session.add(record)
    return mint_jwt(customer, session_id, now=now, session_expires=record.expires_at)


def identify() -> PortalIdentity:
    """Verify the bearer JWT (signature, expiry, claims, live session) and name the customer it stands for."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Sign in to see your tickets.")
    try:
        claims = jwt.decode(token.strip(), _key(), algorithms=["HS256"],
                            options={"require": ["sub", "customer_email", "sid", "iat", "exp"]})
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("Your session timed out. Sign in again to continue.", code="session_expired") from None
    except jwt.PyJWTError:
        raise Unauthenticated("Sign in to see your tickets.") from None
    email, sid = claims.get("customer_email"), claims.get("sid")
    if not isinstance(email, str) or not isinstance(sid, str) or "@" not in email:
        raise Unauthenticated("Sign in to see your tickets.")
    now = utcnow()
    # Whoever minted it, no token lives past the 12-hour session maximum. PyJWT has checked that
    # `iat` is not in the future, but takes numeric strings for both claims: numbers only here.
    iat, exp = claims["iat"], claims["exp"]
    if not _is_time(iat) or not _is_time(exp) or exp - iat > SESSION_MAX.total_seconds():
        raise Unauthenticated("Sign in to see your tickets.")
    if now.timestamp() - iat > SESSION_MAX.total_seconds():
        raise Unauthenticated("Your session timed out. Sign in again to continue.", code="session_expired")
    email = email.strip().lower()
    customer_id, refused = db.session.execute(select(
        select(Customer.id).where(Customer.email == email, Customer.deleted_at.is_(None)).scalar_subquery(),
        _refused(token_hash(sid), now),
    )).one()
    if refused:
        raise Unauthenticated("Your session timed out. Sign in again to continue.", code="session_expired")
    return PortalIdentity(customer_id, email, sid, datetime.fromtimestamp(exp, UTC))


def _is_time(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _refused(session_hash: str, now: datetime) -> ColumnElement[bool]:
    """Whether the session is revoked or over: one of Echo's, or a host-issued id on the revocation list."""
    return or_(
        exists().where(CustomerSession.id == session_hash,
                       or_(CustomerSession.revoked_at.is_not(None), CustomerSession.expires_at <= now)),
        exists().where(RevokedPortalSession.id == session_hash, RevokedPortalSession.expires_at > now),
    )


def revoke_session(session_hash: str) -> datetime | None:
    """Refuse every token naming this session (by the SHA-256 of its `sid`) from now on. Flushes.

    Echo's own session is marked revoked (returns None); any other id is a host-issued one and goes
    on the revocation list until it can no longer matter (returns when that is)."""
    now = utcnow()
    if db.session.get(CustomerSession, session_hash) is not None:
        db.session.execute(update(CustomerSession).where(CustomerSession.id == session_hash,
                                                         CustomerSession.revoked_at.is_(None)).values(revoked_at=now))
        return None
    expires = now + SESSION_MAX
    db.session.execute(delete(RevokedPortalSession).where(RevokedPortalSession.expires_at <= now))
    db.session.execute(insert(RevokedPortalSession).values(id=session_hash, revoked_at=now, expires_at=expires)
                       .on_conflict_do_update(index_elements=[RevokedPortalSession.id],
                                              set_={"revoked_at": now, "expires_at": expires}))
    return expires


def refreshed_token(identity: PortalIdentity) -> tuple[str, datetime] | None:
    """A fresh JWT when an Echo-issued one has under five minutes left (never past the session maximum)."""
    if identity.customer_id is None or identity.expires_at - utcnow() > REFRESH_WHEN_UNDER:
        return None
    record = db.session.get(CustomerSession, identity.session_hash)
    if record is None or record.revoked_at is not None or record.expires_at <= utcnow():
        return None
    customer = db.session.get_one(Customer, identity.customer_id)
    return mint_jwt(customer, identity.session_id, session_expires=record.expires_at)
