"""Threading replies onto the right ticket, and never onto someone else's (SPEC §4.2)."""

import uuid

from sqlalchemy import select

from echo.mail import reply_token
from echo.tickets.models import MessageId, Thread, Ticket
from tests.conftest import SECRET
from tests.mailbuilder import inbound_payload, post_inbound


def new_ticket(client, **kwargs):
    message_id = kwargs.pop("message_id", f"<{uuid.uuid4().hex}@mail.example.com>")
    body = post_inbound(client, inbound_payload(message_id=message_id, **kwargs)).get_json()
    assert body["status"] == "created"
    return body, message_id


def add_outbound_id(db, ticket_id, message_id):
    """Record an id as Postmark would have assigned it to an agent's reply."""
    db.session.add(MessageId(message_id=message_id, ticket_id=uuid.UUID(ticket_id), origin="outbound"))
    db.session.commit()


def test_in_reply_to_customer_message_threads_for_same_customer(client, db):
    first, first_id = new_ticket(client)
    reply = post_inbound(client, inbound_payload(in_reply_to=first_id, subject="Re: Cannot export")).get_json()
    assert reply["status"] == "appended" and reply["ticket_id"] == first["ticket_id"]


def test_references_chain_threads_when_in_reply_to_is_unknown(client, db):
    first, first_id = new_ticket(client)
    reply = post_inbound(client, inbound_payload(
        in_reply_to="<unknown@elsewhere.test>", references=f"{first_id} <unknown@elsewhere.test>",
    )).get_json()
    assert reply["ticket_id"] == first["ticket_id"]


def test_postmark_outbound_id_threads_in_bracketed_and_bare_forms(client, db):
    first, _ = new_ticket(client)
    postmark_id = str(uuid.uuid4())
    add_outbound_id(db, first["ticket_id"], f"{postmark_id}@mtasv.net")
    bracketed = post_inbound(client, inbound_payload(in_reply_to=f"<{postmark_id}@mtasv.net>")).get_json()
    bare = post_inbound(client, inbound_payload(in_reply_to=postmark_id.upper())).get_json()
    assert bracketed["ticket_id"] == first["ticket_id"] and bare["ticket_id"] == first["ticket_id"]


def test_reply_to_our_outbound_id_from_a_colleague_threads(client, db):
    """Our own ids are random and unguessable, so whoever holds one was sent our mail."""
    first, _ = new_ticket(client)
    add_outbound_id(db, first["ticket_id"], "0b6f1c9e-3f1e-4c1e-9d0b-2d0c2f7e9a11@mtasv.net")
    reply = post_inbound(client, inbound_payload(
        sender="colleague@example.com", in_reply_to="<0b6f1c9e-3f1e-4c1e-9d0b-2d0c2f7e9a11@mtasv.net>",
    )).get_json()
    assert reply["ticket_id"] == first["ticket_id"] and reply["status"] == "appended"


def test_forged_in_reply_to_of_another_customers_message_opens_a_new_ticket(client, db):
    victim, victim_id = new_ticket(client, sender="victim@example.com")
    attack = post_inbound(client, inbound_payload(
        sender="mallory@evil.test", in_reply_to=victim_id, references=victim_id,
        subject=f"Re: [{victim['ticket_number']}] hi",
    )).get_json()
    assert attack["status"] == "created" and attack["ticket_id"] != victim["ticket_id"]
    victim_threads = db.session.scalars(select(Thread).where(Thread.ticket_id == uuid.UUID(victim["ticket_id"]))).all()
    assert [t.sender_email for t in victim_threads] == ["victim@example.com"]


def test_subject_number_threads_only_for_the_ticket_owner(client, db):
    first, _ = new_ticket(client, sender="alice@example.com")
    number = first["ticket_number"]
    own = post_inbound(client, inbound_payload(sender="alice@example.com", subject=f"Re: hello [{number}]")).get_json()
    assert own["ticket_id"] == first["ticket_id"] and own["status"] == "appended"
    stranger = post_inbound(client, inbound_payload(sender="eve@evil.test", subject=f"Re: [{number}]")).get_json()
    assert stranger["status"] == "created" and stranger["ticket_id"] != first["ticket_id"]


def test_guessed_ticket_numbers_never_cross_customers(client, db):
    for i in range(3):
        new_ticket(client, sender=f"customer{i}@example.com")
    for n in range(1, 4):
        payload = inbound_payload(sender="eve@evil.test", subject=f"[TKT-{n:04d}] gimme")
        result = post_inbound(client, payload).get_json()
        assert result["status"] == "created"
    for ticket in db.session.scalars(select(Ticket).where(Ticket.seq <= 3)):
        assert {t.sender_email for t in ticket.threads} == {ticket.customer.email}


def test_signed_reply_token_threads_without_any_headers(client, db):
    first, _ = new_ticket(client)
    token = reply_token.mint(SECRET, uuid.UUID(first["ticket_id"]))
    reply = post_inbound(client, inbound_payload(subject="no subject token", mailbox_hash=token)).get_json()
    assert reply["ticket_id"] == first["ticket_id"] and reply["status"] == "appended"


