"""The first delivery job of a backlog sends every due email and cancels the others' jobs, each email still once."""

from datetime import timedelta

import time_machine
from redis import Redis
from rq import Queue
from rq.registry import FinishedJobRegistry
from sqlalchemy import select

from echo.db import utcnow
from echo.mail import emails, tasks
from echo.mail.models import OutboxMessage
from tests.fakes.postmark import kill_worker_after_first_send
from tests.mailbuilder import inbound_payload, post_inbound


def new_tickets(client, count: int, sender: str = "alice@example.com") -> None:
    """`count` new conversations, each queueing its acknowledgement (and that email's delivery job)."""
    for i in range(count):
        assert post_inbound(client, inbound_payload(sender=sender, subject=f"Problem number {i}")).status_code == 200


def outbox(db) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(db.session.scalars(select(OutboxMessage).order_by(OutboxMessage.created_at)))


def mail_queue(redis_url) -> Queue:
    return Queue("mail", connection=Redis.from_url(redis_url))


def test_one_job_sends_the_backlog_and_cancels_the_other_jobs(client, db, run_jobs, postmark, redis_url):
    new_tickets(client, 3)
    assert mail_queue(redis_url).count == 3
    run_jobs()
    assert [row.state for row in outbox(db)] == ["sent"] * 3
    assert sorted(m["Metadata"]["echo_outbox_id"] for m in postmark.requests) == sorted(str(r.id) for r in outbox(db))
    assert FinishedJobRegistry("mail", connection=Redis.from_url(redis_url)).count == 1  # one job ran, for all three


def test_a_job_whose_email_went_out_in_another_batch_sends_nothing(client, db, run_jobs, postmark, call_task):
    new_tickets(client, 2)
    first, second = outbox(db)
    assert call_task(tasks.deliver_due, str(first.id)) == 2
    assert call_task(tasks.deliver_due, str(second.id)) == 0
    run_jobs()  # the first one's own job (the batch cancels only the others)
    assert len(postmark.requests) == 2


def test_claimed_emails_not_sent_in_time_go_back_to_the_queue_unsent(client, db, run_jobs, postmark, call_task,
                                                                      monkeypatch, redis_url):
    new_tickets(client, 3)
    first = outbox(db)[0]
    monkeypatch.setattr(tasks, "SEND_WINDOW", 0.3)
    postmark.delay_after_accept = 0.5  # the first send outlasts the window
    assert call_task(tasks.deliver_due, str(first.id)) == 3  # all claimed; one address, so one after another
    rows = outbox(db)
    assert [row.state for row in rows] == ["sent", "queued", "queued"]
    assert [(row.attempts, row.attempted_at) for row in rows[1:]] == [(0, None), (0, None)]  # as they were
    assert mail_queue(redis_url).count == 3  # the two handed back have jobs again (and the first its own)
    postmark.delay_after_accept = 0
    run_jobs()
    assert [row.state for row in outbox(db)] == ["sent"] * 3
    assert len(postmark.requests) == 3


def test_an_address_that_bounces_gets_nothing_more_from_the_batch(client, db, run_jobs, postmark):
    new_tickets(client, 2, sender="gone@example.com")
    postmark.fail_next(status=422, error_code=406, message="Inactive recipient")
    run_jobs()
    assert [row.state for row in outbox(db)] == ["failed", "failed"]
    assert len(postmark.requests) == 1  # the second was never offered to Postmark


def test_an_email_that_cannot_be_built_stays_queued_and_the_others_go(client, db, run_jobs, postmark, monkeypatch):
    new_tickets(client, 3)
    broken = outbox(db)[1].id
    render = emails.render

    def failing_render(row):
        if row.id == broken:
            raise RuntimeError("template error")
        return render(row)

    monkeypatch.setattr(emails, "render", failing_render)
    run_jobs()
    assert [(row.state, row.attempts) for row in outbox(db)] == [("sent", 1), ("queued", 0), ("sent", 1)]
    assert len(postmark.requests) == 2


def test_a_worker_killed_mid_batch_sends_each_email_once(client, db, postmark, base_env, run_jobs, call_task):
    new_tickets(client, 3)
    kill_worker_after_first_send(postmark, base_env)  # one sent but not recorded, two claimed but never sent
    assert [row.state for row in outbox(db)] == ["sending"] * 3

    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        assert call_task(tasks.sweep_outbox) == 3
        run_jobs()
    rows = outbox(db)
    assert [row.state for row in rows] == ["sent"] * 3
    assert sorted(m["Metadata"]["echo_outbox_id"] for m in postmark.sent) == sorted(str(r.id) for r in rows)
    assert rows[0].postmark_message_id == postmark.sent[0]["MessageID"]  # found at Postmark, not sent again


def test_a_job_that_stops_early_has_sent_its_own_email(client, db, run_jobs, postmark, call_task, monkeypatch):
    new_tickets(client, 3)
    last = outbox(db)[-1]
    monkeypatch.setattr(tasks, "DRAIN_BATCH", 1)
    monkeypatch.setattr(tasks, "DRAIN_SECONDS", 0.0)  # one email per job
    assert call_task(tasks.deliver_due, str(last.id)) == 1
    assert [row.state for row in outbox(db)] == ["queued", "queued", "sent"]  # its own, not the oldest
    run_jobs()  # the others still have their jobs
    assert [row.state for row in outbox(db)] == ["sent"] * 3 and len(postmark.requests) == 3
