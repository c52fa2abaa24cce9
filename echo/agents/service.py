"""Agent use cases: agents, their API tokens, and the one-time invitations that enrol a passkey."""

from __future__ import annotations

import functools
import secrets
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy import func, select, update

from echo.actors import SYSTEM, Actor
from echo.agents.models import ROLES, Agent, AgentInvitation, AgentToken
from echo.audit import service as audit
from echo.db import affected_rows, spend_once, utcnow
from echo.errors import EchoError, InvalidPayload, NotFound
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


def zone_named(name: str | None) -> ZoneInfo:
    """The time zone called `name`, or UTC when there is none by that name."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@functools.cache
def time_zones() -> tuple[str, ...]:
    """Every zone an agent may choose, sorted."""
    return tuple(sorted(available_timezones() - {"localtime", "Factory"}))


def update_profile(agent: Agent, *, actor: Actor, display_name: str | None = None, time_zone: str | None = None,
                   signature: str | None = None, notify_new: str | None = None,
                   notify_email: bool | None = None) -> Agent:
    """An agent's own settings: their name, time zone, reply signature and notifications."""
    from echo.notifications.models import NEW_TICKET_CHOICES

    if notify_new is not None:
        if notify_new not in NEW_TICKET_CHOICES:
            raise InvalidPayload(f"New-ticket notifications are one of {', '.join(NEW_TICKET_CHOICES)}.",
                                 code="invalid_notify")
        agent.notify_new = notify_new
    if notify_email is not None:
        agent.notify_email = notify_email
    if display_name is not None:
        name = " ".join(display_name.split())[:200]
        if not name:
            raise InvalidPayload("A name needs some text.", code="invalid_name")
        agent.display_name = name
    if time_zone is not None:
        if time_zone not in time_zones():
            raise InvalidPayload(f"{time_zone!r} is not a time zone.", code="invalid_time_zone")
        agent.time_zone = time_zone
    if signature is not None:
        if len(signature) > MAX_SIGNATURE:
            raise InvalidPayload(f"A signature is at most {MAX_SIGNATURE} characters.", code="signature_too_long")
        agent.signature = signature.replace("\r\n", "\n").strip()
    audit.record(actor, "agents.profile", "agent", agent.id)
    return agent


MAX_SIGNATURE = 2000


def find_agent(email: str) -> Agent:
    agent = db.session.scalar(select(Agent).where(Agent.email == normalize_email(email)))
    if agent is None:
        raise UnknownAgent(f"No agent {email}.")
    return agent


def set_role(agent: Agent, role: str, *, actor: Actor) -> Agent:
    """Change an agent's role; the last active superadmin keeps theirs."""
    if role not in ROLES:
        raise InvalidPayload(f"Role must be one of {', '.join(ROLES)}.", code="invalid_role")
    if agent.role == role:
        return agent
    if agent.role == "superadmin":
        _keep_a_superadmin(agent)
    previous, agent.role = agent.role, role
    audit.record(actor, "agents.role", "agent", agent.id, old=previous, new=role)
    return agent


def deactivate(agent: Agent, *, actor: Actor) -> int:
    """Offboard an agent: they can no longer sign in, their sessions, tokens and invitations end now,
    and their open tickets go back to unassigned. Their messages and notes stay. Returns how many
    sessions and tokens were ended."""
    from echo.agents.models import AgentSession
    from echo.tickets.models import Ticket

    if not agent.active:
        return 0
    if agent.role == "superadmin":
        _keep_a_superadmin(agent)
    now = utcnow()
    agent.active, agent.deactivated_at = False, now
    ended = affected_rows(db.session.execute(
        update(AgentSession).where(AgentSession.agent_id == agent.id, AgentSession.revoked_at.is_(None))
        .values(revoked_at=now)))
    ended += affected_rows(db.session.execute(
        update(AgentToken).where(AgentToken.agent_id == agent.id, AgentToken.revoked_at.is_(None))
        .values(revoked_at=now)))
    db.session.execute(update(AgentInvitation).where(AgentInvitation.agent_id == agent.id,
                                                     AgentInvitation.used_at.is_(None)).values(expires_at=now))
    unassigned = affected_rows(db.session.execute(
        update(Ticket).where(Ticket.assigned_to == agent.id, Ticket.status.in_(("open", "pending")))
        .values(assigned_to=None, updated_at=now)))
    audit.record(actor, "agents.deactivated", "agent", agent.id, ended=ended, unassigned=unassigned)
    return ended


class LastSuperadmin(EchoError):
    status = 409
    code = "last_superadmin"


def _keep_a_superadmin(agent: Agent) -> None:
    others = db.session.scalar(select(func.count()).select_from(Agent).where(
        Agent.role == "superadmin", Agent.active, Agent.id != agent.id))
    if not others:
        raise LastSuperadmin("Echo needs at least one active superadmin; make someone else one first.")


def team() -> list[tuple[Agent, datetime | None]]:
    """Every agent, active first, with when they last signed in."""
    from echo.agents.models import AgentSession

    last = (select(AgentSession.agent_id, func.max(AgentSession.created_at).label("at"))
            .group_by(AgentSession.agent_id).subquery())
    rows = db.session.execute(
        select(Agent, last.c.at).outerjoin(last, last.c.agent_id == Agent.id)
        .order_by(Agent.active.desc(), Agent.display_name)).all()
    return [(agent, at) for agent, at in rows]
