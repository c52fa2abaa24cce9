"""Forged senders get no useful mail from Echo: no acknowledgement to a failing sender, no echoed links,
and a cap per recipient domain on acknowledgements to senders that did not prove who they are."""

import pytest
import redis
import time_machine
from sqlalchemy import func, select

from echo.mail.emails import echoable_subject
from echo.mail.models import OutboxMessage
from echo.tickets import service as tickets
from tests.inbound.senders import FORGED, SOFTFAIL, spf_pass, stamped
from tests.mailbuilder import inbound_payload, post_inbound

PHISHING = "Your account is locked: verify at https://raxx-login.example/verify?u=1 or www.raxx-help.test now"


def acknowledgements(db):
    return db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.kind == "acknowledgement"))


def test_acknowledgement_never_repeats_links_from_the_subject(client, db, run_jobs, postmark):
    result = post_inbound(client, stamped(inbound_payload(sender="victim@example.org", subject=PHISHING),
                                          spf_pass("victim@example.org"))).get_json()
    run_jobs()
    (email,) = postmark.sent
    assert email["To"] == "victim@example.org"
    sent = email["Subject"] + email["TextBody"] + email["HtmlBody"]
    for fragment in ("raxx-login", "www.", "raxx-help", "?u=1"):
        assert fragment not in sent, fragment
    assert email["Subject"].startswith("Re: Your account is locked: verify at") and result["ticket_number"] in sent


def test_failing_sender_gets_no_acknowledgement(client, db, run_jobs, postmark):
    post_inbound(client, stamped(inbound_payload(subject=PHISHING), FORGED))
    run_jobs()
    assert postmark.sent == [] and acknowledgements(db) == 0


def test_unverified_acknowledgements_are_capped_per_recipient_domain(client, db):
    limit = tickets.ACK_LIMIT_PER_DOMAIN
    with time_machine.travel("2026-12-03 10:00:00Z") as clock:
        for i in range(limit + 3):
            address = f"user{i}@example.org"
            post_inbound(client, stamped(inbound_payload(sender=address, subject=f"q{i}"), SOFTFAIL))
        assert acknowledgements(db) == limit
        # Other domains have their own budget; senders who authenticate are not counted at all.
        post_inbound(client, stamped(inbound_payload(sender="someone@example.net"), SOFTFAIL))
        post_inbound(client, stamped(inbound_payload(sender="real@example.org"), spf_pass("real@example.org")))
        assert acknowledgements(db) == limit + 2
        clock.shift(3600)  # the next hour has a budget of its own
        post_inbound(client, stamped(inbound_payload(sender="late@example.org"), SOFTFAIL))
        assert acknowledgements(db) == limit + 3


def test_without_redis_the_acknowledgement_still_goes_out(client, db, monkeypatch):
    class Unreachable:
        def pipeline(self):
            raise redis.exceptions.ConnectionError("down")

    monkeypatch.setattr(tickets, "redis_connection", Unreachable)
    result = post_inbound(client, stamped(inbound_payload(), SOFTFAIL))
    assert result.status_code == 200 and acknowledgements(db) == 1


def test_free_mail_domains_have_a_larger_budget(client, db):
    for i in range(tickets.ACK_LIMIT_PER_DOMAIN + 1):
        post_inbound(client, stamped(inbound_payload(sender=f"user{i}@gmail.com", subject=f"q{i}"), SOFTFAIL))
    assert acknowledgements(db) == tickets.ACK_LIMIT_PER_DOMAIN + 1
    assert tickets.ACK_LIMIT_FREE_MAIL > tickets.ACK_LIMIT_PER_DOMAIN


@pytest.mark.parametrize("subject, echoed", [
    ("Cannot export my trades", "Cannot export my trades"),
    ("Login at http://evil.example/x fails", "Login at [link removed] fails"),
    ("see hxxps://evil.example and ftp://files.test/a", "see [link removed] and [link removed]"),
    ("mail bob@evil.example please", "mail [link removed] please"),
    ("visit evil.example/login today", "visit [link removed] today"),
    ("idn раксх.рф and xn--80ak6aa92e.com", "idn [link removed] and [link removed]"),
    ("fullwidth evil\uff0eexample", "fullwidth [link removed]"),
    ("version 2.3.1 and e.g. this", "version 2.3.1 and e.g. this"),
    ("invoice.pdf and report.xlsx missing", "invoice.pdf and report.xlsx missing"),
    ("open evil.zip or 203.0.113.9/login", "open [link removed] or [link removed]"),
    ("https://only.example", "your message"),
    ("", "your message"),
    ("x" * 300, "x" * 99 + "…"),
])
def test_echoable_subject(subject, echoed):
    assert echoable_subject(subject) == echoed
