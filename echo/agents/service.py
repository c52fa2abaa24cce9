"""Agent use cases."""

from __future__ import annotations

from sqlalchemy import select

from echo.agents.models import ROLES, Agent
from echo.errors import InvalidPayload
from echo.extensions import db
from echo.inbound.schemas import normalize_email


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
