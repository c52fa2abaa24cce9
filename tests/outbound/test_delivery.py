"""Delivery guarantees: transient failures retry, permanent ones stop, and nothing is sent twice."""

from datetime import timedelta

import time_machine
from sqlalchemy import select

from echo.customers.models import Customer
from echo.db import utcnow
from echo.mail.models import OutboxMessage
from echo.mail.tasks import sweep_outbox
from tests.fakes.postmark import kill_worker_after_first_send
from tests.mailbuilder import inbound_payload, post_inbound


def reply_outbox(client, db, headers) -> OutboxMessage:
    post_inbound(client, inbound_payload(headers={"Auto-Submitted": "auto-replied"}))  # no acknowledgement
    assert client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers,
                       json={"body_text": "Here is your answer."}).status_code == 201
    return db.session.scalar(select(OutboxMessage))


def outbox_state(db, outbox_id):
    db.session.expire_all()
    return db.session.get(OutboxMessage, outbox_id)


def test_two_server_errors_then_success_sends_exactly_one_email(client, db, run_jobs, postmark, agent_token, call_task):
    _, headers = agent_token()
    postmark.fail_next(status=500, times=2)
    outbox = reply_outbox(client, db, headers)
    run_jobs()
    first = outbox_state(db, outbox.id)
    assert first.state == "queued" and first.attempts == 1
    assert first.next_attempt_at - first.attempted_at <= timedelta(seconds=30)  # first retry within 30 s
    with time_machine.travel(utcnow() + timedelta(seconds=20), tick=False):
        assert call_task(sweep_outbox) == 1
        run_jobs()
    assert outbox_state(db, outbox.id).attempts == 2
    with time_machine.travel(utcnow() + timedelta(seconds=200), tick=False):
        call_task(sweep_outbox)
        run_jobs()
    final = outbox_state(db, outbox.id)
    assert final.state == "sent" and final.attempts == 3
    assert len(postmark.requests) == 3 and len(postmark.sent) == 1
    assert final.postmark_message_id == postmark.sent[0]["MessageID"]


def test_rate_limited_is_transient(client, db, run_jobs, postmark, agent_token):
    _, headers = agent_token()
    postmark.fail_next(status=429, error_code=429, message="Rate limit exceeded")
    outbox = reply_outbox(client, db, headers)
    run_jobs()
    assert outbox_state(db, outbox.id).state == "queued"


def test_inactive_recipient_fails_at_once_without_retries(client, db, run_jobs, postmark, agent_token, call_task):
    _, headers = agent_token()
    postmark.fail_next(status=422, error_code=406,
                       message="You tried to send to a recipient that has been marked as inactive.")
    outbox = reply_outbox(client, db, headers)
    run_jobs()
    failed = outbox_state(db, outbox.id)
    assert failed.state == "failed" and "406" in failed.last_error
    assert db.session.scalar(select(Customer.email_bounced)) is True
    with time_machine.travel(utcnow() + timedelta(hours=2), tick=False):
        assert call_task(sweep_outbox) == 0
        run_jobs()
    assert len(postmark.requests) == 1 and postmark.sent == []
    ticket = client.get("/api/v1/agent/tickets/TKT-0001", headers=headers).get_json()
    assert ticket["customer"]["email_bounced"] is True
    assert [t["outbox"]["state"] for t in ticket["threads"] if t["direction"] == "outbound"] == ["failed"]


def test_transient_failures_for_a_day_expire_visibly(client, db, run_jobs, postmark, agent_token, call_task):
    _, headers = agent_token()
    postmark.fail_next(status=503, times=100)
    outbox = reply_outbox(client, db, headers)
    run_jobs()
    with time_machine.travel(utcnow() + timedelta(hours=25), tick=False):
        call_task(sweep_outbox)
        run_jobs()
    assert outbox_state(db, outbox.id).state == "expired"
    ticket = client.get("/api/v1/agent/tickets/TKT-0001", headers=headers).get_json()
    assert [t["outbox"]["state"] for t in ticket["threads"] if t["direction"] == "outbound"] == ["expired"]


def test_lost_enqueue_is_picked_up_by_the_sweeper(client, db, run_jobs, postmark, agent_token, redis_url, call_task):
    from redis import Redis

    _, headers = agent_token()
    outbox = reply_outbox(client, db, headers)
    Redis.from_url(redis_url).flushdb()  # the job vanished (Redis restarted) but the outbox row is committed
    run_jobs()
    assert postmark.sent == []
    assert call_task(sweep_outbox) == 1
    run_jobs()
    assert outbox_state(db, outbox.id).state == "sent" and len(postmark.sent) == 1


def test_worker_killed_after_postmark_accepted_does_not_send_twice(client, db, postmark, agent_token, base_env,
                                                                   run_jobs, call_task):
    _, headers = agent_token()
    outbox = reply_outbox(client, db, headers)
    kill_worker_after_first_send(postmark, base_env)  # dies in the window: sent, but not recorded
    crashed = outbox_state(db, outbox.id)
    assert crashed.state == "sending" and crashed.postmark_message_id is None

    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        assert call_task(sweep_outbox) == 1
        run_jobs()
    recovered = outbox_state(db, outbox.id)
    assert recovered.state == "sent" and recovered.postmark_message_id == postmark.sent[0]["MessageID"]
    assert len(postmark.sent) == 1 and len(postmark.requests) == 1


def test_worker_killed_before_postmark_got_it_sends_once(client, db, postmark, agent_token, run_jobs, call_task):
    _, headers = agent_token()
    outbox = reply_outbox(client, db, headers)
    row = db.session.get(OutboxMessage, outbox.id)
    row.state, row.attempted_at, row.attempts = "sending", utcnow(), 1  # the state a worker leaves if it dies here
    db.session.commit()
    assert call_task(sweep_outbox) == 0  # a send in progress is left alone while it may still be running
    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        assert call_task(sweep_outbox) == 1
        run_jobs()
    assert outbox_state(db, outbox.id).state == "sent" and len(postmark.sent) == 1


def test_agent_can_retry_a_failed_message(client, db, run_jobs, postmark, agent_token):
    from echo.actors import SYSTEM
    from echo.outbound.service import retry_outbox

    _, headers = agent_token()
    postmark.fail_next(status=422, error_code=300, message="Invalid 'To' address")
    outbox = reply_outbox(client, db, headers)
    run_jobs()
    assert outbox_state(db, outbox.id).state == "failed"
    customer = db.session.scalar(select(Customer))
    customer.email_bounced = False  # the agent fixed the address problem
    retry_outbox(outbox.id, actor=SYSTEM)
    db.session.commit()
    run_jobs()
    assert outbox_state(db, outbox.id).state == "sent" and len(postmark.sent) == 1
