"""Postmark answering late under a real worker: the other customers' mail goes on, and the late one is
confirmed at Postmark, never sent twice."""

import signal
import time
from datetime import timedelta

import time_machine
from sqlalchemy import select

from echo.db import utcnow
from echo.extensions import db
from echo.jobs import QUEUES, worker_connection
from echo.mail import postmark as postmark_api
from echo.mail.models import OutboxMessage
from echo.mail.tasks import sweep_outbox
from tests.conftest import BurstWorker
from tests.faults.conftest import wait_for
from tests.mailbuilder import inbound_payload, post_inbound

CUSTOMERS = [f"frank{i}@example.com" for i in range(10)]


def test_one_answer_that_never_comes_holds_up_no_one_else(faulty_app, own_redis, echo_worker, postmark):
    client = faulty_app.test_client()
    slow = CUSTOMERS[2]
    postmark.slow_recipients[slow] = postmark_api.READ_TIMEOUT + 5  # accepted, but the answer comes too late
    worker = echo_worker()
    wait_for(lambda: worker.poll() is None and own_redis.process is not None, 5)
    started = time.monotonic()
    for address in CUSTOMERS:
        assert post_inbound(client, inbound_payload(sender=address, subject=f"Help for {address}")).status_code == 200

    others = set(CUSTOMERS) - {slow}
    took = wait_for(lambda: others <= {m["To"] for m in postmark.sent}, 30, "the other customers' mail")
    assert took < 8  # not behind the slow one's time-out
    wait_for(lambda: row_of(faulty_app, slow).last_error is not None, postmark_api.READ_TIMEOUT + 10,
             "the late answer's time-out")
    late = row_of(faulty_app, slow)
    assert late.state == "sending" and "lost" in late.last_error  # Postmark may have it: not sent again blindly
    assert time.monotonic() - started < postmark_api.READ_TIMEOUT + 10

    worker.send_signal(signal.SIGTERM)
    worker.wait(30)
    with faulty_app.app_context(), time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        assert sweep_outbox() == 1
        BurstWorker(list(QUEUES), connection=worker_connection()).work(burst=True)
    recovered = row_of(faulty_app, slow)
    assert recovered.state == "sent"
    assert [m["To"] for m in postmark.sent].count(slow) == 1  # found at Postmark, not sent a second time
    assert recovered.postmark_message_id == next(m["MessageID"] for m in postmark.sent if m["To"] == slow)


def row_of(app, address: str) -> OutboxMessage:
    with app.app_context():
        row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.to_email == address))
        db.session.expunge_all()
        return row
