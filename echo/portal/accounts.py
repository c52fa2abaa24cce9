"""Customer accounts where Echo issues the portal JWT (SPEC §8): enrolment links and passkey sign-in.

Enrolment never tells whether an address is a customer's, by its answer or by its timing: the
request only queues `send_enrolment_link`, and the job looks the address up, limits how many
links one address receives, and sends. The emailed one-time token (SHA-256 at rest, expiring,
single use) lets the customer register a passkey; sign-in is a passkey assertion against a
challenge kept in Redis for five minutes.
"""

from __future__ import annotations

import json
import logging
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select, update

from echo.actors import Actor
from echo.audit import service as audit
from echo.customers.models import Customer
from echo.db import spend_once, utcnow
from echo.errors import EchoError
from echo.extensions import db
from echo.jobs import queue, redis_connection
from echo.mail.service import queue_email
from echo.passkeys import service as passkeys
from echo.passkeys.models import Passkey
from echo.portal.auth import PortalIdentity, start_session
from echo.portal.models import CustomerEnrolment, CustomerSession
from echo.security import token_hash

log = logging.getLogger(__name__)
ENROLMENT_TTL = timedelta(hours=1)
LINKS_PER_HOUR = 3  # per address: enough for a lost mail or two, too few to flood an inbox
CHALLENGE_TTL = 300


class EnrolmentInvalid(EchoError):
    status = 400
    code = "invalid_token"


def request_enrolment(email: str) -> None:
    """Queue the sign-up link for `email` (already normalised); the same work for any address."""
    from echo.portal.tasks import send_enrolment_link

    queue("default").enqueue(send_enrolment_link, email)


def send_enrolment_link(email: str) -> bool:
    """Email a one-time passkey sign-up link if `email` is a live customer's and has not had
    LINKS_PER_HOUR links in the last hour. Flushes; the job commits."""
    customer = db.session.scalar(select(Customer).where(Customer.email == email, Customer.deleted_at.is_(None)))
    if customer is None:
        return False
    now = utcnow()
    recent = db.session.execute(select(func.count()).select_from(CustomerEnrolment).where(
        CustomerEnrolment.customer_id == customer.id, CustomerEnrolment.created_at > now - timedelta(hours=1))
    ).scalar_one()
    if recent >= LINKS_PER_HOUR:
        log.info("enrolment link not sent: %s links in the last hour", recent)
        return False
    base = current_app.config["ECHO"].portal_base_url  # configuration only, never a request's Host
    raw = secrets.token_urlsafe(32)
    db.session.add(CustomerEnrolment(customer_id=customer.id, token_hash=token_hash(raw), created_at=now,
                                     expires_at=now + ENROLMENT_TTL))
    queue_email("portal_enrol", to_email=customer.email, context={"link": f"{base}/enrol?token={raw}"})
    return True


def relying_party() -> passkeys.RelyingParty:
    """The portal's passkey relying party: ECHO_PORTAL_URL's host and origin, whatever the request says."""
    settings = current_app.config["ECHO"]
    return passkeys.RelyingParty.for_url(settings.portal_base_url, settings.from_name or "Support")


def find_enrolment(raw: str) -> CustomerEnrolment:
    enrolment = db.session.scalar(
        select(CustomerEnrolment).where(CustomerEnrolment.token_hash == token_hash(raw or "")))
    if enrolment is None or enrolment.used_at is not None or enrolment.expires_at <= utcnow():
        raise EnrolmentInvalid("This sign-up link is no longer valid. Ask for a new one.")
    return enrolment


def enrolment_options(raw: str, rp: passkeys.RelyingParty) -> str:
    """WebAuthn registration options for the link's customer; the challenge waits in Redis."""
    enrolment = find_enrolment(raw)
    customer = db.session.get_one(Customer, enrolment.customer_id)
    existing = db.session.scalars(select(Passkey).where(Passkey.customer_id == customer.id)).all()
    options, challenge = passkeys.registration_options(
        rp, user_handle=customer.id.bytes, user_name=customer.email,
        display_name=customer.display_name or customer.email, existing=list(existing),
    )
    redis_connection().set(f"echo:enrol-challenge:{enrolment.id}", json.dumps(challenge), ex=CHALLENGE_TTL)
    return options


def complete_enrolment(raw: str, credential: object, name: str, rp: passkeys.RelyingParty
                       ) -> tuple[Customer, str, datetime]:
    """Register the passkey, spend the link (once, even under a race) and open a session."""
    enrolment = find_enrolment(raw)
    challenge = redis_connection().getdel(f"echo:enrol-challenge:{enrolment.id}")
    verified = passkeys.verify_registration(rp, passkeys.parse_credential(credential),
                                            json.loads(challenge) if challenge else None)
    if not spend_once(CustomerEnrolment, enrolment.id):
        raise EnrolmentInvalid("This sign-up link is no longer valid. Ask for a new one.")
    customer = db.session.get_one(Customer, enrolment.customer_id)
    passkeys.add_passkey(verified, customer_id=customer.id, name=name or "Passkey")
    audit.record(Actor.customer(customer.id), "customers.passkey_added", "customer", customer.id)
    token, expires = start_session(customer)
    return customer, token, expires


def sign_in_challenge(rp: passkeys.RelyingParty) -> tuple[str, dict]:
    options, record = passkeys.authentication_options(rp)
    challenge_id = secrets.token_urlsafe(16)
    redis_connection().set(f"echo:login-challenge:{challenge_id}", json.dumps(record), ex=CHALLENGE_TTL)
    return challenge_id, json.loads(options)


def sign_in(challenge_id: str, credential: object, rp: passkeys.RelyingParty) -> tuple[Customer, str, datetime]:
    """A passkey assertion against its challenge (spent on first use) opens a session."""
    stored = redis_connection().getdel(f"echo:login-challenge:{challenge_id[:64]}")
    passkey = passkeys.verify_authentication(rp, passkeys.parse_credential(credential),
                                             json.loads(stored) if stored else None)
    customer = db.session.get(Customer, passkey.customer_id) if passkey.customer_id else None
    if customer is None or customer.deleted_at is not None:
        raise passkeys.PasskeyFailed("That passkey is not recognised.")
    token, expires = start_session(customer)
    return customer, token, expires


def sign_out(identity: PortalIdentity) -> None:
    """Revoke the session behind the token (and so every JWT minted for it)."""
    db.session.execute(update(CustomerSession).where(CustomerSession.id == identity.session_hash)
                       .values(revoked_at=utcnow()))
