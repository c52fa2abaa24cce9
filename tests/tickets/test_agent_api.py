"""The agent API's contract: tokens, roles, filters, shapes and errors (never a 500)."""

import hashlib

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, update

from echo.agents.models import AgentToken
from tests.factories import AgentFactory
from tests.mailbuilder import inbound_payload, post_inbound


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nope", "Bearer echo_pat_guess", "Basic abc", "echo_pat_x"])
def test_missing_or_wrong_tokens_are_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/agent/tickets", headers=headers)
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"


def test_revoked_tokens_and_deactivated_agents_are_refused(client, db, agent_token, app):
    agent, headers = agent_token()
    assert client.get("/api/v1/agent/tickets", headers=headers).status_code == 200
    agent.active = False
    db.session.commit()
    assert client.get("/api/v1/agent/tickets", headers=headers).status_code == 401
    agent.active = True
    db.session.commit()
    result = CliRunner().invoke(app.cli, ["agents", "revoke-tokens", agent.email])
    assert result.exit_code == 0 and "Revoked 1" in result.output
    assert client.get("/api/v1/agent/tickets", headers=headers).status_code == 401


def test_token_command_prints_once_and_stores_only_a_hash(app, db):
    agent = AgentFactory(email="ops@raxx.app")
    result = CliRunner().invoke(app.cli, ["agents", "token", "ops@raxx.app"])
    assert result.exit_code == 0, result.output
    raw = result.stdout.strip().splitlines()[0]
    assert raw.startswith("echo_pat_") and len(raw) > 40
    stored = db.session.scalar(select(AgentToken).where(AgentToken.agent_id == agent.id))
    assert stored.token_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert raw not in str([getattr(stored, c.key) for c in AgentToken.__table__.columns])
    missing = CliRunner().invoke(app.cli, ["agents", "token", "nobody@raxx.app"])
    assert missing.exit_code != 0


def test_unknown_number_is_404(client, agent_token):
    _, headers = agent_token()
    for path in ("/tickets/TKT-9999", "/tickets/not-a-number", "/tickets/TKT-99999999999999999999"):
        response = client.get(f"/api/v1/agent{path}", headers=headers)
        assert response.status_code == 404 and response.get_json()["error"] == "not_found"


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/tickets/TKT-0001/replies", {}),
    ("POST", "/tickets/TKT-0001/replies", {"body_text": ""}),
    ("POST", "/tickets/TKT-0001/replies", {"body_text": 42}),
    ("POST", "/tickets/TKT-0001/replies", {"body_text": "hi", "cc": "x@y.z"}),
    ("POST", "/tickets/TKT-0001/replies", {"body_text": "hi", "status": "closed"}),
    ("POST", "/tickets/TKT-0001/notes", {"body_text": ""}),
    ("POST", "/tickets/TKT-0001/notes", {"text": "wrong field"}),
    ("PATCH", "/tickets/TKT-0001", {"status": "archived"}),
    ("PATCH", "/tickets/TKT-0001", {"tags": "not-a-list"}),
    ("PATCH", "/tickets/TKT-0001", {"tags": [1, 2]}),
    ("PATCH", "/tickets/TKT-0001", {"priority": "high"}),
    ("POST", "/tickets/TKT-0001/merge", {}),
    ("POST", "/tickets/TKT-0001/merge", {"into": 2}),
])
def test_bad_bodies_are_422_and_change_nothing(client, db, agent_token, method, path, body):
    _, headers = agent_token(role="superadmin")
    post_inbound(client, inbound_payload())
    before = client.get("/api/v1/agent/tickets/TKT-0001", headers=headers).get_json()
    response = client.open(f"/api/v1/agent{path}", method=method, headers=headers, json=body)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"] in ("invalid_request", "empty_body")
    assert client.get("/api/v1/agent/tickets/TKT-0001", headers=headers).get_json() == before


def test_non_json_bodies_are_4xx(client, agent_token):
    _, headers = agent_token()
    post_inbound(client, inbound_payload())
    assert client.post("/api/v1/agent/tickets/TKT-0001/notes", headers=headers, data="x",
                       content_type="text/plain").status_code == 415
    assert client.post("/api/v1/agent/tickets/TKT-0001/notes", headers=headers, data="{bad",
                       content_type="application/json").status_code == 400
    assert client.post("/api/v1/agent/tickets/TKT-0001/notes", headers=headers, json=["x"]).status_code == 422


def test_list_filters_and_pagination(client, db, agent_token):
    agent, headers = agent_token()
    for i in range(5):
        post_inbound(client, inbound_payload(sender=f"c{i}@example.com", subject=f"Invoice question {i}"))
    post_inbound(client, inbound_payload(sender="spam@example.com", headers={"X-Spam-Score": "9"}))
    client.patch("/api/v1/agent/tickets/TKT-0002", headers=headers, json={"status": "pending", "assignee": agent.email})

    def numbers(query):
        body = client.get(f"/api/v1/agent/tickets{query}", headers=headers).get_json()
        return [t["number"] for t in body["tickets"]], body["total"]

    assert numbers("")[1] == 5  # quarantined mail stays out of the inbox
    assert numbers("?quarantined=1") == (["TKT-0006"], 1)
    assert numbers("?status=pending") == (["TKT-0002"], 1)
    assert numbers("?assignee=me") == (["TKT-0002"], 1)
    assert numbers("?assignee=none")[1] == 4
    assert numbers("?customer=C3@example.com") == (["TKT-0004"], 1)
    assert numbers("?q=question 4") == (["TKT-0005"], 1)
    assert numbers("?q=100%_off")[1] == 0
    page1, total = numbers("?per_page=2&page=1")
    page3, _ = numbers("?per_page=2&page=3")
    assert total == 5 and len(page1) == 2 and len(page3) == 1
    assert page1[0] == "TKT-0002"  # newest activity first
    for bad in ("?page=0", "?per_page=1000", "?page=abc"):
        assert client.get(f"/api/v1/agent/tickets{bad}", headers=headers).status_code == 422


