"""The portal API contract: auth, shapes, status mapping, privacy, errors."""

import uuid

import pytest
from sqlalchemy import select

from echo.audit.models import SupportAuditLog
from echo.mail.models import OutboxMessage
from echo.tickets.models import Ticket
from tests.factories import AgentFactory
from tests.mailbuilder import attachment, inbound_payload, post_inbound
from tests.portal.conftest import bearer, token_for

UNAVAILABLE = {"error": "not_found", "message": "This ticket is no longer available."}


def ticket_id(client, **payload):
    return post_inbound(client, inbound_payload(**payload)).get_json()["ticket_id"]


def test_health_needs_no_token(client):
    assert client.get("/api/v1/support/health").get_json() == {"status": "ok"}


@pytest.mark.parametrize("header", [
    None, "Bearer", "Bearer not-a-jwt", "Basic abc",
    "Bearer " + token_for("alice@example.com", key="wrong-key-0123456789-0123456789-0123456789"),
    "Bearer " + token_for("alice@example.com", ttl=-60),
    "Bearer " + token_for("alice@example.com").rsplit(".", 1)[0] + ".",
])
def test_bad_tokens_are_401(client, header):
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/support/tickets", headers=headers)
    assert response.status_code == 401 and response.get_json()["error"] in ("unauthorized", "session_expired")


def test_alg_none_tokens_are_refused(client):
    import base64
    import json

    def b64(data):
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {"sub": "x", "customer_email": "alice@example.com", "sid": "s", "iat": 1, "exp": 9999999999}
    forged = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert client.get("/api/v1/support/tickets", headers={"Authorization": f"Bearer {forged}"}).status_code == 401


def test_list_and_detail_shapes_and_status_mapping(client, db):
    tid = ticket_id(client, subject="Cannot export", html="<p>Export <b>broken</b></p>", text="Export broken")
    response = client.get("/api/v1/support/tickets", headers=bearer("Alice@Example.com"))
    body = response.get_json()
    assert body["total"] == 1
    summary = body["tickets"][0]
    assert set(summary) == {"id", "number", "subject", "status", "created_at", "updated_at", "unread"}
    assert summary["id"] == tid and summary["status"] == "open" and summary["unread"] is False
    detail = client.get(f"/api/v1/support/tickets/{tid}", headers=bearer("alice@example.com")).get_json()
    assert set(detail) == {"id", "number", "subject", "status", "created_at", "updated_at", "threads"}
    assert detail["threads"][0] == {"id": detail["threads"][0]["id"], "from": "customer", "body": "Export broken",
                                    "sent_at": detail["threads"][0]["sent_at"], "attachments": []}
    for status, shown in (("pending", "waiting_for_you"), ("resolved", "resolved"), ("closed", "resolved")):
        db.session.get(Ticket, uuid.UUID(tid)).status = status
        db.session.commit()
        got = client.get(f"/api/v1/support/tickets/{tid}", headers=bearer("alice@example.com")).get_json()
        assert got["status"] == shown


def test_other_customers_ticket_and_missing_ticket_look_identical(client, db):
    tid = ticket_id(client, sender="bob@example.com")
    theirs = client.get(f"/api/v1/support/tickets/{tid}", headers=bearer("alice@example.com"))
    missing = client.get(f"/api/v1/support/tickets/{uuid.uuid4()}", headers=bearer("alice@example.com"))
    garbage = client.get("/api/v1/support/tickets/TKT-0001", headers=bearer("alice@example.com"))
    for response in (theirs, missing, garbage):
        assert response.status_code == 403 and response.get_json() == UNAVAILABLE
    rows = db.session.scalars(select(SupportAuditLog).order_by(SupportAuditLog.id)).all()
    assert [r.error_code for r in rows] == ["privacy_violation", "not_found", "not_found"]
    assert all(r.success is False and r.action == "ticket.read" for r in rows)
    for path, method in ((f"/api/v1/support/tickets/{tid}/replies", "POST"),
                         (f"/api/v1/support/tickets/{tid}/resolve", "PUT")):
        response = client.open(path, method=method, headers=bearer("alice@example.com"), json={"body": "hi"})
        assert response.status_code == 403 and response.get_json() == UNAVAILABLE
    assert db.session.get(Ticket, uuid.UUID(tid)).status == "open"


