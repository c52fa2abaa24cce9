"""Opening a ticket is an event of the log ("Ana is viewing"), at most every few minutes per agent and ticket."""

from datetime import timedelta

import time_machine
from sqlalchemy import select

from echo.audit.models import AuditLog
from echo.db import utcnow
from echo.live import stream
from echo.live.events import for_agents
from tests.mailbuilder import inbound_payload, post_inbound


def test_opening_a_ticket_is_a_viewing_event_once_every_few_minutes(signed_in, db):
    client, _, me = signed_in()
    post_inbound(client, inbound_payload())
    with db.engine.connect() as conn:
        start = stream.head(conn)
    for _ in range(3):
        assert client.get("/tickets/TKT-0001").status_code == 200
    viewed = db.session.scalars(select(AuditLog).where(AuditLog.action == "tickets.viewed")).all()
    assert len(viewed) == 1 and viewed[0].actor == f"agent:{me.id}"
    with time_machine.travel(utcnow() + timedelta(minutes=6), tick=False):
        client.get("/tickets/TKT-0001")
    assert len(db.session.scalars(select(AuditLog).where(AuditLog.action == "tickets.viewed")).all()) == 2
    with db.engine.connect() as conn:
        events = [for_agents(row) for row in stream.read_after(conn, start)]
    assert [e["kind"] for e in events if e] == ["viewing", "viewing"]
