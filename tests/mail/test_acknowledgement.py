"""The acknowledgement email leaves through the worker and Postmark's API, threaded and loop-safe."""

import uuid

from sqlalchemy import select

from echo.mail import reply_token
from echo.mail.models import OutboxMessage
from echo.tickets.models import MessageId
from tests.conftest import SECRET
from tests.mailbuilder import inbound_payload, post_inbound


def test_new_ticket_acknowledged_by_worker_through_postmark(client, db, run_jobs, postmark):
    result = post_inbound(client, inbound_payload(
        subject="Cannot export my trades", message_id="<CAF=abc@mail.gmail.com>",
    )).get_json()
    assert postmark.sent == []  # nothing leaves in the webhook's request
    run_jobs()
    assert len(postmark.sent) == 1
    email = postmark.sent[0]
    number = result["ticket_number"]
    assert email["To"] == "alice@example.com"
    assert email["From"] == '"Raxx Support" <support@raxx.app>'
    assert email["Subject"] == f"Re: Cannot export my trades [{number}]"
    headers = {h["Name"]: h["Value"] for h in email["Headers"]}
    assert headers["Auto-Submitted"] == "auto-replied"
    assert headers["In-Reply-To"] == "<CAF=abc@mail.gmail.com>"
    token = email["ReplyTo"].split("+", 1)[1].split("@", 1)[0]
    assert email["ReplyTo"].endswith("@raxx.app")
    assert reply_token.verify(SECRET, token) == uuid.UUID(result["ticket_id"])
    assert number in email["TextBody"] and number in email["HtmlBody"]
    assert f"https://support.raxx.app/tickets/{result['ticket_id']}" in email["TextBody"]
    assert email["Metadata"]["echo_ticket_id"] == result["ticket_id"]

    outbox = db.session.scalar(select(OutboxMessage))
    assert outbox.state == "sent" and outbox.postmark_message_id == email["MessageID"]
    stored = db.session.get(MessageId, f"{email['MessageID']}@mtasv.net")
    assert stored is not None and stored.origin == "outbound"


def test_customer_reply_to_the_acknowledgement_threads(client, db, run_jobs, postmark):
    first = post_inbound(client, inbound_payload()).get_json()
    run_jobs()
    postmark_id = postmark.sent[0]["MessageID"]
    reply = post_inbound(client, inbound_payload(in_reply_to=f"<{postmark_id}@mtasv.net>")).get_json()
    assert reply["status"] == "appended" and reply["ticket_id"] == first["ticket_id"]


def test_delivery_job_is_idempotent(client, db, run_jobs, postmark):
    from echo.mail.tasks import deliver

    post_inbound(client, inbound_payload())
    run_jobs()
    outbox = db.session.scalar(select(OutboxMessage))
    assert deliver(str(outbox.id)) == "sent"
    assert len(postmark.sent) == 1


def test_transient_failure_is_retried_later_and_permanent_fails_at_once(client, db, run_jobs, postmark):
    postmark.fail_next(status=500)
    post_inbound(client, inbound_payload(subject="one"))
    run_jobs()
    outbox = db.session.scalar(select(OutboxMessage))
    assert outbox.state == "queued" and outbox.attempts == 1 and postmark.sent == []
    assert outbox.next_attempt_at > outbox.created_at

    postmark.fail_next(status=422, error_code=406, message="Inactive recipient")
    post_inbound(client, inbound_payload(sender="gone@example.com", subject="two"))
    run_jobs()
    failed = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to_email == "gone@example.com"))
    assert failed.state == "failed" and "406" in failed.last_error
