"""Postmark's delivery webhook: bounces and complaints stop outbound mail, deliveries are recorded."""

import pytest
from sqlalchemy import select

from echo.audit.models import AuditLog
from echo.customers.models import Customer
from echo.mail.models import OutboxMessage
from tests.conftest import WEBHOOK_AUTH
from tests.mailbuilder import inbound_payload, post_inbound


def hook(client, payload, auth=WEBHOOK_AUTH):
    return client.post("/tickets/webhooks/postmark", json=payload, auth=auth)


@pytest.fixture
def sent_reply(client, db, run_jobs, postmark, agent_token):
    _, headers = agent_token()
    post_inbound(client, inbound_payload(headers={"Auto-Submitted": "auto-replied"}))
    client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "Answer"})
    run_jobs()
    return headers, postmark.sent[-1]["MessageID"]


def bounced(db):
    db.session.expire_all()
    return db.session.scalar(select(Customer.email_bounced).where(Customer.email == "alice@example.com"))


@pytest.mark.parametrize("payload", [
    {"RecordType": "Bounce", "Type": "HardBounce", "TypeCode": 1, "Email": "alice@example.com"},
    {"RecordType": "SpamComplaint", "Type": "SpamComplaint", "TypeCode": 512, "Email": "Alice@Example.com"},
])
def test_hard_bounce_and_complaint_halt_outbound(client, db, sent_reply, run_jobs, postmark, payload):
    headers, message_id = sent_reply
    response = hook(client, {**payload, "MessageID": message_id, "Description": "The server was unable to deliver"})
    assert response.status_code == 200 and response.get_json()["status"] == "flagged"
    assert bounced(db) is True
    outbox = db.session.scalar(select(OutboxMessage).where(OutboxMessage.postmark_message_id == message_id))
    assert outbox.state == "failed"
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "customers.bounced")) is not None
    ticket = client.get("/api/v1/agent/tickets/TKT-0001", headers=headers).get_json()
    assert ticket["customer"]["email_bounced"] is True
    refused = client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "again"})
    assert refused.status_code == 409 and refused.get_json()["error"] == "recipient_bounced"
    post_inbound(client, inbound_payload(subject="a brand new question"))
    run_jobs()
    assert len(postmark.sent) == 1  # no acknowledgement to a bounced address either


@pytest.mark.parametrize("kind", ["AutoResponder", "SoftBounce", "Transient", "DnsError", "Blocked"])
def test_soft_and_automatic_bounces_do_not_flag(client, db, sent_reply, kind):
    _, message_id = sent_reply
    response = hook(client, {"RecordType": "Bounce", "Type": kind, "Email": "alice@example.com",
                             "MessageID": message_id})
    assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert bounced(db) is False


def test_delivery_marks_the_outbox_entry_delivered(client, db, sent_reply):
    headers, message_id = sent_reply
    delivery = {"RecordType": "Delivery", "MessageID": message_id, "Recipient": "alice@example.com"}
    assert hook(client, delivery).status_code == 200
    ticket = client.get("/api/v1/agent/tickets/TKT-0001", headers=headers).get_json()
    outbound = [t for t in ticket["threads"] if t["direction"] == "outbound"][0]
    assert outbound["outbox"]["state"] == "delivered" and outbound["outbox"]["delivered_at"]


def test_unknown_record_types_are_a_no_op(client, db, sent_reply):
    for payload in ({"RecordType": "Open", "MessageID": "x"}, {"RecordType": "Click"}, {"Something": "else"}):
        response = hook(client, payload)
        assert response.status_code == 200 and response.get_json()["status"] == "ignored"
    assert bounced(db) is False


def test_webhook_needs_credentials_and_json(client, db, sent_reply):
    _, message_id = sent_reply
    payload = {"RecordType": "Bounce", "Type": "HardBounce", "Email": "alice@example.com", "MessageID": message_id}
    assert hook(client, payload, auth=("postmark-test", "nope")).status_code == 401
    assert bounced(db) is False
    bad = client.post("/tickets/webhooks/postmark", data="{oops", content_type="application/json", auth=WEBHOOK_AUTH)
    assert bad.status_code == 400 and bad.get_json()["error"] == "invalid_json"
    assert hook(client, ["not", "an", "object"]).status_code == 422


def test_agent_clears_the_bounce_and_mail_flows_again(client, db, sent_reply, run_jobs, postmark, app):
    from echo.actors import SYSTEM
    from echo.outbound.service import clear_bounce

    headers, message_id = sent_reply
    hook(client, {"RecordType": "Bounce", "Type": "HardBounce", "Email": "alice@example.com", "MessageID": message_id})
    customer = db.session.scalar(select(Customer))
    clear_bounce(customer.id, actor=SYSTEM)
    db.session.commit()
    assert client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers,
                       json={"body_text": "Back"}).status_code == 201
    run_jobs()
    assert postmark.sent[-1]["TextBody"].startswith("Back")
