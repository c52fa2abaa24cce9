"""Undo send: a reply from the console waits its undo window in the outbox and can be taken back until it
leaves; a customer's replies leave in the order they were written, even when an earlier one is retried."""

from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from echo.db import utcnow
from echo.mail import tasks
from echo.mail.models import OutboxMessage
from echo.tickets.models import MessageId, Thread, Ticket
from tests.factories import AgentFactory
from tests.mailbuilder import inbound_payload, post_inbound


@pytest.fixture
def held(app):
    """The console holds replies five seconds, as it does by default outside the tests."""
    settings = app.config["ECHO"]
    app.config["ECHO"] = settings.with_overrides(undo_send_seconds=5)
    yield 5
    app.config["ECHO"] = settings


def open_ticket(client) -> str:
    assert post_inbound(client, inbound_payload(sender="ada@example.com", subject="Export fails")).status_code == 200
    return "TKT-0001"


def reply(client, token, number, text, status="pending"):
    return client.post(f"/tickets/{number}/reply", data={"csrf_token": token, "body": text, "status": status},
                       headers={"HX-Request": "true"})


def replies_sent(postmark) -> list[str]:
    return [m["TextBody"].split("\n")[0] for m in postmark.sent if m["To"].endswith("ada@example.com")
            and "Export fails" in m["Subject"] and m["Subject"].startswith("Re:")]


def test_a_held_reply_is_not_sent_until_its_window_ends(signed_in, db, run_jobs, call_task, postmark, held):
    client, token, _ = signed_in()
    number = open_ticket(client)
    run_jobs()
    postmark.sent.clear()
    page = reply(client, token, number, "Fixed on our side.").get_data(as_text=True)
    assert "Reply sends in 5 seconds." in page and "Undo" in page
    run_jobs()
    assert call_task(tasks.sweep_outbox) == 0  # not due: nobody sends it yet
    run_jobs()
    assert postmark.sent == []
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1), tick=False):
        assert call_task(tasks.sweep_outbox) == 1
        run_jobs()
    assert replies_sent(postmark) == ["Fixed on our side."]


def test_undo_takes_the_reply_back_and_puts_its_text_in_the_box(signed_in, db, run_jobs, call_task, postmark,
                                                                held):
    client, token, _ = signed_in()
    number = open_ticket(client)
    run_jobs()
    postmark.sent.clear()
    reply(client, token, number, "Oops, wrong customer.", status="resolved")
    db.session.expire_all()
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    assert ticket.status == "resolved"
    thread = db.session.scalar(select(Thread).where(Thread.direction == "outbound"))
    message_id = thread.rfc_message_id

    page = client.post(f"/tickets/{number}/replies/{thread.id}/undo", data={"csrf_token": token},
                       headers={"HX-Request": "true"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Reply taken back; it was not sent." in html
    assert ">Oops, wrong customer.</textarea>" in html
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.direction == "outbound")) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "reply")) == 0
    assert db.session.get(MessageId, message_id) is None
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    assert ticket.status == "open" and ticket.last_agent_reply_at is None  # as before the reply
    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        call_task(tasks.sweep_outbox)
        run_jobs()
    assert replies_sent(postmark) == []


def test_undo_after_the_reply_left_is_refused_and_changes_nothing(signed_in, db, run_jobs, call_task, postmark,
                                                                  held):
    client, token, _ = signed_in()
    number = open_ticket(client)
    run_jobs()
    postmark.sent.clear()
    reply(client, token, number, "On its way.")
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1), tick=False):
        call_task(tasks.sweep_outbox)
        run_jobs()
        response = client.post(f"/tickets/{number}/replies/{row.thread_id}/undo", data={"csrf_token": token},
                               headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "already left" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Thread, row.thread_id) is not None
    assert db.session.get(OutboxMessage, row.id).state in ("sent", "delivered")
    assert replies_sent(postmark) == ["On its way."]


def test_only_the_author_can_undo(signed_in, db, held, agent_client):
    client, token, _ = signed_in()
    number = open_ticket(client)
    reply(client, token, number, "Mine.")
    thread = db.session.scalar(select(Thread).where(Thread.direction == "outbound"))
    other, other_token = agent_client(AgentFactory(email="ben@echo.local", display_name="Ben", role="ops"))
    response = other.post(f"/tickets/{number}/replies/{thread.id}/undo", data={"csrf_token": other_token},
                          headers={"HX-Request": "true"})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Thread, thread.id) is not None


def test_a_retried_reply_holds_back_the_next_one_so_they_arrive_in_order(client, db, run_jobs, call_task, postmark,
                                                                         agent_token):
    number = open_ticket(client)
    run_jobs()
    postmark.sent.clear()
    _, headers = agent_token()
    postmark.fail_next(status=500)
    assert client.post(f"/api/v1/agent/tickets/{number}/replies", headers=headers,
                       json={"body_text": "First answer."}).status_code == 201
    run_jobs()
    assert replies_sent(postmark) == []  # Postmark failed it: it waits for a retry
    assert client.post(f"/api/v1/agent/tickets/{number}/replies", headers=headers,
                       json={"body_text": "Second answer."}).status_code == 201
    run_jobs()
    assert replies_sent(postmark) == []  # the second does not overtake the first
    first = db.session.scalar(select(OutboxMessage).where(OutboxMessage.attempts == 1, OutboxMessage.kind == "reply"))
    with time_machine.travel(first.next_attempt_at + timedelta(seconds=1), tick=False):
        call_task(tasks.sweep_outbox)
        run_jobs()
    assert replies_sent(postmark) == ["First answer.", "Second answer."]