def test_ticket_shape_includes_threads_notes_and_flags(client, db, agent_token, run_jobs):
    _, headers = agent_token()
    post_inbound(client, inbound_payload(html="<p>Hello <b>there</b></p>", text="Hello there"))
    client.post("/api/v1/agent/tickets/TKT-0001/notes", headers=headers, json={"body_text": "internal"})
    body = client.get("/api/v1/agent/tickets/TKT-0001", headers=headers).get_json()
    inbound, note = body["threads"]
    assert inbound["direction"] == "inbound" and inbound["sender"]["email"] == "alice@example.com"
    assert inbound["body_html"] == "<p>Hello <b>there</b></p>" and inbound["is_auto_reply"] is False
    assert inbound["outbox"] is None and inbound["attachments"] == []
    assert note["direction"] == "internal" and note["body_text"] == "internal"
    assert body["customer"]["email"] == "alice@example.com" and body["status"] == "open"


def test_a_search_page_costs_a_few_statements_whatever_its_length(client, db, agent_token):
    """The token's last-use stamp must not expire the page's tickets (which would reload each one)."""
    from tests.statements import statements_during

    _, headers = agent_token()
    for i in range(12):
        post_inbound(client, inbound_payload(sender=f"c{i}@example.com", subject=f"Export broken {i}"))
    db.session.expire_all()
    responses = []
    statements = statements_during(db.engine, lambda: responses.append(
        client.get("/api/v1/agent/tickets?q=export&per_page=25", headers=headers)))
    assert responses[0].status_code == 200 and len(responses[0].get_json()["tickets"]) == 12
    assert len(statements) == 5, "\n\n".join(statements)  # token, its last-use stamp, search (2), the page
    stamped = db.session.scalar(select(AgentToken.last_used_at))
    assert stamped is not None  # the stamp still landed
    again = statements_during(db.engine, lambda: client.get("/api/v1/agent/tickets?q=export", headers=headers))
    assert len(again) == 4, "\n\n".join(again)  # stamped a moment ago: no second stamp


# --- conversations an agent starts ------------------------------------------------------------


def test_an_agent_starts_a_conversation_that_threads_like_any_other(client, db, agent_token, run_jobs, postmark):
    from echo.tickets.models import Thread, Ticket

    _, headers = agent_token()
    response = client.post("/api/v1/agent/tickets", headers=headers, json={
        "customer_email": " Dana@Example.com ", "customer_name": "Dana", "subject": "Your refund",
        "body_text": "Hello Dana, your refund went out today."})
    assert response.status_code == 201, response.get_json()
    started = response.get_json()
    assert started["number"] == "TKT-0001" and started["status"] == "pending"
    assert started["customer"]["email"] == "dana@example.com"
    run_jobs()
    [sent] = postmark.sent
    assert sent["To"] == "dana@example.com" and sent["Subject"] == "Your refund [TKT-0001]"  # no "Re:": it is the first
    ticket = db.session.scalar(select(Ticket))
    assert ticket.source == "console" and ticket.last_customer_reply_at is None  # nobody is waiting on it yet
    answer = post_inbound(client, inbound_payload(sender="dana@example.com", subject="Re: Your refund",
                                                  in_reply_to=f"<{sent['MessageID']}@mtasv.net>",
                                                  text="Thank you!")).get_json()
    assert answer["status"] == "appended" and answer["ticket_id"] == started["id"]
    assert db.session.scalar(select(func.count()).select_from(Thread)) == 2


@pytest.mark.parametrize("body, code", [
    ({"customer_email": "not an address", "subject": "Hi", "body_text": "Hello"}, 422),
    ({"customer_email": "dana@example.com", "subject": "", "body_text": "Hello"}, 422),
    ({"customer_email": "dana@example.com", "subject": "Hi", "body_text": "   "}, 422),
    ({"customer_email": "dana@example.com", "subject": "Hi"}, 422),
    ({"customer_email": "dana@example.com", "subject": "Hi", "body_text": "Hello", "cc": "x"}, 422),
])
def test_a_conversation_that_cannot_start_writes_nothing(client, db, agent_token, body, code):
    from echo.customers.models import Customer
    from echo.tickets.models import Ticket

    _, headers = agent_token()
    response = client.post("/api/v1/agent/tickets", headers=headers, json=body)
    assert response.status_code == code and response.get_json()["error"]
    db.session.rollback()  # the request is over; only what it committed is there
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert db.session.scalar(select(func.count()).select_from(Customer)) == 0


def test_a_conversation_with_a_bounced_address_is_refused_and_leaves_no_ticket(client, db, agent_token):
    from echo.customers.models import Customer
    from echo.tickets.models import Ticket

    _, headers = agent_token()
    post_inbound(client, inbound_payload(sender="gone@example.com"))
    db.session.execute(update(Customer).values(email_bounced=True))
    db.session.commit()
    response = client.post("/api/v1/agent/tickets", headers=headers, json={
        "customer_email": "gone@example.com", "subject": "Hi", "body_text": "Hello"})
    assert response.status_code == 409 and response.get_json()["error"] == "recipient_bounced"
    db.session.rollback()  # the request is over; only what it committed is there
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1  # only the one the customer opened
