"""Postmark's answers as the delivery reads them: an answer it cannot read never leads to a second email."""

from datetime import timedelta

import time_machine
from sqlalchemy import select

from echo.db import utcnow
from echo.mail import tasks
from echo.mail.models import OutboxMessage
from tests.mailbuilder import inbound_payload, post_inbound


def test_an_unreadable_answer_leaves_the_email_sending_until_postmark_is_asked(client, db, run_jobs, postmark,
                                                                              call_task):
    assert post_inbound(client, inbound_payload()).status_code == 200  # its acknowledgement is queued
    postmark.fail_next(status=200)  # "200 OK", but no JSON: Postmark may or may not have the email
    run_jobs()
    outbox = db.session.scalar(select(OutboxMessage))
    assert outbox.state == "sending" and len(postmark.requests) == 1  # not queued for a blind retry

    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        assert call_task(tasks.sweep_outbox) == 1
        run_jobs()  # the recovery asks Postmark first; it has nothing, so the email goes now
    db.session.expire_all()
    outbox = db.session.scalar(select(OutboxMessage))
    assert outbox.state == "sent" and len(postmark.sent) == 1
    assert outbox.postmark_message_id == postmark.sent[0]["MessageID"]
