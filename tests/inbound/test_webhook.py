"""The webhook's contract with Postmark: auth, validation, idempotency, errors that lose nothing."""

import json

import pytest
from sqlalchemy import func, select

from echo.audit.models import AuditLog
from echo.customers.models import Customer
from echo.tickets.models import Thread, Ticket
from tests.mailbuilder import inbound_payload, post_inbound


def count(db, model):
    return db.session.scalar(select(func.count()).select_from(model))


def test_new_mail_creates_customer_ticket_thread_and_audit(client, db):
    response = post_inbound(client, inbound_payload(subject="Cannot export my trades"))
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "created" and body["ticket_number"] == "TKT-0001"
    ticket = db.session.scalar(select(Ticket))
    assert ticket.subject == "Cannot export my trades" and ticket.status == "open"
    assert ticket.customer.email == "alice@example.com" and ticket.customer.display_name == "Alice Example"
    thread = db.session.scalar(select(Thread))
    assert thread.direction == "inbound" and thread.source == "email"
    assert "export button does nothing" in thread.body_text
    audit = db.session.scalar(select(AuditLog))
    assert audit.action == "tickets.inbound" and audit.target_id == str(ticket.id)
    assert audit.actor == f"customer:{ticket.customer_id}"
    assert "alice@example.com" not in json.dumps(audit.payload)


@pytest.mark.parametrize("auth", [None, ("postmark-test", "wrong"), ("someone", "webhook-test-password"), ("", "")])
def test_bad_credentials_are_refused_and_write_nothing(client, db, auth):
    response = client.post("/tickets/inbound", json=inbound_payload(), auth=auth)
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"
    assert count(db, Ticket) == 0 and count(db, Customer) == 0


