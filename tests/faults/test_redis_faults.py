"""Redis stopped, frozen and restarted under a running worker and a serving app: nothing waits long, nothing
is lost, and the worker goes on by itself."""

import time

from redis import Redis
from rq import Queue
from sqlalchemy import func, select

from echo.mail.models import OutboxMessage
from tests.faults.conftest import wait_for
from tests.mailbuilder import inbound_payload, post_inbound


def post_mail(client, subject: str, sender: str = "dana@example.com") -> tuple[int, float]:
    started = time.monotonic()
    response = post_inbound(client, inbound_payload(sender=sender, subject=subject))
    return response.status_code, time.monotonic() - started


def acknowledged(postmark, subject: str) -> bool:
    return any(subject in m["Subject"] for m in postmark.sent)


def test_the_worker_goes_on_after_redis_restarts_empty(faulty_app, own_redis, echo_worker, postmark):
    client = faulty_app.test_client()
    worker = echo_worker()
    postmark.slow_recipients["dana@example.com"] = 2.0  # the job is still running when Redis goes
    assert post_mail(client, "Before the outage")[0] == 200
    wait_for(lambda: acknowledged(postmark, "Before the outage"), 30, "the first acknowledgement")

    own_redis.stop()  # mid-job: the worker is waiting for Postmark's answer
    postmark.slow_recipients.clear()
    status, took = post_mail(client, "During the outage")
    assert status == 200 and took < 3  # filed; its acknowledgement's job could not be enqueued
    time.sleep(2)
    own_redis.start()  # back, and empty: the job is gone, the outbox row is not

    wait_for(lambda: acknowledged(postmark, "During the outage"), 60, "the sweeper to send the lost one")
    assert worker.poll() is None  # the same worker, never restarted by anyone
    assert post_mail(client, "After the outage")[0] == 200
    wait_for(lambda: acknowledged(postmark, "After the outage"), 30, "new mail after the outage")
    assert len(postmark.sent) == 3  # each once


def test_a_worker_started_while_redis_is_away_starts_working_when_it_comes_back(faulty_app, own_redis,
                                                                               echo_worker, postmark):
    client = faulty_app.test_client()
    own_redis.stop()
    worker = echo_worker()
    assert post_mail(client, "Written while Redis was away")[0] == 200
    time.sleep(3)
    assert worker.poll() is None  # waiting for Redis, not dead
    own_redis.start()
    wait_for(lambda: acknowledged(postmark, "Written while Redis was away"), 60, "delivery once Redis is back")
    assert worker.poll() is None


def test_a_frozen_redis_costs_a_webhook_at_most_a_second_and_loses_nothing(faulty_app, own_redis, postmark):
    from echo.extensions import db
    from echo.mail.tasks import sweep_outbox

    client = faulty_app.test_client()
    own_redis.freeze()  # accepts connections, answers nothing
    try:
        timings = [post_mail(client, f"Frozen {i}", sender=f"erin{i}@example.com") for i in range(5)]
    finally:
        own_redis.thaw()
    assert [status for status, _ in timings] == [200] * 5
    assert max(took for _, took in timings) < 2.5  # the first pays Redis's time-outs; the others skip Redis
    assert sum(took for _, took in timings[1:]) < 2.5
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)) == 5  # each acknowledgement kept

    time.sleep(5.5)  # past the process's back-off from Redis
    with faulty_app.app_context():
        assert sweep_outbox() == 5  # thawed: the sweeper gives each its job
    assert Queue("mail", connection=Redis.from_url(own_redis.url)).count == 5


def test_a_request_that_needs_redis_while_it_is_away_is_a_503_not_a_500(faulty_app, own_redis):
    client = faulty_app.test_client()
    own_redis.stop()
    response = client.get("/api/sessions/webauthn/challenge")  # its rate limit and its challenge live in Redis
    assert response.status_code == 503 and response.get_json()["error"] == "unavailable"
    own_redis.start()
    assert client.get("/api/sessions/webauthn/challenge").status_code == 200
