"""A customer's event stream carries nothing of anyone else: whatever agents do on whose tickets, what the
customer's view of the log yields names only their own tickets, only support's replies and status changes,
and no note, tag, assignee or other operator field (a property test, derandomised: it never fails by chance)."""

import json
import time
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from echo.customers.models import Customer
from echo.extensions import db as _db
from echo.live import stream
from echo.live.events import for_customer
from echo.tickets.models import Ticket
from tests.mailbuilder import inbound_payload, post_inbound


def readable_after(start):
    """Every row written so far, once the log can be read past them (any other writer in the cluster, such
    as a benchmark seeding beside the tests, holds reading back until it commits)."""
    with _db.engine.connect() as conn:
        last = int(conn.execute(text("SELECT max(xid)::text FROM audit_log")).scalar_one())
        ends = time.monotonic() + 120
        while stream.head(conn).xid < last and time.monotonic() < ends:
            conn.rollback()
            time.sleep(0.2)
        return stream.read_after(conn, start)


ACTIONS = st.lists(st.tuples(
    st.sampled_from(["reply", "note", "status", "tags", "assign", "customer_writes"]),
    st.sampled_from(["alice", "bob"]),
    st.sampled_from(["open", "pending", "resolved"]),
), min_size=1, max_size=8)


@given(actions=ACTIONS)
@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_a_customer_sees_only_their_own_replies_and_status(client, db, agent_token, actions):
    agent, headers = agent_token(email=f"agent-{uuid.uuid4().hex[:8]}@raxx.app")
    tag = uuid.uuid4().hex[:8]
    with _db.engine.connect() as conn:
        start = stream.head(conn)
    people = {name: f"{name}-{tag}@example.com" for name in ("alice", "bob")}
    numbers = {}
    for name, address in people.items():
        response = post_inbound(client, inbound_payload(sender=address, subject=f"{name} {tag}",
                                                        message_id=f"<{name}-{tag}@mail.example.com>"))
        numbers[name] = response.get_json()["ticket_number"]
    for action, whose, status in actions:
        number = numbers[whose]
        if action == "reply":
            sent = client.post(f"/api/v1/agent/tickets/{number}/replies", headers=headers,
                               json={"body_text": f"reply SECRET-{tag}", "status": status})
            assert sent.status_code == 201, sent.get_json()
        elif action == "note":
            client.post(f"/api/v1/agent/tickets/{number}/notes", headers=headers, json={"body_text": f"NOTE-{tag}"})
        elif action == "status":
            client.patch(f"/api/v1/agent/tickets/{number}", headers=headers, json={"status": status})
        elif action == "tags":
            client.patch(f"/api/v1/agent/tickets/{number}", headers=headers, json={"tags": [f"tag{tag}"]})
        elif action == "assign":
            client.patch(f"/api/v1/agent/tickets/{number}", headers=headers, json={"assignee": agent.email})
        else:
            post_inbound(client, inbound_payload(sender=people[whose], subject=f"Re: {whose} {tag}",
                                                 in_reply_to=f"<{whose}-{tag}@mail.example.com>"))
    alice = _db.session.query(Customer).filter_by(email=people["alice"]).one()
    mine = {str(t.id) for t in _db.session.query(Ticket).filter_by(customer_id=alice.id)}
    rows = readable_after(start)
    events = [event for row in rows if (event := for_customer(row, alice.id)) is not None]
    shown = json.dumps(events)
    assert {event["ticket_id"] for event in events} <= mine
    assert {event["kind"] for event in events} <= {"support_replied", "status_changed"}
    for leaked in (f"NOTE-{tag}", f"tag{tag}", agent.email, str(agent.id), people["bob"], "assignee", "actor",
                   "SECRET"):
        assert leaked not in shown
    replies = sum(1 for action, whose, _ in actions if action == "reply" and whose == "alice")
    assert sum(1 for e in events if e["kind"] == "support_replied") == replies  # and none of hers is missing
