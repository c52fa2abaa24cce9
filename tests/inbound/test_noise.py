"""Loop guards, spam and floods (SPEC §4.5–4.6), and the acknowledgement rules that follow."""

import uuid

import pytest
from sqlalchemy import func, select

from echo.mail.models import OutboxMessage
from echo.tickets.models import Thread, Ticket
from tests.mailbuilder import inbound_payload, post_inbound


def outbox_count(db):
    return db.session.scalar(select(func.count()).select_from(OutboxMessage))


@pytest.mark.parametrize("headers, sender", [
    ({"Auto-Submitted": "auto-replied"}, "alice@example.com"),
    ({"auto-submitted": "Auto-Generated"}, "alice@example.com"),
    ({"Precedence": "bulk"}, "alice@example.com"),
    ({"PRECEDENCE": "junk"}, "alice@example.com"),
    ({"Precedence": "list"}, "alice@example.com"),
    ({"Precedence": "auto_reply"}, "alice@example.com"),
    ({"X-Auto-Response-Suppress": "All"}, "alice@example.com"),
    ({"X-Autoreply": "yes"}, "alice@example.com"),
    ({"X-Autorespond": "Out of office"}, "alice@example.com"),
    ({"X-Loop": "support@raxx.app"}, "alice@example.com"),
    ({"List-Id": "<news.example.com>"}, "alice@example.com"),
    ({"List-Unsubscribe": "<mailto:unsub@example.com>"}, "alice@example.com"),
    ({}, "MAILER-DAEMON@mx.example.com"),
    ({}, "postmaster@example.com"),
    ({}, "support@raxx.app"),
    ({}, "support+abc@raxx.app"),
])
def test_automated_mail_is_recorded_but_never_acknowledged(client, db, headers, sender):
    result = post_inbound(client, inbound_payload(sender=sender, headers=headers)).get_json()
    thread = db.session.get(Thread, uuid.UUID(result["thread_id"]))
    assert thread.is_auto_reply
    assert outbox_count(db) == 0
    # Threading nowhere, it waits where agents can look, out of the inbox.
    ticket = db.session.get(Ticket, thread.ticket_id)
    assert (ticket.quarantined, ticket.quarantine_reason) == (True, "auto_reply")


def test_an_out_of_office_reply_to_a_ticket_stays_on_it(client, db):
    first = post_inbound(client, inbound_payload(message_id="<first@example.com>")).get_json()
    reply = post_inbound(client, inbound_payload(headers={"Auto-Submitted": "auto-replied"},
                                                 in_reply_to="<first@example.com>")).get_json()
    assert reply["ticket_id"] == first["ticket_id"]
    ticket = db.session.get(Ticket, uuid.UUID(first["ticket_id"]))
    assert not ticket.quarantined and ticket.status == "open"


def test_auto_submitted_no_is_a_human(client, db, run_jobs, postmark):
    result = post_inbound(client, inbound_payload(headers={"Auto-Submitted": "no"})).get_json()
    assert not db.session.get(Thread, uuid.UUID(result["thread_id"])).is_auto_reply
    assert outbox_count(db) == 1


def test_high_spam_score_quarantines_without_acknowledgement(client, db):
    result = post_inbound(client, inbound_payload(headers={"X-Spam-Score": "7.5"})).get_json()
    ticket = db.session.get(Ticket, uuid.UUID(result["ticket_id"]))
    assert ticket.quarantined and ticket.quarantine_reason == "spam"
    assert outbox_count(db) == 0


@pytest.mark.parametrize("score", ["5.0", "4.9", "-1.2", "garbage", ""])
def test_scores_at_or_below_threshold_are_not_spam(client, db, score):
    result = post_inbound(client, inbound_payload(headers={"X-Spam-Score": score})).get_json()
    assert not db.session.get(Ticket, uuid.UUID(result["ticket_id"])).quarantined
    assert outbox_count(db) == 1


def test_more_than_ten_new_tickets_a_day_are_quarantined(client, db):
    results = [post_inbound(client, inbound_payload(subject=f"ticket {i}")).get_json() for i in range(12)]
    flags = [db.session.get(Ticket, uuid.UUID(r["ticket_id"])).quarantined for r in results]
    assert flags == [False] * 10 + [True, True]
    assert db.session.get(Ticket, uuid.UUID(results[-1]["ticket_id"])).quarantine_reason == "flood"
    assert outbox_count(db) == 10
    other = post_inbound(client, inbound_payload(sender="someone.else@example.com")).get_json()
    assert not db.session.get(Ticket, uuid.UUID(other["ticket_id"])).quarantined


def test_replies_do_not_count_towards_the_flood_limit(client, db):
    message_id = "<first@mail.example.com>"
    post_inbound(client, inbound_payload(message_id=message_id))
    for _ in range(12):
        assert post_inbound(client, inbound_payload(in_reply_to=message_id)).get_json()["status"] == "appended"
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1


def test_replies_are_not_acknowledged(client, db):
    post_inbound(client, inbound_payload(message_id="<first@mail.example.com>"))
    post_inbound(client, inbound_payload(in_reply_to="<first@mail.example.com>"))
    assert outbox_count(db) == 1


def test_bounced_customer_gets_no_acknowledgement(client, db):
    from echo.customers.models import Customer

    post_inbound(client, inbound_payload(subject="first"))
    customer = db.session.scalar(select(Customer))
    customer.email_bounced = True
    db.session.commit()
    post_inbound(client, inbound_payload(subject="second"))
    assert outbox_count(db) == 1
