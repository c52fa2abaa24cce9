"""Customer sign-in routes for deployments where Echo issues the portal JWT (SPEC §8, second part);
the use cases live in `echo.portal.accounts`."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from echo.extensions import db, limiter
from echo.http import json_object
from echo.inbound.schemas import normalize_email
from echo.passkeys import service as passkeys
from echo.portal import accounts
from echo.portal.auth import identify

bp = Blueprint("portal_sessions", __name__, url_prefix="/api/sessions")
SENT = {"status": "sent", "message": "If that address has written to us, a sign-up link is on its way."}


def _ip_key() -> str:
    return request.remote_addr or "unknown"


def _relying_party() -> passkeys.RelyingParty:
    return accounts.relying_party()


def _session(customer, token: str, expires):
    db.session.commit()
    return jsonify(jwt=token, expires_at=expires.isoformat(), user_id=str(customer.id)), 201


@bp.post("/enrol")
@limiter.limit("5/minute", key_func=_ip_key)
def request_enrolment():
    """Queue a one-time passkey sign-up link; the answer, and the work, are the same for anyone."""
    email = normalize_email(str(json_object().get("email") or ""))
    if email:
        accounts.request_enrolment(email)
    return jsonify(SENT), 202


@bp.post("/enrol/options")
@limiter.limit("10/minute", key_func=_ip_key)
def enrolment_options():
    options = accounts.enrolment_options(str(json_object().get("token") or ""), _relying_party())
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/enrol/verify")
@limiter.limit("10/minute", key_func=_ip_key)
def enrolment_verify():
    body = json_object()
    return _session(*accounts.complete_enrolment(str(body.get("token") or ""), body.get("credential"),
                                                 str(body.get("name") or ""), _relying_party()))


@bp.get("/webauthn/challenge")
@limiter.limit("30/minute", key_func=_ip_key)
def challenge():
    challenge_id, options = accounts.sign_in_challenge(_relying_party())
    return jsonify(challenge_id=challenge_id, options=options)


@bp.post("")
@limiter.limit("10/minute", key_func=_ip_key)
def sign_in():
    body = json_object()
    return _session(*accounts.sign_in(str(body.get("challenge_id") or ""), body.get("credential"),
                                      _relying_party()))


@bp.delete("/current")
def sign_out():
    accounts.sign_out(identify())
    db.session.commit()
    return "", 204
