"""Echo inside a host Flask app: which requests are Echo's, and the agent identity a host supplies.

Standalone (`create_app`) every request is Echo's. Mounted (`init_app(host_app)`) only the requests
routed to Echo's blueprints are: Echo's headers, NUL refusal, CSRF, rate limits and error answers
stay off the host's own pages, and the host may say who the acting agent is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from flask import current_app, has_request_context, redirect, render_template, request

ECHO_ROLES = ("ops", "superadmin")
DEFAULT_ROLES = {role: role for role in ECHO_ROLES}  # a host that already speaks Echo's roles


@dataclass(frozen=True)
class HostAdmin:
    """The host's signed-in admin, as the host's agent loader returns it (a 3-tuple works too)."""

    email: str
    display_name: str
    role: str  # the host's own role name; Mount.roles maps it to an Echo role


AgentLoader = Callable[[], "HostAdmin | tuple[str, str, str] | None"]


@dataclass(frozen=True)
class Mount:
    """How Echo is mounted on this app (app.extensions["echo"])."""

    hosted: bool
    blueprints: frozenset[str]
    agent_loader: AgentLoader | None = None
    roles: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    login_url: str | None = None

    def __post_init__(self):
        wrong = sorted(f"{host}→{echo}" for host, echo in self.roles.items() if echo not in ECHO_ROLES)
        if wrong:
            raise ValueError(f"roles must map host roles to {' or '.join(ECHO_ROLES)} (got {', '.join(wrong)})")


def mount() -> Mount | None:
    return current_app.extensions.get("echo")


def is_echo_request() -> bool:
    """Whether Echo's request rules apply: always standalone; in a host, on Echo's blueprints only."""
    state = mount()
    if state is None or not state.hosted:
        return True
    return has_request_context() and request.blueprint in state.blueprints


def supplies_agents() -> bool:
    """Whether the host says who the agent is (then Echo's own sign-in is not consulted)."""
    state = mount()
    return state is not None and state.agent_loader is not None


def host_agent():
    """The agent row for the host's signed-in admin: found by email, created on first visit, its role
    and name kept in step with the host. None when the host reports nobody; 403 for a host role that
    maps to no Echo role and for an agent deactivated in Echo (deactivation outlives the host's say)."""
    from sqlalchemy import select
    from sqlalchemy.dialects.postgresql import insert

    from echo.agents.models import Agent
    from echo.errors import Forbidden
    from echo.extensions import db
    from echo.inbound.schemas import normalize_email

    state = mount()
    admin = state.agent_loader()
    if admin is None:
        return None
    email, display_name, host_role = admin if isinstance(admin, tuple) else (admin.email, admin.display_name,
                                                                              admin.role)
    role = state.roles.get(host_role)
    address = normalize_email(email or "")
    if role is None or not address:
        raise Forbidden("Your account may not use the help desk.", code="not_an_agent")
    name = (display_name or address)[:200]
    agent = db.session.scalar(select(Agent).where(Agent.email == address))
    if agent is None:
        # ON CONFLICT: two first requests of the same admin at once must not collide on the unique email.
        db.session.execute(insert(Agent).values(email=address, display_name=name, role=role)
                           .on_conflict_do_nothing(index_elements=[Agent.email]))
        agent = db.session.scalar(select(Agent).where(Agent.email == address))
    if not agent.active:
        raise Forbidden("Your help desk access is switched off. Ask a superadmin to restore it.",
                        code="agent_deactivated")
    if (agent.role, agent.display_name) != (role, name):
        agent.role, agent.display_name = role, name
    return agent


def host_sign_in():
    """Echo's sign-in page when the host owns sign-in: off to the host's, or a plain refusal."""
    state = mount()
    if state.login_url:
        return redirect(state.login_url)
    return render_template("console/message.html", title="Sign in first",
                           message="Sign in to the console you came from, then open the help desk again."), 401
