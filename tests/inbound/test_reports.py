"""Machine-written mail is recognised and never acknowledged; a bounce of Echo's own mail is recorded
against the outbox row it bounces (issue 12, "Automated mail recognised")."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from echo.inbound.eml import message_to_postmark
from echo.mail.models import OutboxMessage
from echo.tickets.models import Thread, Ticket
from tests.mailbuilder import inbound_payload, post_inbound


def acknowledgements(db) -> int:
    return db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.kind == "acknowledgement"))


def sent_reply(client, db, run_jobs, agent_token, postmark) -> tuple[dict, OutboxMessage, str]:
    """A ticket with an agent reply Postmark accepted: (the first mail's result, the reply's row, its Message-ID)."""
    _, headers = agent_token()
    first = post_inbound(client, inbound_payload(sender="carol@example.net")).get_json()
    client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "Try again, please."})
    run_jobs()
    reply = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    assert reply.state == "sent"
    return first, reply, f"<{postmark.sent[-1]['MessageID']}@mtasv.net>"


def dsn(original_id: str, *, action: str = "failed", status: str = "5.1.1") -> bytes:
    """A delivery status notification as Postfix writes one (RFC 3464), with the original's headers."""
    return (
        "Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        "To: support@raxx.app\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@mx.example.net>\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "<carol@example.net>: host mx.example.net said: 550 5.1.1 user unknown\r\n\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\nFinal-Recipient: rfc822; carol@example.net\r\n"
        f"Action: {action}\r\nStatus: {status}\r\nDiagnostic-Code: smtp; 550 {status} user unknown\r\n\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "From: Raxx Support <support@raxx.app>\r\nTo: carol@example.net\r\n"
        f"Subject: Re: Cannot export my trades [TKT-0001]\r\nMessage-ID: {original_id}\r\n\r\n"
        "--B--\r\n"
    ).encode()


def test_a_bounce_of_an_agent_reply_threads_onto_its_ticket_and_marks_the_reply_failed(
        client, db, run_jobs, agent_token, postmark):
    first, reply, message_id = sent_reply(client, db, run_jobs, agent_token, postmark)
    result = post_inbound(client, message_to_postmark(dsn(message_id), "support@raxx.app"))
    assert result.status_code == 200
    body = result.get_json()
    assert body["status"] == "appended" and body["ticket_id"] == first["ticket_id"]
    thread = db.session.get(Thread, uuid.UUID(body["thread_id"]))
    assert thread.is_auto_reply
    db.session.refresh(reply)
    assert reply.state == "failed" and "5.1.1" in reply.last_error and "user unknown" in reply.last_error
    ticket = db.session.get(Ticket, uuid.UUID(first["ticket_id"]))
    assert ticket.status == "pending"  # a machine's report reopens nothing
    assert acknowledgements(db) == 1  # only the first mail's


def test_a_delayed_delivery_report_threads_but_fails_nothing(client, db, run_jobs, agent_token, postmark):
    _, reply, message_id = sent_reply(client, db, run_jobs, agent_token, postmark)
    post_inbound(client, message_to_postmark(dsn(message_id, action="delayed", status="4.4.1"), "support@raxx.app"))
    db.session.refresh(reply)
    assert reply.state == "sent"


def test_a_bounce_naming_no_mail_of_ours_is_filed_unacknowledged(client, db):
    response = post_inbound(client, message_to_postmark(dsn("<someone-else@elsewhere.test>"), "support@raxx.app"))
    assert response.status_code == 200 and response.get_json()["status"] == "created"
    assert acknowledgements(db) == 0


def report_payload(content_type: str, part_type: str, subject: str, sender: str = "reports@isp.example") -> dict:
    import base64

    payload = inbound_payload(sender=sender, subject=subject, text="This is a report.")
    payload["Headers"].append({"Name": "Content-Type", "Value": content_type})
    payload["Attachments"] = [{"Name": "report", "ContentType": part_type, "ContentLength": 20,
                               "Content": base64.b64encode(b"Feedback-Type: abuse\r\n").decode()}]
    return payload


@pytest.mark.parametrize("payload", [
    report_payload("multipart/report; report-type=feedback-report", "message/feedback-report", "Abuse report"),
    report_payload("multipart/report; report-type=disposition-notification", "message/disposition-notification",
                   "Read: Cannot export my trades"),
    report_payload("multipart/report", "message/delivery-status", "Delivery Status Notification (Failure)"),
    report_payload("multipart/mixed", "application/gzip", "Report domain: raxx.app Submitter: isp.example"),
], ids=["spam complaint", "read receipt", "bounce", "dmarc aggregate"])
def test_reports_are_automated_and_never_acknowledged(client, db, payload):
    result = post_inbound(client, payload).get_json()
    assert db.session.get(Thread, uuid.UUID(result["thread_id"])).is_auto_reply
    assert acknowledgements(db) == 0


@pytest.mark.parametrize("subject", [
    "Automatic reply: Cannot export my trades", "Out of Office", "Out of Office: back on Monday",
    "Abwesenheitsnotiz: Ihre Anfrage", "Automatische Antwort: Rechnung", "Réponse automatique : facture",
    "Respuesta automática: pedido", "Autosvar: faktura", "Автоматический ответ: заказ", "自动回复: 订单",
    "Undeliverable: Re: your ticket", "Auto-Reply: thanks",
])
def test_auto_reply_subjects_are_automated(client, db, subject):
    result = post_inbound(client, inbound_payload(subject=subject)).get_json()
    assert db.session.get(Thread, uuid.UUID(result["thread_id"])).is_auto_reply
    assert acknowledgements(db) == 0


def test_the_null_sender_is_automated(client, db):
    post_inbound(client, inbound_payload(headers={"Return-Path": "<>"}))
    assert acknowledgements(db) == 0


@pytest.mark.parametrize("subject", ["Out of office question about billing", "Automatic replies are not working",
                                     "My order was undeliverable twice", "Read receipts in the app"])
def test_people_writing_about_such_things_are_answered(client, db, subject):
    post_inbound(client, inbound_payload(subject=subject))
    assert acknowledgements(db) == 1
