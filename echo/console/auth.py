"""Who is using the console: sessions, Cloudflare Access, and the development sign-in."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cache

import jwt
from flask import current_app, request, session
from sqlalchemy import select, update

from echo import hosting
from echo.actors import Actor
from echo.agents.models import Agent, AgentSession
from echo.audit import service as audit
from echo.db import utcnow
from echo.errors import Forbidden, Unauthorized
from echo.extensions import db
from echo.security import token_hash

SESSION_MAX_AGE = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=4)


class NotSignedIn(Unauthorized):
    """No console session (the console's pages send the agent to sign in)."""


def start_session(agent: Agent, method: str) -> None:
    """Sign the agent in: a random id in the signed cookie, its hash in agent_sessions."""
    raw = secrets.token_urlsafe(32)
    now = utcnow()
    db.session.add(AgentSession(id=token_hash(raw), agent_id=agent.id, method=method, last_seen_at=now,
                                expires_at=now + SESSION_MAX_AGE))
    session.clear()
    session["sid"] = raw
    session.permanent = True
    audit.record(Actor.agent(agent), "agents.sign_in", "agent", agent.id, method=method)


def end_session() -> None:
    raw = session.pop("sid", None)
    if raw:
        db.session.execute(update(AgentSession).where(AgentSession.id == token_hash(raw)).values(revoked_at=utcnow()))
    session.clear()


def current_agent() -> Agent | None:
    """The agent of this request: the host's signed-in admin when a host app supplies the identity
    (then only the host's word counts), else Cloudflare Access if enabled, else the session cookie."""
    # Cached in the request's WSGI environ, not on g: an app context can outlive one request (tests, CLI).
    if "echo.agent" in request.environ:
        return request.environ["echo.agent"]
    if hosting.supplies_agents():
        agent = hosting.host_agent()
    else:
        agent = _agent_from_cf_access() or _agent_from_session()
    request.environ["echo.agent"] = agent
    return agent


def signed_in_agent() -> Agent:
    """The agent of a request that `require_agent()` already let through."""
    agent = current_agent()
    if agent is None:
        raise NotSignedIn("Your session timed out. Sign in again to continue.")
    return agent


def _agent_from_session() -> Agent | None:
    raw = session.get("sid")
    if not raw:
        return None
    record = db.session.get(AgentSession, token_hash(raw))
    now = utcnow()
    if (record is None or record.revoked_at is not None or record.expires_at <= now
            or now - record.last_seen_at > SESSION_IDLE or not record.agent.active):
        session.clear()
        return None
    if now - record.last_seen_at > timedelta(minutes=1):
        record.last_seen_at = now
    return record.agent


def require_agent(roles: tuple[str, ...] = ("ops", "superadmin")) -> Actor:
    agent = current_agent()
    if agent is None:
        raise NotSignedIn("Your session timed out. Sign in again to continue.")
    if agent.role not in roles:
        raise Forbidden("Your role may not do this.")
    return Actor.agent(agent)


# --- Cloudflare Access -----------------------------------------------------------------------

def _agent_from_cf_access() -> Agent | None:
    settings = current_app.config["ECHO"]
    if not settings.cf_access_team_domain:
        return None
    assertion = request.headers.get("Cf-Access-Jwt-Assertion")
    if not assertion:
        return None
    try:
        key = _jwks_client(settings.cf_access_certs_url).get_signing_key_from_jwt(assertion)
        claims = jwt.decode(assertion, key.key, algorithms=["RS256"], audience=settings.cf_access_aud,
                            issuer=f"https://{settings.cf_access_team_domain}")
    except jwt.PyJWTError:
        return None
    email = str(claims.get("email") or "").lower()
    return db.session.scalar(select(Agent).where(Agent.email == email, Agent.active)) if email else None


@cache
def _jwks_client(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(url, cache_keys=True, lifespan=3600)