def test_email_in_the_request_is_ignored(client, db):
    tid = ticket_id(client, sender="bob@example.com")
    response = client.get(f"/api/v1/support/tickets/{tid}?customer_email=bob@example.com",
                          headers={**bearer("alice@example.com"), "X-Customer-Email": "bob@example.com"})
    assert response.status_code == 403


def test_notes_and_operator_fields_never_appear(client, db, agent_token):
    _, headers = agent_token()
    tid = ticket_id(client)
    client.post("/api/v1/agent/tickets/TKT-0001/notes", headers=headers, json={"body_text": "SECRET internal note"})
    client.patch("/api/v1/agent/tickets/TKT-0001", headers=headers, json={"tags": ["vip"], "category": "billing"})
    client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "Our answer"})
    raw = client.get(f"/api/v1/support/tickets/{tid}", headers=bearer("alice@example.com")).get_data(as_text=True)
    for secret in ("SECRET internal note", "vip", "billing", "assign", "tags", "category", "postmark", "s3_key",
                   "spam", "agent", "customer_id"):
        assert secret not in raw
    detail = client.get(f"/api/v1/support/tickets/{tid}", headers=bearer("alice@example.com")).get_json()
    assert [t["from"] for t in detail["threads"]] == ["customer", "support"]


def test_unread_turns_on_after_support_replies_and_off_after_reading(client, db, agent_token):
    _, headers = agent_token()
    tid = ticket_id(client)
    def listed():
        return client.get("/api/v1/support/tickets", headers=bearer("alice@example.com")).get_json()["tickets"][0]
    assert listed()["unread"] is False
    client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "Answer"})
    assert listed()["unread"] is True
    client.get(f"/api/v1/support/tickets/{tid}", headers=bearer("alice@example.com"))
    assert listed()["unread"] is False


def test_create_reply_resolve(client, db, run_jobs, postmark):
    created = client.post("/api/v1/support/tickets", headers=bearer("new@example.com"),
                          json={"subject": "Billing question", "body": "Why two charges?", "category": "billing"})
    assert created.status_code == 201
    body = created.get_json()
    assert set(body) == {"id", "number", "subject", "status", "created_at"} and body["status"] == "open"
    run_jobs()
    assert [m["To"] for m in postmark.sent] == ["new@example.com"]  # acknowledged like email
    reply = client.post(f"/api/v1/support/tickets/{body['id']}/replies", headers=bearer("new@example.com"),
                        json={"body": "Any news?"})
    assert reply.status_code == 201 and set(reply.get_json()) == {"thread_id", "sent_at"}
    resolved = client.put(f"/api/v1/support/tickets/{body['id']}/resolve", headers=bearer("new@example.com"))
    assert resolved.get_json() == {"id": body["id"], "status": "resolved"}
    ticket = db.session.get(Ticket, uuid.UUID(body["id"]))
    ticket.status = "closed"
    db.session.commit()
    closed = client.post(f"/api/v1/support/tickets/{body['id']}/replies", headers=bearer("new@example.com"),
                         json={"body": "again"})
    assert closed.status_code == 409 and closed.get_json()["error"] == "ticket_closed"


@pytest.mark.parametrize("payload, status", [
    ({"subject": "x"}, 422), ({"body": "x"}, 422), ({"subject": "", "body": "x"}, 422),
    ({"subject": "   ", "body": "x"}, 422), ({"subject": 5, "body": "x"}, 422),
    ({"subject": "x", "body": "y", "category": "other"}, 422), ({"subject": "x", "body": "y", "email": "b@x.y"}, 422),
    ({"subject": "x" * 201, "body": "y"}, 422), ({"subject": "x", "body": "y" * 20_001}, 422), ([], 422),
])
def test_create_refuses_bad_bodies(client, db, payload, status):
    response = client.post("/api/v1/support/tickets", headers=bearer("alice@example.com"), json=payload)
    assert response.status_code == status and "error" in response.get_json()
    assert db.session.scalar(select(Ticket)) is None


