"""A quarantined ticket (spam, a flood, a sender that failed authentication) is unavailable in the
portal by its id, exactly like a ticket that does not exist, until an agent releases it (issue 11.8)."""

import pytest
from sqlalchemy import func, select

from echo.actors import SYSTEM
from echo.tickets.models import Thread, Ticket
from echo.tickets.service import release_from_quarantine
from tests.mailbuilder import attachment, inbound_payload, post_inbound
from tests.portal.conftest import bearer

UNAVAILABLE = {"error": "not_found", "message": "This ticket is no longer available."}
ALICE = "alice@example.com"


@pytest.fixture
def held(client, db):
    """Alice's ticket with an attachment, then held by a guard; returns (ticket id, attachment id)."""
    body = post_inbound(client, inbound_payload(attachments=[attachment("a.txt", b"private", "text/plain")])).get_json()
    detail = client.get(f"/api/v1/support/tickets/{body['ticket_id']}", headers=bearer(ALICE)).get_json()
    file_id = detail["threads"][0]["attachments"][0]["id"]
    ticket = db.session.get(Ticket, body["ticket_id"])
    ticket.quarantined, ticket.quarantine_reason = True, "spam"
    db.session.commit()
    return body["ticket_id"], file_id


def test_a_quarantined_ticket_cannot_be_read_replied_to_resolved_or_downloaded(client, db, held):
    ticket_id, file_id = held
    headers = bearer(ALICE)
    answers = [
        client.get(f"/api/v1/support/tickets/{ticket_id}", headers=headers),
        client.post(f"/api/v1/support/tickets/{ticket_id}/replies", headers=headers, json={"body": "Me again"}),
        client.put(f"/api/v1/support/tickets/{ticket_id}/resolve", headers=headers),
        client.get(f"/api/v1/support/tickets/{ticket_id}/attachments/{file_id}", headers=headers),
    ]
    assert [(a.status_code, a.get_json()) for a in answers] == [(403, UNAVAILABLE)] * 4
    assert db.session.scalar(select(func.count()).select_from(Thread)) == 1  # the reply was not added
    ticket = db.session.get(Ticket, ticket_id)
    db.session.refresh(ticket)
    assert ticket.status == "open" and ticket.customer_read_at is not None  # only the read before the hold
    assert client.get("/api/v1/support/tickets", headers=headers).get_json()["total"] == 0


def test_released_it_is_the_customers_again(client, db, held):
    ticket_id, file_id = held
    release_from_quarantine(db.session.get(Ticket, ticket_id), actor=SYSTEM)
    db.session.commit()
    assert client.get(f"/api/v1/support/tickets/{ticket_id}", headers=bearer(ALICE)).status_code == 200
    assert client.get(f"/api/v1/support/tickets/{ticket_id}/attachments/{file_id}",
                      headers=bearer(ALICE)).status_code == 200


def test_mail_quarantined_as_spam_on_arrival_is_unavailable(client, db):
    body = post_inbound(client, inbound_payload(headers={"X-Spam-Score": "9.5"})).get_json()
    assert db.session.get(Ticket, body["ticket_id"]).quarantined
    response = client.get(f"/api/v1/support/tickets/{body['ticket_id']}", headers=bearer(ALICE))
    assert response.status_code == 403 and response.get_json() == UNAVAILABLE
