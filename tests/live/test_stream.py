"""The live event stream: every ticket change, in an order a reconnecting client can resume from exactly,
to agents in full and to each customer only their own support replies and status changes."""

import json
import queue
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, text

from echo.live import stream
from echo.live.hub import hub
from echo.live.stream import Cursor
from tests.live import take
from tests.mailbuilder import inbound_payload, post_inbound


class Listener:
    """An SSE client on the app's test client, read in a thread: events as they arrive."""

    def __init__(self, app, path, headers=None, last_id=None):
        self.events: queue.Queue = queue.Queue()
        self.closed = False
        headers = dict(headers or {})
        if last_id:
            headers["Last-Event-ID"] = last_id
        self.response = app.test_client().get(path, headers=headers, buffered=False)
        assert self.response.status_code == 200, self.response.get_data(as_text=True)
        assert self.response.mimetype == "text/event-stream"
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        buffer = ""
        try:
            for chunk in self.response.response:
                if self.closed:
                    break
                buffer += chunk.decode() if isinstance(chunk, bytes) else chunk
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line
                                  and not line.startswith(":"))
                    if "data" in fields and fields.get("event", "message") == "message":
                        self.events.put(json.loads(fields["data"]))
        finally:
            self.response.close()  # from this thread: the generator is not running now

    def take(self, count, timeout=10.0):
        return take(self.events, count, timeout)

    def quiet(self, seconds=2.5):
        """Nothing more arrives for a while (the hub reads the log at least every two seconds)."""
        return self.take(1, timeout=seconds) == []

    def close(self):
        """Stop listening (the server's stream ends at its next keep-alive)."""
        self.closed = True


@pytest.fixture
def listen(app):
    opened = []

    def make(path="/api/v1/agent/events", **kwargs):
        listener = Listener(app, path, **kwargs)
        opened.append(listener)
        return listener

    yield make
    for listener in opened:
        listener.close()


def test_an_agent_stream_carries_ticket_changes_without_their_text(client, db, agent_token, listen):
    _, headers = agent_token()
    events = listen(headers=headers)
    time.sleep(0.2)
    assert post_inbound(client, inbound_payload(subject="Export fails", text="secret words")).status_code == 200
    created = events.take(1)
    assert [e["kind"] for e in created] == ["created"] and created[0]["ticket"] == "TKT-0001"
    assert "secret words" not in json.dumps(created)
    client.patch("/api/v1/agent/tickets/TKT-0001", headers=headers, json={"status": "pending"})
    status = events.take(1)
    assert status[0]["kind"] == "status" and (status[0]["old"], status[0]["new"]) == ("open", "pending")


def test_a_client_that_reconnects_gets_exactly_what_it_missed(client, db, agent_token, listen):
    _, headers = agent_token()
    first = listen(headers=headers)
    time.sleep(0.2)
    post_inbound(client, inbound_payload(sender="a@example.com", subject="One"))
    seen = first.take(1)
    first.close()
    for i in range(3):  # while it is away
        post_inbound(client, inbound_payload(sender=f"b{i}@example.com", subject=f"Away {i}"))
    again = listen(headers=headers, last_id=seen[0]["id"])
    missed = again.take(3)
    assert [e["ticket"] for e in missed] == ["TKT-0002", "TKT-0003", "TKT-0004"]
    assert again.quiet()  # and nothing twice
    post_inbound(client, inbound_payload(sender="c@example.com", subject="After"))
    assert [e["ticket"] for e in again.take(1)] == ["TKT-0005"]


def test_a_customer_stream_carries_only_their_own_replies_and_status(client, db, agent_token, listen, app):
    from tests.portal.conftest import bearer

    _, headers = agent_token()
    post_inbound(client, inbound_payload(sender="alice@example.com", subject="Alice's"))
    post_inbound(client, inbound_payload(sender="bob@example.com", subject="Bob's"))
    events = listen("/api/v1/support/events", headers=bearer("alice@example.com"))
    time.sleep(0.2)
    for number in ("TKT-0001", "TKT-0002"):
        client.post(f"/api/v1/agent/tickets/{number}/notes", headers=headers, json={"body_text": "internal"})
        client.patch(f"/api/v1/agent/tickets/{number}", headers=headers,
                     json={"assignee": None, "tags": ["vip"]})
        client.post(f"/api/v1/agent/tickets/{number}/replies", headers=headers,
                    json={"body_text": "Answer", "status": "resolved"})
    got = events.take(10, timeout=4)
    tickets = {e["ticket_id"] for e in got}
    assert len(tickets) == 1 and tickets == {str(_ticket_id(db, "TKT-0001"))}
    assert sorted(e["kind"] for e in got) == ["status_changed", "support_replied"]
    text_of_all = json.dumps(got)
    for leaked in ("internal", "vip", "assignee", "note", "Bob", "TKT-"):
        assert leaked not in text_of_all


def _ticket_id(db, number):
    from echo.tickets.models import Ticket

    return db.session.query(Ticket.id).filter_by(number=number).scalar()


def test_a_row_whose_transaction_is_still_running_holds_back_the_rows_after_it(database_url, app, db):
    """The invariant the resume rests on: rows are read in (xid, id) order, never past a running transaction."""
    engine = create_engine(database_url)
    ticket = uuid.uuid4()
    insert = text("INSERT INTO audit_log (actor, action, target_type, target_id, payload) "
                  "VALUES ('system', :action, 'ticket', :target, '{}') RETURNING id")
    with engine.connect() as reader:
        start = stream.head(reader)
        reader.commit()
    slow, quick = engine.connect(), engine.connect()
    try:
        slow.execute(text("SELECT pg_current_xact_id()"))  # the slow transaction has the older xid
        slow_id = slow.execute(insert, {"action": "tickets.slow", "target": str(ticket)}).scalar_one()
        quick.execute(insert, {"action": "tickets.quick", "target": str(ticket)})
        quick.commit()
        with engine.connect() as reader:
            assert stream.read_after(reader, start) == []  # the quick one waits for the slow one
        slow.commit()
        with engine.connect() as reader:
            rows = stream.read_after(reader, start)
        assert [r.action for r in rows] == ["tickets.slow", "tickets.quick"]
        assert rows[0].cursor.id == slow_id and rows[0].cursor < rows[1].cursor
        with engine.connect() as reader:
            assert stream.read_after(reader, rows[0].cursor)[0].action == "tickets.quick"
            assert stream.read_after(reader, rows[1].cursor) == []
    finally:
        slow.close()
        quick.close()
        engine.dispose()


def test_cursors_parse_only_their_own_shape():
    assert Cursor.parse("123-45") == Cursor(123, 45)
    for junk in (None, "", "abc", "12-", "-3", "1-2-3", "1-" + "9" * 100):
        assert Cursor.parse(junk) is None, junk


def test_the_hub_reads_on_a_timer_when_no_wake_up_comes(app, db, client):
    source = hub(app)
    source.start()
    before = source.cursor
    post_inbound(client, inbound_payload())
    ends = time.monotonic() + 5
    while source.cursor == before and time.monotonic() < ends:
        time.sleep(0.1)
    assert source.cursor > before
