"""A forged From: never writes as the customer: weak threading evidence needs an authenticated sender."""

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from echo.actors import SYSTEM
from echo.customers.models import Customer
from echo.inbound import guards
from echo.mail import reply_token
from echo.mail.models import OutboxMessage
from echo.tickets import service as tickets
from echo.tickets.models import MessageId, Thread, Ticket
from tests.conftest import SECRET
from tests.factories import AgentFactory
from tests.inbound.senders import FORGED, GENUINE, SOFTFAIL, spf_pass, stamped
from tests.mailbuilder import inbound_payload, post_inbound


def alices_ticket(client, db, status="resolved"):
    """Alice's ticket, assigned, waiting on her; returns (ticket, her message id)."""
    message_id = f"<{uuid.uuid4().hex}@mail.example.com>"
    body = post_inbound(client, stamped(inbound_payload(message_id=message_id), GENUINE)).get_json()
    ticket = db.session.get(Ticket, uuid.UUID(body["ticket_id"]))
    ticket.status, ticket.assigned_to = status, AgentFactory().id
    db.session.commit()
    return ticket, message_id


def kinds(db):
    return sorted(db.session.scalars(select(OutboxMessage.kind)))


def test_forged_sender_with_the_ticket_number_starts_a_held_ticket(client, db):
    ticket, _ = alices_ticket(client, db)
    before = kinds(db)
    attack = post_inbound(client, stamped(inbound_payload(
        name="Alice (call +1 555 0100 to verify)", subject=f"Re: [{ticket.number}] new bank details",
    ), FORGED)).get_json()

    assert attack["status"] == "created" and attack["ticket_id"] != str(ticket.id)
    held = db.session.get(Ticket, uuid.UUID(attack["ticket_id"]))
    assert held.quarantined and held.quarantine_reason == "unauthenticated"
    db.session.expire_all()
    victim = db.session.get(Ticket, ticket.id)
    assert victim.status == "resolved"  # not reopened
    assert [t.sender_name for t in victim.threads] == ["Alice Example"]
    assert db.session.scalar(select(Customer.display_name)) == "Alice Example"  # not renamed
    assert kinds(db) == before  # no acknowledgement, no notification to the assignee


def test_forged_sender_quoting_the_customers_own_message_id_is_held(client, db):
    ticket, message_id = alices_ticket(client, db)
    attack = post_inbound(client, stamped(inbound_payload(in_reply_to=message_id, references=message_id),
                                          FORGED)).get_json()
    assert attack["status"] == "created" and attack["ticket_id"] != str(ticket.id)
    assert db.session.get(Ticket, uuid.UUID(attack["ticket_id"])).quarantine_reason == "unauthenticated"


def test_a_new_conversation_from_a_failing_sender_is_held_and_can_be_released(client, db):
    result = post_inbound(client, stamped(inbound_payload(subject="Please wire the refund"), FORGED)).get_json()
    ticket = db.session.get(Ticket, uuid.UUID(result["ticket_id"]))
    assert ticket.quarantined and ticket.quarantine_reason == "unauthenticated"
    tickets.release_from_quarantine(ticket, actor=SYSTEM)
    db.session.commit()
    assert not db.session.get(Ticket, ticket.id).quarantined
    assert kinds(db) == []  # released, but never acknowledged: the address may be a forgery's victim


def test_unauthenticated_sender_gets_a_new_ticket_but_does_not_thread_or_rename(client, db):
    ticket, message_id = alices_ticket(client, db)
    result = post_inbound(client, stamped(inbound_payload(
        name="Mallory", subject=f"Re: [{ticket.number}]", in_reply_to=message_id,
    ), SOFTFAIL)).get_json()
    assert result["status"] == "created" and result["ticket_id"] != str(ticket.id)
    assert not db.session.get(Ticket, uuid.UUID(result["ticket_id"])).quarantined  # not proven forged
    assert db.session.scalar(select(Customer.display_name)) == "Alice Example"


def test_a_forged_pass_below_the_receivers_own_verdict_is_ignored(client, db):
    ticket, _ = alices_ticket(client, db)
    payload = stamped(inbound_payload(subject=f"Re: [{ticket.number}]", headers={
        "Authentication-Results": "mx.google.com; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com;"
                                  " dmarc=pass header.from=example.com",
    }), SOFTFAIL)
    result = post_inbound(client, payload).get_json()
    assert result["status"] == "created" and result["ticket_id"] != str(ticket.id)


def test_authenticated_customer_threads_by_subject_and_may_rename(client, db):
    ticket, _ = alices_ticket(client, db)
    reply = post_inbound(client, stamped(inbound_payload(name="Alice Martin", subject=f"Re: [{ticket.number}]"),
                                         GENUINE)).get_json()
    assert reply["status"] == "appended" and reply["ticket_id"] == str(ticket.id)
    assert db.session.scalar(select(Customer.display_name)) == "Alice Martin"
    db.session.expire_all()
    assert db.session.get(Ticket, ticket.id).status == "open"


def test_aligned_spf_pass_alone_authenticates(client, db):
    ticket, message_id = alices_ticket(client, db)
    reply = post_inbound(client, stamped(inbound_payload(in_reply_to=message_id), {
        "Received-SPF": "pass (receiver: domain of alice@mail.example.com designates 203.0.113.5 as permitted sender) "
                        "client-ip=203.0.113.5;",
    })).get_json()
    assert reply["status"] == "appended" and reply["ticket_id"] == str(ticket.id)


