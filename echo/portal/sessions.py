"""Customer sign-in for deployments where Echo issues the portal JWT (SPEC §8, second part).

Enrolment: a customer asks for a link by email; the answer never says whether the address is
known; the emailed one-time token (SHA-256 at rest, expiring, single use) lets them register a
passkey. Sign-in: a passkey assertion against a challenge kept in Redis for five minutes.
"""

from __future__ import annotations

import json
import secrets
from datetime import timedelta

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import select, update

from echo.actors import Actor
from echo.audit import service as audit
from echo.customers.models import Customer
from echo.db import utcnow
from echo.errors import EchoError
from echo.extensions import db, limiter
from echo.http import json_object
from echo.inbound.schemas import normalize_email
from echo.jobs import redis_connection
from echo.mail.service import queue_email
from echo.passkeys import service as passkeys
from echo.passkeys.models import Passkey
from echo.security import token_hash
from echo.portal.auth import identify, start_session
from echo.portal.models import CustomerEnrolment, CustomerSession

bp = Blueprint("portal_sessions", __name__, url_prefix="/api/sessions")
ENROLMENT_TTL = timedelta(hours=1)
CHALLENGE_TTL = 300
SENT = {"status": "sent", "message": "If that address has written to us, a sign-up link is on its way."}


class EnrolmentInvalid(EchoError):
    status = 400
    code = "invalid_token"


def _ip_key() -> str:
    return request.remote_addr or "unknown"


def relying_party() -> passkeys.RelyingParty:
    settings = current_app.config["ECHO"]
    return passkeys.RelyingParty.for_url(settings.portal_url or request.host_url, settings.from_name or "Support")



@bp.post("/enrol")
@limiter.limit("5/minute", key_func=_ip_key)
def request_enrolment():
    """Email a one-time passkey sign-up link to a known customer; the answer is the same for anyone."""
    email = normalize_email(str(json_object().get("email") or ""))
    customer = db.session.scalar(
        select(Customer).where(Customer.email == email, Customer.deleted_at.is_(None))
    ) if email else None
    if customer is not None:
        raw = secrets.token_urlsafe(32)
        db.session.add(CustomerEnrolment(customer_id=customer.id, token_hash=token_hash(raw),
                                         expires_at=utcnow() + ENROLMENT_TTL))
        portal = current_app.config["ECHO"].portal_url or request.host_url.rstrip("/")
        queue_email("portal_enrol", to_email=customer.email, context={"link": f"{portal}/enrol?token={raw}"})
        db.session.commit()
    return jsonify(SENT), 202


def _enrolment(raw: str) -> CustomerEnrolment:
    enrolment = db.session.scalar(select(CustomerEnrolment).where(CustomerEnrolment.token_hash == token_hash(raw or "")))
    if enrolment is None or enrolment.used_at is not None or enrolment.expires_at <= utcnow():
        raise EnrolmentInvalid("This sign-up link is no longer valid. Ask for a new one.")
    return enrolment


@bp.post("/enrol/options")
@limiter.limit("10/minute", key_func=_ip_key)
def enrolment_options():
    body = json_object()
    enrolment = _enrolment(str(body.get("token") or ""))
    customer = db.session.get(Customer, enrolment.customer_id)
    existing = db.session.scalars(select(Passkey).where(Passkey.customer_id == customer.id)).all()
    options, challenge = passkeys.registration_options(
        relying_party(), user_handle=customer.id.bytes, user_name=customer.email,
        display_name=customer.display_name or customer.email, existing=list(existing),
    )
    redis_connection().set(f"echo:enrol-challenge:{enrolment.id}", json.dumps(challenge), ex=CHALLENGE_TTL)
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/enrol/verify")
@limiter.limit("10/minute", key_func=_ip_key)
def enrolment_verify():
    body = json_object()
    enrolment = _enrolment(str(body.get("token") or ""))
    challenge = redis_connection().getdel(f"echo:enrol-challenge:{enrolment.id}")
    credential = passkeys.verify_registration(
        relying_party(), passkeys.parse_credential(body.get("credential")), json.loads(challenge) if challenge else None,
    )
    spent = db.session.execute(
        update(CustomerEnrolment).where(CustomerEnrolment.id == enrolment.id, CustomerEnrolment.used_at.is_(None))
        .values(used_at=utcnow())
    ).rowcount
    if spent != 1:
        raise EnrolmentInvalid("This sign-up link is no longer valid. Ask for a new one.")
    customer = db.session.get(Customer, enrolment.customer_id)
    passkeys.add_passkey(credential, customer_id=customer.id, name=str(body.get("name") or "Passkey"))
    audit.record(Actor.customer(customer.id), "customers.passkey_added", "customer", customer.id)
    token, expires = start_session(customer)
    db.session.commit()
    return jsonify(jwt=token, expires_at=expires.isoformat(), user_id=str(customer.id)), 201


@bp.get("/webauthn/challenge")
@limiter.limit("30/minute", key_func=_ip_key)
def challenge():
    options, record = passkeys.authentication_options(relying_party())
    challenge_id = secrets.token_urlsafe(16)
    redis_connection().set(f"echo:login-challenge:{challenge_id}", json.dumps(record), ex=CHALLENGE_TTL)
    return jsonify(challenge_id=challenge_id, options=json.loads(options))


@bp.post("")
@limiter.limit("10/minute", key_func=_ip_key)
def sign_in():
    body = json_object()
    stored = redis_connection().getdel(f"echo:login-challenge:{str(body.get('challenge_id') or '')[:64]}")
    passkey = passkeys.verify_authentication(
        relying_party(), passkeys.parse_credential(body.get("credential")), json.loads(stored) if stored else None,
    )
    customer = db.session.get(Customer, passkey.customer_id) if passkey.customer_id else None
    if customer is None or customer.deleted_at is not None:
        raise passkeys.PasskeyFailed("That passkey is not recognised.")
    token, expires = start_session(customer)
    db.session.commit()
    return jsonify(jwt=token, expires_at=expires.isoformat(), user_id=str(customer.id)), 201


@bp.delete("/current")
def sign_out():
    identity = identify()
    db.session.execute(update(CustomerSession).where(CustomerSession.id == identity.session_hash)
                       .values(revoked_at=utcnow()))
    db.session.commit()
    return "", 204