@pytest.mark.parametrize("body, content_type, status, code", [
    ("not json at all", "application/json", 400, "invalid_json"),
    ("[1, 2, 3]", "application/json", 422, "invalid_request"),
    ('"a string"', "application/json", 422, "invalid_request"),
    ("{}", "application/json", 422, "invalid_request"),
    ('{"MessageID": "x", "From": ""}', "application/json", 422, "missing_sender"),
    ('{"MessageID": "x", "From": "not an address"}', "application/json", 422, "missing_sender"),
    ('{"MessageID": 12, "From": "a@b.com"}', "application/json", 422, "invalid_request"),
    ('{"MessageID": "x", "From": "a@b.com", "Headers": "nope"}', "application/json", 422, "invalid_request"),
    ('{"MessageID": "x", "From": "a@b.com", "Attachments": [{"Content": 5}]}', "application/json", 422,
     "invalid_request"),
    ('{"MessageID": "x", "From": "a@b.com", "TextBody": {"a": 1}}', "application/json", 422, "invalid_request"),
    ("From=a@b.com", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
])
def test_malformed_payloads_get_a_json_4xx_and_write_nothing(client, db, body, content_type, status, code):
    response = client.post("/tickets/inbound", data=body, content_type=content_type,
                           auth=("postmark-test", "webhook-test-password"))
    assert response.status_code == status
    assert response.get_json()["error"] == code
    assert count(db, Ticket) == 0 and count(db, Customer) == 0 and count(db, Thread) == 0


def test_null_fields_as_postmark_sometimes_sends_them_are_accepted(client, db):
    payload = inbound_payload()
    payload.update(Cc=None, CcFull=None, HtmlBody=None, StrippedTextReply=None, Attachments=None)
    assert post_inbound(client, payload).status_code == 200
    assert count(db, Thread) == 1


def test_same_postmark_delivery_twice_is_stored_once(client, db):
    payload = inbound_payload()
    first = post_inbound(client, payload).get_json()
    second = post_inbound(client, payload)
    assert second.status_code == 200
    assert second.get_json()["status"] == "duplicate"
    assert second.get_json()["ticket_id"] == first["ticket_id"]
    assert count(db, Thread) == 1 and count(db, Ticket) == 1 and count(db, AuditLog) == 1


def test_same_rfc_message_id_from_same_sender_is_a_duplicate(client, db):
    post_inbound(client, inbound_payload(message_id="<same@mail.example.com>"))
    again = post_inbound(client, inbound_payload(message_id="<same@mail.example.com>"))
    assert again.get_json()["status"] == "duplicate"
    assert count(db, Thread) == 1


def test_someone_else_reusing_a_message_id_is_not_swallowed_as_duplicate(client, db):
    post_inbound(client, inbound_payload(message_id="<same@mail.example.com>"))
    other = post_inbound(client, inbound_payload(sender="mallory@evil.test", message_id="<same@mail.example.com>"))
    assert other.get_json()["status"] == "created"
    assert count(db, Ticket) == 2


def test_sender_email_is_normalised_and_customer_reused(client, db):
    post_inbound(client, inbound_payload(sender="Alice@Example.COM", name="Alice"))
    post_inbound(client, inbound_payload(sender="alice@example.com", name=""))
    customers = db.session.scalars(select(Customer)).all()
    assert [c.email for c in customers] == ["alice@example.com"]
    assert customers[0].display_name == "Alice"  # an empty name keeps the known one


def test_sender_from_header_when_fromfull_missing(client, db):
    payload = inbound_payload()
    payload.pop("FromFull")
    payload["From"] = "Bob Builder <BOB@example.org>"
    assert post_inbound(client, payload).status_code == 200
    assert db.session.scalar(select(Customer.email)) == "bob@example.org"


def test_oversized_request_is_413_json(make_app, db):
    app = make_app(ECHO_MAX_INBOUND_BYTES="2000")
    response = post_inbound(app.test_client(), inbound_payload(text="x" * 5000))
    assert response.status_code == 413
    assert response.get_json()["error"] == "payload_too_large"


def test_database_outage_answers_5xx_so_postmark_retries(make_app):
    app = make_app(DATABASE_URL="postgresql://nobody@127.0.0.1:1/nothing")
    response = post_inbound(app.test_client(), inbound_payload())
    assert response.status_code == 503
    assert response.get_json()["error"] == "unavailable"


def test_concurrent_duplicate_deliveries_store_one_thread(app, db):
    """Postmark may deliver the same message twice at once; exactly one copy survives."""
    from concurrent.futures import ThreadPoolExecutor

    payload = inbound_payload()

    def deliver(_):
        with app.test_client() as c:
            return post_inbound(c, payload)

    with ThreadPoolExecutor(max_workers=6) as pool:
        responses = list(pool.map(deliver, range(6)))
    assert [r.status_code for r in responses] == [200] * 6
    assert sorted(r.get_json()["status"] for r in responses).count("created") == 1
    assert len({r.get_json()["ticket_id"] for r in responses}) == 1
    assert count(db, Thread) == 1 and count(db, Ticket) == 1 and count(db, Customer) == 1


@pytest.mark.parametrize("field", ["TextBody", "HtmlBody", "Subject", "StrippedTextReply", "FromName"])
def test_nul_characters_are_replaced_not_a_500(client, db, field):
    """PostgreSQL text cannot hold NUL; JSON can carry it as \\u0000. The mail is kept, NUL shown as U+FFFD."""
    payload = inbound_payload(text="hello", subject="Subject")
    payload[field] = "before\x00after"
    payload["FromFull"]["Name"] = "Al\x00ice"
    response = post_inbound(client, payload)
    assert response.status_code == 200, response.get_json()
    thread = db.session.scalar(select(Thread))
    stored = {"TextBody": thread.body_text, "HtmlBody": thread.body_html, "Subject": thread.subject,
              "StrippedTextReply": thread.body_text, "FromName": thread.sender_name}[field]
    assert "\x00" not in stored and thread.sender_name == "Al\ufffdice"
    if field in ("TextBody", "Subject"):
        assert "before\ufffdafter" in stored