def test_reply_token_threads_whatever_the_senders_authentication(client, db):
    ticket, _ = alices_ticket(client, db)
    token = reply_token.mint(SECRET, ticket.id)
    reply = post_inbound(client, stamped(inbound_payload(mailbox_hash=token), FORGED)).get_json()
    assert reply["status"] == "appended" and reply["ticket_id"] == str(ticket.id)


def test_our_own_message_ids_thread_whatever_the_senders_authentication(client, db):
    ticket, _ = alices_ticket(client, db)
    db.session.add(MessageId(message_id="echo.0123abcd@raxx.app", ticket_id=ticket.id, origin="outbound"))
    db.session.commit()
    reply = post_inbound(client, stamped(inbound_payload(in_reply_to="<echo.0123abcd@raxx.app>"), FORGED)).get_json()
    assert reply["status"] == "appended" and reply["ticket_id"] == str(ticket.id)


def test_an_expired_reply_token_is_only_weak_evidence(client, db):
    ticket, _ = alices_ticket(client, db, status="open")
    stale = reply_token.mint(SECRET, ticket.id, issued_on=date.today() - reply_token.LIFETIME - timedelta(days=2))

    colleague = post_inbound(client, stamped(inbound_payload(sender="bob@example.com", mailbox_hash=stale),
                                                spf_pass("bob@example.com"))).get_json()
    assert colleague["status"] == "created"  # a stale token no longer speaks for anyone but the customer
    forged = post_inbound(client, stamped(inbound_payload(mailbox_hash=stale), FORGED)).get_json()
    assert forged["status"] == "created" and forged["ticket_id"] != str(ticket.id)
    own = post_inbound(client, stamped(inbound_payload(mailbox_hash=stale), GENUINE)).get_json()
    assert own["status"] == "appended" and own["ticket_id"] == str(ticket.id)


def test_mail_without_authentication_results_threads_as_before(client, db):
    """Replays (`echo-desk inbound`) and these tests' own payloads carry no verdict to read."""
    first = post_inbound(client, inbound_payload()).get_json()
    reply = post_inbound(client, inbound_payload(name="Alice M.", subject=f"Re: [{first['ticket_number']}]")).get_json()
    assert reply["status"] == "appended" and reply["ticket_id"] == first["ticket_id"]
    assert db.session.scalar(select(Customer.display_name)) == "Alice M."
    thread = db.session.get(Thread, uuid.UUID(reply["thread_id"]))
    assert thread.sender_name == "Alice M."


@pytest.mark.parametrize("headers, verdict", [
    ([], "unchecked"),
    ([("Authentication-Results", "mx; dmarc=pass header.from=example.com")], "unchecked"),  # no receiver's stamp
    ([("Received-SPF", "Pass (sender SPF authorized) identity=mailfrom; envelope-from=a@example.com")], "pass"),
    ([("Received-SPF", "pass (mx: domain of a@bounce.example.com designates 1.2.3.4)")], "pass"),
    ([("Received-SPF", "pass (mx: domain of a@example.com.evil.test designates 1.2.3.4)")], "none"),
    ([("Received-SPF", "pass envelope-from=bounces@mailer.test")], "none"),  # passes, but for another domain
    ([("Received-SPF", "Fail (mx: domain of a@example.com does not designate 1.2.3.4)")], "fail"),
    ([("Received-SPF", "softfail"), ("x", "y")], "none"),
    ([("Received-SPF", "neutral"), ("Authentication-Results", "x; dmarc=pass")], "none"),  # below the stamp
    ([("Authentication-Results", "mx; dkim=pass header.i=@example.com"), ("Received-SPF", "none")], "pass"),
    ([("Authentication-Results", "mx; dkim=pass header.d=other.test"), ("Received-SPF", "none")], "none"),
    ([("Authentication-Results", "mx; dkim=fail header.d=example.com"), ("Received-SPF", "none")], "none"),
    ([("Authentication-Results", "mx (comment; with) ; dmarc=fail (p=none) header.from=example.com"),
      ("Received-SPF", "pass envelope-from=a@example.com")], "fail"),  # DMARC speaks for the From domain
    ([("Authentication-Results", "mx; dmarc=pass header.from=example.com"), ("Received-SPF", "fail")], "pass"),
    ([("Authentication-Results", "mx; dmarc=pass header.from=other.test"), ("Received-SPF", "none")], "none"),
    ([("authentication-results", "dkim=none (message not signed) header.d=none;dmarc=none action=none "
                                  "header.from=example.com;"), ("RECEIVED-SPF", "None")], "none"),
    ([("Authentication-Results", "mx; spf=fail smtp.mailfrom=example.com"), ("Received-SPF", "none")], "fail"),
])
def test_sender_authentication_verdicts(headers, verdict):
    assert guards.sender_authentication(headers, "a@example.com") == verdict


def test_sender_authentication_cost_is_bounded():
    header = ("Authentication-Results", "mx; " + "(" * 50_000 + "dkim=pass; " * 5_000)
    assert guards.sender_authentication([header, ("Received-SPF", "none " * 20_000)], "a@example.com") == "none"
