"""The outbox sweeper gives each due email one job at a time, oldest first, and replies go before other mail."""

import time
from datetime import timedelta

import time_machine
from redis import Redis
from rq import Queue
from sqlalchemy import select, update

from echo.db import utcnow
from echo.jobs import QUEUES, exclusive_key, worker_connection
from echo.mail import tasks
from echo.mail.models import OutboxMessage
from tests.conftest import BurstWorker
from tests.mailbuilder import inbound_payload, post_inbound
from workers import clock


def new_tickets(client, count: int, sender: str = "alice{}@example.com") -> None:
    for i in range(count):
        assert post_inbound(client, inbound_payload(sender=sender.format(i), subject=f"Problem {i}")).status_code == 200


def agent_replies(client, agent_token, number: str, text: str) -> None:
    _, headers = agent_token()
    assert client.post(f"/api/v1/agent/tickets/{number}/replies", headers=headers,
                       json={"body_text": text}).status_code == 201


def queued_jobs(redis_url) -> dict[str, list[str]]:
    connection = Redis.from_url(redis_url)
    return {name: Queue(name, connection=connection).job_ids for name in QUEUES}


def outbox(db) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


def test_sweeps_during_a_backlog_leave_one_job_per_email(client, db, call_task, redis_url):
    new_tickets(client, 12)
    assert len(queued_jobs(redis_url)["mail"]) == 12  # each acknowledgement's own job, waiting
    for _ in range(5):  # the worker is busy elsewhere; the clock sweeps again and again
        assert call_task(tasks.sweep_outbox) == 0
    assert len(queued_jobs(redis_url)["mail"]) == 12

    Redis.from_url(redis_url).flushdb()  # an outage: Redis came back empty, the rows are all still due
    assert call_task(tasks.sweep_outbox) == 12
    for _ in range(3):
        assert call_task(tasks.sweep_outbox) == 0
    jobs = queued_jobs(redis_url)["mail"]
    assert sorted(jobs) == sorted(f"deliver-{row.id}" for row in outbox(db))  # one each, none left out


def test_a_sweep_takes_the_oldest_first_and_replies_before_them(client, db, call_task, redis_url, agent_token,
                                                                 monkeypatch):
    new_tickets(client, 4)
    agent_replies(client, agent_token, "TKT-0004", "Here you go.")
    rows = outbox(db)
    reply = next(row for row in rows if row.kind == "reply")
    acks = [row for row in rows if row.kind == "acknowledgement"]
    Redis.from_url(redis_url).flushdb()
    monkeypatch.setattr(tasks, "SWEEP_LIMIT", 3)
    assert call_task(tasks.sweep_outbox) == 3
    jobs = queued_jobs(redis_url)
    assert jobs["replies"] == [f"deliver-{reply.id}"]
    assert jobs["mail"] == [f"deliver-{acks[0].id}", f"deliver-{acks[1].id}"]  # the two oldest


def test_a_retry_gets_its_job_once_it_is_due(client, db, call_task, run_jobs, postmark, redis_url):
    new_tickets(client, 1)
    postmark.fail_next(status=500)
    run_jobs()
    row = outbox(db)[0]
    assert row.state == "queued" and row.attempts == 1
    assert call_task(tasks.sweep_outbox) == 0  # not due yet
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1), tick=False):
        assert call_task(tasks.sweep_outbox) == 1
        assert call_task(tasks.sweep_outbox) == 0
        run_jobs()
    assert outbox(db)[0].state == "sent" and len(postmark.sent) == 1


def test_a_stale_send_gets_one_recovery_job_beside_a_waiting_batch_job(client, db, call_task, redis_url):
    new_tickets(client, 1)
    row = outbox(db)[0]
    db.session.execute(update(OutboxMessage).values(state="sending", attempted_at=utcnow(), attempts=1))
    db.session.commit()
    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        assert call_task(tasks.sweep_outbox) == 1
        assert call_task(tasks.sweep_outbox) == 0
    assert queued_jobs(redis_url)["mail"] == [f"deliver-{row.id}", f"recover-{row.id}"]


def test_the_clock_skips_a_sweep_while_the_last_one_is_unfinished(app, redis_url):
    connection = Redis.from_url(redis_url)
    sweep = [clock.Every(10, tasks.sweep_outbox, "sweep")]
    assert clock.tick(app, sweep) == ["echo.mail.tasks.sweep_outbox"]
    for _ in range(3):  # later periods, the sweep still waiting behind a busy worker
        connection.delete("echo:clock:echo.mail.tasks.sweep_outbox")
        assert clock.tick(app, sweep) == []
    assert Queue("sweep", connection=connection).count == 1
    with app.app_context():
        BurstWorker(["sweep"], connection=worker_connection()).work(burst=True)
    assert not connection.exists(exclusive_key(tasks.sweep_outbox))  # the finished sweep cleared its mark
    connection.delete("echo:clock:echo.mail.tasks.sweep_outbox")
    assert clock.tick(app, sweep) == ["echo.mail.tasks.sweep_outbox"]


def test_an_agents_reply_is_sent_before_a_backlog_of_acknowledgements(client, db, postmark, agent_token, app,
                                                                       monkeypatch):
    new_tickets(client, 30)
    agent_replies(client, agent_token, "TKT-0001", "Answered.")
    monkeypatch.setattr(tasks, "DRAIN_BATCH", 4)
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", 0.0)  # one claim per job: the order of jobs shows
    with app.app_context():
        BurstWorker(list(QUEUES), connection=worker_connection()).work(burst=True, max_jobs=1)
    assert tasks.wait_for_sends(30)
    first_job = [m["To"] for m in postmark.sent]
    assert len(first_job) == 4 and "alice0@example.com" in first_job
    reply = next(m for m in postmark.sent if m["To"] == "alice0@example.com" and "Answered." in m["TextBody"])
    assert reply  # the first job was the reply's, though thirty acknowledgements were queued before it


def test_one_slow_answer_holds_up_only_its_own_email(client, db, postmark, call_task):
    new_tickets(client, 10)
    postmark.slow_recipients["alice3@example.com"] = 3.0
    started = time.monotonic()
    assert call_task(tasks.deliver_due, str(outbox(db)[0].id)) == 10
    assert time.monotonic() - started < 8  # not ten sends one after another, and not waiting on each other
    slow = next(m for m in postmark.sent if m["To"] == "alice3@example.com")
    others = [m["received"] for m in postmark.sent if m is not slow]
    assert len(others) == 9 and max(others) < slow["received"] + 2.5  # sent while the slow answer was awaited
    assert [row.state for row in outbox(db)] == ["sent"] * 10


def test_one_customers_emails_go_out_in_the_order_they_were_written(client, db, postmark, call_task, agent_token):
    _, headers = agent_token()
    new_tickets(client, 1, sender="carol@example.com")
    for text in ("First answer.", "Second answer.", "Third answer."):
        assert client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers,
                           json={"body_text": text, "status": "open"}).status_code == 201
    postmark.slow_recipients["carol@example.com"] = 0.3  # each answer late: parallel sends would reorder them
    rows = outbox(db)
    assert call_task(tasks.deliver_due, str(rows[-1].id)) == 4
    assert [m["Metadata"]["echo_outbox_id"] for m in postmark.sent] == [str(row.id) for row in rows]
