"""Console sign-in: passkeys, one-time enrolment links, the development sign-in, and the agent's own passkeys."""

from __future__ import annotations

import uuid

from flask import Blueprint, abort, current_app, g, jsonify, redirect, render_template, request, session, url_for
from sqlalchemy import delete, select

from echo import hosting
from echo.agents.models import Agent
from echo.agents.service import create_invitation, find_invitation, use_invitation
from echo.console.auth import current_agent, end_session, require_agent, start_session
from echo.errors import EchoError
from echo.extensions import csrf, db
from echo.http import json_object
from echo.passkeys import service as passkeys
from echo.passkeys.models import Passkey

bp = Blueprint("console_auth", __name__, url_prefix="/tickets")
DEMO_AGENT = "demo@echo.local"


@bp.before_request
def _csrf():
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()


def relying_party() -> passkeys.RelyingParty:
    """The console's passkey relying party: ECHO_CONSOLE_URL's host and origin, whatever the request says."""
    settings = current_app.config["ECHO"]
    return passkeys.RelyingParty.for_url(settings.console_base_url, settings.from_name or "Echo")


def _safe_next(target: str | None) -> str:
    """Only ever return to a path inside the console (no open redirects)."""
    if target and target.startswith("/tickets") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("console.inbox")


@bp.get("/login")
def login():
    if current_agent() is not None:
        return redirect(_safe_next(request.args.get("next")))
    if hosting.supplies_agents():
        return hosting.host_sign_in()
    settings = current_app.config["ECHO"]
    return render_template("console/login.html", dev_login=not settings.production, next=request.args.get("next"))


@bp.post("/login/options")
def login_options():
    options, challenge = passkeys.authentication_options(relying_party())
    session["login_challenge"] = challenge
    return current_app.response_class(options, mimetype="application/json")


@bp.post("/login/verify")
def login_verify():
    credential = passkeys.parse_credential(json_object().get("credential"))
    passkey = passkeys.verify_authentication(relying_party(), credential, session.pop("login_challenge", None))
    agent = db.session.get(Agent, passkey.agent_id) if passkey.agent_id else None
    if agent is None or not agent.active:
        raise passkeys.PasskeyFailed("That passkey does not belong to an active agent.")
    start_session(agent, "passkey")
    db.session.commit()
    return jsonify(redirect=_safe_next(request.args.get("next")))


@bp.post("/login/dev")
def dev_login():
    """One click signs in as the demo agent — development only; production answers 404."""
    if current_app.config["ECHO"].production:
        abort(404)
    agent = db.session.scalar(select(Agent).where(Agent.email == DEMO_AGENT, Agent.active))
    if agent is None:
        abort(404)
    start_session(agent, "dev")
    db.session.commit()
    return redirect(_safe_next(request.form.get("next")))


@bp.post("/logout")
def logout():
    end_session()
    db.session.commit()
    return redirect(url_for("console_auth.login"))


# The token travels in the query string and JSON bodies, never in a path, so access logs
# (which record paths only) never hold it.
@bp.get("/enrol")
def enrol():
    token = request.args.get("token", "")
    try:
        invitation = find_invitation(token)
    except EchoError as exc:
        return render_template("console/message.html", title="Invitation", message=exc.message), 404
    return render_template("console/enrol.html", agent=invitation.agent, token=token)


@bp.post("/enrol/options")
def enrol_options():
    agent = find_invitation(str(json_object().get("token") or "")).agent
    return _registration_options(agent, "enrol_challenge")


@bp.post("/enrol/verify")
def enrol_verify():
    body = json_object()
    invitation = find_invitation(str(body.get("token") or ""))
    credential = passkeys.verify_registration(
        relying_party(), passkeys.parse_credential(body.get("credential")), session.pop("enrol_challenge", None),
    )
    use_invitation(invitation)
    passkeys.add_passkey(credential, agent_id=invitation.agent_id, name=str(body.get("name") or "Passkey"))
    start_session(invitation.agent, "passkey")
    db.session.commit()
    return jsonify(redirect=url_for("console.inbox"))


def _registration_options(agent: Agent, key: str):
    existing = db.session.scalars(select(Passkey).where(Passkey.agent_id == agent.id)).all()
    options, challenge = passkeys.registration_options(
        relying_party(), user_handle=agent.id.bytes, user_name=agent.email, display_name=agent.display_name,
        existing=list(existing),
    )
    session[key] = challenge
    return current_app.response_class(options, mimetype="application/json")


@bp.get("/account")
def account():
    g.actor = require_agent()
    agent = current_agent()
    keys = db.session.scalars(select(Passkey).where(Passkey.agent_id == agent.id).order_by(Passkey.created_at)).all()
    return render_template("console/account.html", agent=agent, passkeys=keys)


@bp.post("/account/passkeys/options")
def add_passkey_options():
    require_agent()
    return _registration_options(current_agent(), "add_challenge")


@bp.post("/account/passkeys/verify")
def add_passkey_verify():
    require_agent()
    body = json_object()
    credential = passkeys.verify_registration(
        relying_party(), passkeys.parse_credential(body.get("credential")), session.pop("add_challenge", None),
    )
    passkeys.add_passkey(credential, agent_id=current_agent().id, name=str(body.get("name") or "Passkey"))
    db.session.commit()
    return jsonify(redirect=url_for("console_auth.account"))


@bp.post("/account/passkeys/<uuid:passkey_id>/revoke")
def revoke_passkey(passkey_id: uuid.UUID):
    """An agent removes one of their own passkeys (never someone else's)."""
    actor = require_agent()
    db.session.execute(delete(Passkey).where(Passkey.id == passkey_id, Passkey.agent_id == actor.id))
    db.session.commit()
    return redirect(url_for("console_auth.account"))


def invitation_link(agent: Agent, console_url: str | None = None) -> str:
    """Make an invitation and return the enrolment URL to hand to the agent (on `console_url` if given)."""
    token = create_invitation(agent)
    base = console_url or current_app.config["ECHO"].console_base_url
    return f"{base.rstrip('/')}/tickets/enrol?token={token}"