def test_tampered_or_foreign_reply_tokens_are_ignored(client, db):
    first, _ = new_ticket(client, sender="victim@example.com")
    ticket_id = uuid.UUID(first["ticket_id"])
    good = reply_token.mint(SECRET, ticket_id)
    tampered = good[:20] + ("a" if good[20] != "a" else "b") + good[21:]
    wrong_key = reply_token.mint("some-other-secret", ticket_id)
    truncated = good[:-4]
    for token in (tampered, wrong_key, truncated, "x" * 42, "../../etc"):
        result = post_inbound(client, inbound_payload(sender="mallory@evil.test", mailbox_hash=token)).get_json()
        assert result["status"] == "created", token
        assert result["ticket_id"] != first["ticket_id"]


def test_reply_to_merged_ticket_lands_on_survivor(client, db):
    loser, loser_id = new_ticket(client)
    survivor, _ = new_ticket(client)
    db.session.get(Ticket, uuid.UUID(loser["ticket_id"])).merged_into_id = uuid.UUID(survivor["ticket_id"])
    db.session.commit()
    reply = post_inbound(client, inbound_payload(in_reply_to=loser_id)).get_json()
    assert reply["ticket_id"] == survivor["ticket_id"]
    by_subject = post_inbound(client, inbound_payload(subject=f"Re: [{loser['ticket_number']}]")).get_json()
    assert by_subject["ticket_id"] == survivor["ticket_id"]


def test_header_evidence_beats_subject_token(client, db):
    first, first_id = new_ticket(client)
    second, _ = new_ticket(client)
    reply = post_inbound(client, inbound_payload(
        in_reply_to=first_id, subject=f"Re: [{second['ticket_number']}]",
    )).get_json()
    assert reply["ticket_id"] == first["ticket_id"]


def test_ids_are_compared_without_case_but_kept_as_spelled(client, db):
    first = post_inbound(client, inbound_payload(message_id="<CAF+Xy=Q@Mail.Gmail.COM>")).get_json()
    assert db.session.scalar(select(Thread.rfc_message_id)) == "CAF+Xy=Q@Mail.Gmail.COM"
    registered = db.session.scalar(select(MessageId.message_id).where(MessageId.origin == "inbound"))
    assert registered == "caf+xy=q@mail.gmail.com"
    reply = post_inbound(client, inbound_payload(in_reply_to="<caf+xy=q@mail.gmail.com>", subject="Re: x")).get_json()
    assert reply["ticket_id"] == first["ticket_id"]


def acknowledgement_count(db) -> int:
    from sqlalchemy import func

    from echo.mail.models import OutboxMessage

    return db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.kind == "acknowledgement"))


def test_a_parent_retried_after_its_follow_up_joins_the_follow_ups_ticket(client, db):
    """Postmark retried the first message late: the follow-up, which refers to it, opened the ticket."""
    follow_up = post_inbound(client, inbound_payload(
        subject="Re: Export broken", text="Any news on this?", message_id="<second@mail.example.com>",
        in_reply_to="<First@mail.example.com>", references="<First@mail.example.com>")).get_json()
    assert follow_up["status"] == "created"
    parent = post_inbound(client, inbound_payload(subject="Export broken", message_id="<First@mail.example.com>"))
    assert parent.get_json()["status"] == "appended" and parent.get_json()["ticket_id"] == follow_up["ticket_id"]
    assert acknowledgement_count(db) == 1  # one conversation, one acknowledgement
    registered = db.session.get(MessageId, "first@mail.example.com")
    assert registered.origin == "inbound" and str(registered.thread_id) == parent.get_json()["thread_id"]
    third = post_inbound(client, inbound_payload(in_reply_to="<first@mail.example.com>", subject="Re: x")).get_json()
    assert third["ticket_id"] == follow_up["ticket_id"]


def test_a_late_parent_from_someone_else_does_not_join(client, db):
    follow_up = post_inbound(client, inbound_payload(in_reply_to="<p@mail.example.com>", subject="Re: a")).get_json()
    stranger = post_inbound(client, inbound_payload(sender="mallory@example.net", message_id="<p@mail.example.com>"))
    assert stranger.get_json()["ticket_id"] != follow_up["ticket_id"]


def test_an_unauthenticated_sender_cannot_make_a_late_message_join(client, db):
    """A forged follow-up must not lay a trap that the customer's real message later falls into."""
    forged = post_inbound(client, inbound_payload(
        in_reply_to="<real@mail.example.com>", subject="Re: a",
        headers={"Received-SPF": "fail (example.com: domain does not designate 203.0.113.9)"})).get_json()
    real = post_inbound(client, inbound_payload(message_id="<real@mail.example.com>")).get_json()
    assert real["ticket_id"] != forged["ticket_id"] and real["status"] == "created"
