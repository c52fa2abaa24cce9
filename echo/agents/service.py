"""Agent use cases: agents, their API tokens, and the one-time invitations that enrol a passkey."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import select, update

from echo.actors import SYSTEM
from echo.agents.models import ROLES, Agent, AgentInvitation, AgentToken
from echo.audit import service as audit
from echo.db import affected_rows, spend_once, utcnow
from echo.errors import InvalidPayload, NotFound
from echo.extensions import db
from echo.inbound.schemas import normalize_email
from echo.security import token_hash


def ensure_agent(email: str, display_name: str, role: str) -> Agent:
    """Create the agent, or reactivate it with the given role; idempotent."""
    address = normalize_email(email)
    if not address:
        raise InvalidPayload(f"{email!r} is not an email address.", code="invalid_email")
    if role not in ROLES:
        raise InvalidPayload(f"Role must be one of {', '.join(ROLES)}.", code="invalid_role")
    agent = db.session.scalar(select(Agent).where(Agent.email == address))
    if agent is None:
        agent = Agent(email=address, display_name=display_name, role=role)
        db.session.add(agent)
    else:
        agent.role, agent.active = role, True
    db.session.flush()
    return agent


TOKEN_PREFIX = "echo_pat_"


class UnknownAgent(NotFound):
    code = "unknown_agent"


def create_token(email: str, name: str = "") -> tuple[AgentToken, str]:
    """Mint a personal access token for an active agent; the plain token is returned once, never stored."""
    agent = db.session.scalar(select(Agent).where(Agent.email == normalize_email(email), Agent.active))
    if agent is None:
        raise UnknownAgent(f"No active agent {email}.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = AgentToken(agent_id=agent.id, token_hash=token_hash(raw), name=name[:200])
    db.session.add(token)
    db.session.flush()
    audit.record(SYSTEM, "agents.token_created", "agent", agent.id, token_id=str(token.id))
    return token, raw


def revoke_tokens(email: str) -> int:
    """Revoke every live token of an agent."""
    agent = db.session.scalar(select(Agent).where(Agent.email == normalize_email(email)))
    if agent is None:
        raise UnknownAgent(f"No agent {email}.")
    revoked = affected_rows(db.session.execute(
        update(AgentToken).where(AgentToken.agent_id == agent.id, AgentToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    ))
    audit.record(SYSTEM, "agents.tokens_revoked", "agent", agent.id, count=revoked)
    return revoked


def agent_for_token(raw: str) -> Agent | None:
    """The active agent a presented token belongs to, or None (unknown, revoked, or agent deactivated)."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    token = db.session.scalar(
        select(AgentToken).where(AgentToken.token_hash == token_hash(raw), AgentToken.revoked_at.is_(None))
    )
    if token is None or not token.agent.active:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=5):
        token.last_used_at = now
    return token.agent


INVITATION_TTL = timedelta(days=3)


class InvitationInvalid(NotFound):
    code = "invitation_invalid"


def create_invitation(agent: Agent) -> str:
    """A one-time enrolment token for `agent` (the plain token is returned once)."""
    raw = secrets.token_urlsafe(32)
    db.session.add(AgentInvitation(agent_id=agent.id, token_hash=token_hash(raw), expires_at=utcnow() + INVITATION_TTL))
    audit.record(SYSTEM, "agents.invited", "agent", agent.id)
    return raw


def find_invitation(raw: str) -> AgentInvitation:
    """The live invitation a presented token names; unknown, spent, expired or deactivated all look the same."""
    invitation = db.session.scalar(select(AgentInvitation).where(AgentInvitation.token_hash == token_hash(raw or "")))
    if (invitation is None or invitation.used_at is not None or invitation.expires_at <= utcnow()
            or not invitation.agent.active):
        raise InvitationInvalid("This invitation link is no longer valid. Ask for a new one.")
    return invitation


def use_invitation(invitation: AgentInvitation) -> None:
    """Spend the invitation; a second use of the same link is refused even under a race."""
    if not spend_once(AgentInvitation, invitation.id):
        raise InvitationInvalid("This invitation link is no longer valid. Ask for a new one.")
