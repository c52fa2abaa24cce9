"""What a customer's mail does to a ticket's status (SPEC §4.7)."""

import uuid

import pytest
from sqlalchemy import select

from echo.tickets.models import Thread, Ticket
from echo.tickets.queries import TicketFilters, list_tickets
from tests.mailbuilder import inbound_payload, post_inbound


def open_ticket(client):
    message_id = f"<{uuid.uuid4().hex}@mail.example.com>"
    body = post_inbound(client, inbound_payload(message_id=message_id)).get_json()
    return uuid.UUID(body["ticket_id"]), message_id


def set_status(db, ticket_id, status):
    ticket = db.session.get(Ticket, ticket_id)
    ticket.status = status
    db.session.commit()


@pytest.mark.parametrize("status", ["pending", "resolved"])
def test_customer_reply_reopens(client, db, status):
    ticket_id, message_id = open_ticket(client)
    set_status(db, ticket_id, status)
    post_inbound(client, inbound_payload(in_reply_to=message_id))
    db.session.expire_all()
    ticket = db.session.get(Ticket, ticket_id)
    assert ticket.status == "open" and ticket.closed_at is None


def test_reply_to_closed_ticket_starts_a_linked_new_ticket(client, db):
    ticket_id, message_id = open_ticket(client)
    set_status(db, ticket_id, "closed")
    result = post_inbound(client, inbound_payload(in_reply_to=message_id, subject="Re: still broken")).get_json()
    assert result["status"] == "created"
    new = db.session.get(Ticket, uuid.UUID(result["ticket_id"]))
    assert new.previous_ticket_id == ticket_id and new.status == "open"
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status == "closed"


def test_auto_reply_never_reopens(client, db):
    ticket_id, message_id = open_ticket(client)
    set_status(db, ticket_id, "pending")
    result = post_inbound(client, inbound_payload(
        in_reply_to=message_id, headers={"Auto-Submitted": "auto-replied"}, subject="Out of office",
    )).get_json()
    assert result["ticket_id"] == str(ticket_id)
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status == "pending"
    assert db.session.get(Thread, uuid.UUID(result["thread_id"])).is_auto_reply


def test_spam_reply_never_reopens_and_is_quarantined(client, db):
    ticket_id, message_id = open_ticket(client)
    set_status(db, ticket_id, "resolved")
    result = post_inbound(client, inbound_payload(in_reply_to=message_id, headers={"X-Spam-Score": "9.3"})).get_json()
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id).status == "resolved"
    assert db.session.get(Thread, uuid.UUID(result["thread_id"])).quarantined


def test_reply_moves_ticket_activity_forward(client, db):
    ticket_id, message_id = open_ticket(client)
    before = db.session.get(Ticket, ticket_id)
    updated, replied = before.updated_at, before.last_customer_reply_at
    post_inbound(client, inbound_payload(in_reply_to=message_id, text="The zanzibarish report is still empty."))
    db.session.expire_all()
    after = db.session.get(Ticket, ticket_id)
    assert after.updated_at > updated and after.last_customer_reply_at > replied and after.status == "open"
    # The activity stamp and the search document's trigger both update the ticket in that statement.
    assert [t.id for t in list_tickets(TicketFilters(q="zanzibarish")).tickets] == [ticket_id]
    assert len(db.session.scalars(select(Thread).where(Thread.ticket_id == ticket_id)).all()) == 2
