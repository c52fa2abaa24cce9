"""Console fixtures: a signed-in browser-like client with its CSRF token."""

import re

import pytest
from flask import g

from tests.factories import AgentFactory

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')


def csrf_token(client, path="/tickets/login") -> str:
    """The token a page carries now. Flask-WTF memoises it on `g`, which the test's long-lived app
    context shares across requests; a real request starts with a fresh `g`, so drop the memo first."""
    g.pop("csrf_token", None)
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


@pytest.fixture
def signed_in(client, db):
    """Sign in as the demo agent through the development sign-in; returns (client, csrf token, agent)."""

    def sign_in(role="superadmin"):
        agent = AgentFactory(email="demo@echo.local", display_name="Demo Agent", role=role)
        response = client.post("/tickets/login/dev", data={"csrf_token": csrf_token(client)})
        assert response.status_code == 302
        return client, csrf_token(client, "/tickets"), agent

    return sign_in


@pytest.fixture
def agent_client(app, db):
    """A console client signed in as any agent (a session row and its cookie, as a passkey sign-in makes)."""

    def make(agent):
        import secrets
        from datetime import timedelta

        from echo.agents.models import AgentSession
        from echo.db import utcnow
        from echo.security import token_hash

        raw, now = secrets.token_urlsafe(32), utcnow()
        db.session.add(AgentSession(id=token_hash(raw), agent_id=agent.id, method="passkey", last_seen_at=now,
                                    expires_at=now + timedelta(hours=12)))
        db.session.commit()
        client = app.test_client()
        with client.session_transaction() as session:
            session["sid"] = raw
        return client, csrf_token(client, "/tickets")

    return make
