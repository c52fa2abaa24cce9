"""Investigate: the console files an internal ticket from a status snapshot."""

import pytest
from sqlalchemy import select

from echo.tickets.models import Thread, Ticket

SNAPSHOT = {
    "status": "degraded",
    "checks": [{"name": "postgres", "ok": True}, {"name": "queue-depth", "ok": False, "value": 1200}],
    "last_event": {"at": "2026-11-21T23:58:00Z", "actor": "deploy-bot", "action": "deploy.finished"},
}


def test_snapshot_becomes_an_internal_ticket_shown_readably(client, db, agent_token):
    agent, headers = agent_token()
    response = client.post("/tickets/from-snapshot", headers=headers, json={
        "deploy_id": "d-2026-11-21-7", "surface_id": "trades-api", "snapshot": SNAPSHOT, "note": "Tile went amber",
    })
    assert response.status_code == 201
    body = response.get_json()
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == body["number"]))
    assert ticket.customer_id is None and ticket.source == "snapshot" and "investigate" in ticket.tags
    assert ticket.subject == "Investigate trades-api on deploy d-2026-11-21-7"
    thread = db.session.scalar(select(Thread).where(Thread.ticket_id == ticket.id))
    assert thread.direction == "internal" and thread.authored_by == agent.id
    assert "Deploy: d-2026-11-21-7" in thread.body_text and "Surface: trades-api" in thread.body_text
    assert "  status: degraded" in thread.body_text and "      name: queue-depth" in thread.body_text
    assert "Tile went amber" in thread.body_text
    api = client.get(f"/api/v1/agent/tickets/{body['number']}", headers=headers).get_json()
    assert api["customer"] is None and api["threads"][0]["direction"] == "internal"


def test_snapshot_html_is_escaped(client, db, agent_token):
    _, headers = agent_token()
    client.post("/tickets/from-snapshot", headers=headers, json={
        "deploy_id": "d1", "surface_id": "s1",
        "snapshot": {"<script>alert(1)</script>": "<img src=x onerror=alert(1)>"},
    })
    thread = db.session.scalar(select(Thread))
    assert "<script>" not in thread.body_html and "<img" not in thread.body_html
    assert "&lt;script&gt;" in thread.body_html


@pytest.mark.parametrize("payload, status", [
    ({"surface_id": "s", "snapshot": {}}, 422),
    ({"deploy_id": "d", "surface_id": "s"}, 422),
    ({"deploy_id": "d", "surface_id": "s", "snapshot": "text"}, 422),
    ({"deploy_id": "", "surface_id": "s", "snapshot": {}}, 422),
    ({"deploy_id": 5, "surface_id": "s", "snapshot": {}}, 422),
    ({"kind": "crash_report", "deploy_id": "d", "surface_id": "s", "snapshot": {}}, 422),
    ({"deploy_id": "d", "surface_id": "s", "snapshot": {}, "extra": 1}, 422),
    ({"deploy_id": "d\u0000x", "surface_id": "s", "snapshot": {}}, 422),
    ({"deploy_id": "d", "surface_id": "s", "snapshot": {"blob": "x" * 300_000}}, 413),
])
def test_bad_reports_are_refused_and_write_nothing(client, db, agent_token, payload, status):
    _, headers = agent_token()
    response = client.post("/tickets/from-snapshot", headers=headers, json=payload)
    assert response.status_code == status and "error" in response.get_json()
    assert db.session.scalar(select(Ticket)) is None


def test_snapshot_needs_an_agent(client, db):
    response = client.post("/tickets/from-snapshot", json={"deploy_id": "d", "surface_id": "s", "snapshot": {}})
    assert response.status_code == 401
    assert db.session.scalar(select(Ticket)) is None


def test_console_session_can_file_a_snapshot_with_its_csrf_token(client, db):
    from tests.console.conftest import csrf_token
    from tests.factories import AgentFactory

    AgentFactory(email="demo@echo.local")
    client.post("/tickets/login/dev", data={"csrf_token": csrf_token(client)})
    payload = {"deploy_id": "d1", "surface_id": "s1", "snapshot": {"ok": False}}
    assert client.post("/tickets/from-snapshot", json=payload).status_code == 400  # no CSRF token
    token = csrf_token(client, "/tickets")
    response = client.post("/tickets/from-snapshot", json=payload, headers={"X-CSRFToken": token})
    assert response.status_code == 201 and response.get_json()["number"] == "TKT-0001"
