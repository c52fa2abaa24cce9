"""The inbox list: its counts stay bounded however many tickets there are."""

import uuid
from datetime import timedelta

from sqlalchemy import insert

from echo.db import utcnow
from echo.tickets.models import Ticket
from echo.tickets.queries import COUNT_CAP, TicketFilters, list_tickets, status_counts
from tests.factories import CustomerFactory


def test_a_huge_inbox_is_counted_up_to_the_cap(db, client, agent_token):
    customer = CustomerFactory()
    now = utcnow()
    db.session.execute(insert(Ticket), [
        {"id": uuid.uuid4(), "customer_id": customer.id, "status": "open", "source": "email", "subject": f"T {n}",
         "updated_at": now - timedelta(seconds=n), "created_at": now, "status_changed_at": now}
        for n in range(COUNT_CAP + 5)
    ])
    db.session.commit()
    page = list_tickets(TicketFilters(per_page=25))
    assert page.capped and page.total == COUNT_CAP
    assert [t.subject for t in page.tickets] == [f"T {n}" for n in range(25)]
    assert status_counts(TicketFilters())["open"] == COUNT_CAP + 1  # the tab shows "10000+"
    _, headers = agent_token()
    body = client.get("/api/v1/agent/tickets?per_page=5", headers=headers).get_json()
    assert body["total"] == COUNT_CAP and body["total_exact"] is False
    small = list_tickets(TicketFilters(status="pending"))
    assert not small.capped and small.total == 0