def test_nul_characters_are_a_clear_422_not_a_500(client, db):
    response = client.post("/api/v1/support/tickets", headers=bearer("alice@example.com"),
                           json={"subject": "Bad\x00subject", "body": "body"})
    assert response.status_code == 422 and response.get_json()["error"] == "invalid_characters"
    assert db.session.scalar(select(Ticket)) is None


def test_oversized_request_is_413(make_app):
    app = make_app(ECHO_MAX_INBOUND_BYTES="5000")
    with app.app_context():
        response = app.test_client().post("/api/v1/support/tickets", headers=bearer("alice@example.com"),
                                          json={"subject": "x", "body": "y" * 10_000})
        assert response.status_code == 413 and response.get_json()["error"] == "payload_too_large"


def test_attachment_download_is_streamed_safely(client, db):
    tid = ticket_id(client, attachments=[attachment("page.html", b"<script>alert(1)</script>", "text/html")])
    detail = client.get(f"/api/v1/support/tickets/{tid}", headers=bearer("alice@example.com")).get_json()
    file = detail["threads"][0]["attachments"][0]
    assert set(file) == {"id", "filename", "size_bytes"}
    response = client.get(f"/api/v1/support/tickets/{tid}/attachments/{file['id']}",
                          headers=bearer("alice@example.com"))
    assert response.status_code == 200 and response.data == b"<script>alert(1)</script>"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff" and response.headers["Content-Length"] == "25"
    other = client.get(f"/api/v1/support/tickets/{tid}/attachments/{file['id']}", headers=bearer("bob@example.com"))
    assert other.status_code == 403 and other.get_json() == UNAVAILABLE


def test_flag_off_answers_503_everywhere(make_app):
    app = make_app(FLAG_SUPPORT_PORTAL_API="0")
    with app.app_context():
        client = app.test_client()
        for path in ("/api/v1/support/health", "/api/v1/support/tickets", "/api/v1/support/session"):
            response = client.get(path, headers=bearer("alice@example.com"))
            assert response.status_code == 503 and response.get_json()["error"] == "maintenance"


def test_cors_only_for_configured_origins(make_app):
    app = make_app(ECHO_CORS_ORIGINS="https://support.raxx.app")
    with app.app_context():
        client = app.test_client()
        good = client.options("/api/v1/support/tickets", headers={
            "Origin": "https://support.raxx.app", "Access-Control-Request-Method": "GET"})
        assert good.headers.get("Access-Control-Allow-Origin") == "https://support.raxx.app"
        bad = client.options("/api/v1/support/tickets", headers={
            "Origin": "https://evil.test", "Access-Control-Request-Method": "GET"})
        assert "Access-Control-Allow-Origin" not in bad.headers


def test_session_endpoint(client):
    ticket_id(client)
    assert client.get("/api/v1/support/session", headers=bearer("alice@example.com")).get_json()["linked"] is True
    unknown = client.get("/api/v1/support/session", headers=bearer("nobody@example.com")).get_json()
    assert unknown == {"customer_id": None, "linked": False}


def test_reply_to_an_assigned_ticket_is_kept_and_tells_the_assignee(client, db, run_jobs, postmark, agent_token):
    """The assignee's notification names the customer's new message: both rows land, in either flush order."""
    _, headers = agent_token()
    AgentFactory(email="sam@raxx.app")
    tid = ticket_id(client, message_id="<assigned@mail.example.com>")
    assert client.patch("/api/v1/agent/tickets/TKT-0001", headers=headers,
                        json={"assignee": "sam@raxx.app", "status": "pending"}).status_code == 200
    run_jobs()
    postmark.reset()
    reply = client.post(f"/api/v1/support/tickets/{tid}/replies", headers=bearer("alice@example.com"),
                        json={"body": "Here is the screenshot you asked for"})
    assert reply.status_code == 201, reply.get_json()
    ticket = db.session.get(Ticket, uuid.UUID(tid))
    assert ticket.status == "open" and ticket.last_customer_reply_at is not None
    [thread] = [t for t in ticket.threads if t.source == "portal"]
    assert thread.body_text == "Here is the screenshot you asked for"
    notice = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "customer_reply"))
    assert notice.thread_id == thread.id and notice.to_email == "sam@raxx.app"
    run_jobs()
    assert [m["To"] for m in postmark.sent] == ["sam@raxx.app"] and "replied" in postmark.sent[0]["Subject"]
