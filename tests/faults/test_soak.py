"""A soak: mail keeps arriving while Redis restarts and freezes, Postmark fails, answers late or never,
and the worker is killed; in the end every conversation has had exactly one acknowledgement.

By default a short, fixed sequence of faults (about half a minute). For a longer soak:

    ECHO_FAULT_SOAK_SECONDS=900 pytest tests/faults/test_soak.py

which repeats the sequence for that long and adds the faults whose recovery takes the sweeper's
two minutes (a SIGKILLed worker, an answer that never comes).
"""

import os
import signal
import time

from sqlalchemy import func, select

from echo.extensions import db
from echo.mail import postmark as postmark_api
from echo.mail.models import OutboxMessage
from tests.faults.conftest import wait_for
from tests.mailbuilder import inbound_payload, post_inbound

SOAK_SECONDS = float(os.environ.get("ECHO_FAULT_SOAK_SECONDS", "0"))
LONG = SOAK_SECONDS > 0


def test_mail_flows_through_a_night_of_faults(faulty_app, own_redis, echo_worker, postmark):
    client = faulty_app.test_client()
    workers = [echo_worker()]
    written = 0

    def write(count: int) -> None:
        nonlocal written
        for _ in range(count):
            sender = f"soak{written}@soak{written}.example"  # one domain each: no acknowledgement quota
            response = post_inbound(client, inbound_payload(sender=sender, subject=f"Soak {written}"))
            assert response.status_code == 200, response.get_data()
            written += 1
            time.sleep(0.05)

    def restart_redis() -> None:
        own_redis.stop()
        write(5)
        own_redis.start()

    def freeze_redis() -> None:
        own_redis.freeze()
        try:
            write(5)
        finally:
            own_redis.thaw()

    def postmark_errors() -> None:
        postmark.fail_next(status=500, times=5)
        write(5)

    def postmark_late() -> None:
        for i in range(written, written + 5):
            postmark.slow_recipients[f"soak{i}@soak{i}.example"] = 2.0
        write(5)

    def postmark_never() -> None:  # the answer outlasts the client's read time-out: Postmark is asked later
        for i in range(written, written + 2):
            postmark.slow_recipients[f"soak{i}@soak{i}.example"] = postmark_api.READ_TIMEOUT + 3
        write(5)

    def kill_worker() -> None:
        workers[-1].send_signal(signal.SIGKILL)
        workers[-1].wait(10)
        write(5)
        workers.append(echo_worker())

    faults = [restart_redis, freeze_redis, postmark_errors, postmark_late]
    if LONG:
        faults += [postmark_never, kill_worker]
    deadline = time.monotonic() + SOAK_SECONDS
    while True:
        for fault in faults:
            write(3)
            fault()
        if time.monotonic() > deadline:
            break
    write(3)

    def settled() -> bool:
        with faulty_app.app_context():
            states = dict(db.session.execute(
                select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)).all())
            db.session.remove()
        return states == {"sent": written}

    # Retries come 15 s, then 60 s after a failure; a lost answer or a killed worker two minutes on.
    wait_for(settled, 300 if LONG else 120, "every acknowledgement to be sent")
    ids = [m["Metadata"]["echo_outbox_id"] for m in postmark.sent]
    assert len(ids) == len(set(ids)) == written  # each exactly once
    assert workers[-1].poll() is None  # still working
