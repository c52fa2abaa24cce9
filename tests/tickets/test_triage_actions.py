"""Triage through the agent API: bulk actions, snooze, spam, blocked senders, delete and purge, merge and its undo."""

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from echo.attachments.models import Attachment
from echo.db import utcnow
from echo.mail.models import OutboxMessage
from echo.tickets import tasks
from echo.tickets.models import BlockedSender, MessageId, Thread, Ticket
from tests.factories import AgentFactory
from tests.mailbuilder import attachment, inbound_payload, post_inbound
from tests.tickets.test_workflow import api


def file(client, count, sender="c{}@example.com"):
    for i in range(count):
        assert post_inbound(client, inbound_payload(sender=sender.format(i), subject=f"Q{i}",
                                                    message_id=f"<q{i}-{sender.format(i)}>")).status_code == 200


def statuses(db) -> dict[str, str]:
    db.session.expire_all()
    return dict(db.session.execute(select(Ticket.number, Ticket.status)).all())


def test_bulk_status_assign_and_tag(client, db, agent_token, run_jobs, postmark):
    _, headers = agent_token()
    AgentFactory(email="sam@raxx.app", display_name="Sam")
    file(client, 4)
    done = api(client, headers, "POST", "/tickets/bulk",
               json={"tickets": ["TKT-0001", "tkt-2", "3"], "action": "status", "value": "resolved"})
    assert done.status_code == 200 and done.get_json() == {"changed": ["TKT-0001", "TKT-2", "3"], "skipped": []}
    assert statuses(db) == {"TKT-0001": "resolved", "TKT-0002": "resolved", "TKT-0003": "resolved",
                            "TKT-0004": "open"}
    assigned = api(client, headers, "POST", "/tickets/bulk",
                   json={"tickets": ["TKT-0001", "TKT-0004"], "action": "assign", "value": "sam@raxx.app"})
    assert assigned.status_code == 200
    api(client, headers, "POST", "/tickets/bulk", json={"tickets": ["TKT-0004"], "action": "tag", "value": "VIP"})
    db.session.expire_all()
    four = db.session.scalar(select(Ticket).where(Ticket.number == "TKT-0004"))
    assert four.assignee.email == "sam@raxx.app" and four.tags == ["vip"]
    run_jobs()
    assert sum(1 for m in postmark.sent if m["To"] == "sam@raxx.app") == 2  # each assignment told, as one by one


def test_bulk_naming_a_missing_or_merged_ticket_changes_nothing(client, db, agent_token):
    _, headers = agent_token()
    file(client, 2, sender="same@example.com")
    assert api(client, headers, "POST", "/tickets/TKT-0001/merge", json={"into": "TKT-0002"}).status_code == 200
    for tickets, problem in ((["TKT-0002", "TKT-9999"], "no such ticket"), (["TKT-0002", "TKT-0001"],
                                                                           "merged into another")):
        refused = api(client, headers, "POST", "/tickets/bulk",
                      json={"tickets": tickets, "action": "status", "value": "closed"})
        body = refused.get_json()
        assert refused.status_code == 404 and body["error"] == "unknown_tickets"
        assert body["details"] == [{"ticket": tickets[1], "problem": problem}]
    assert statuses(db)["TKT-0002"] == "open"
    for bad in ({"tickets": [], "action": "status", "value": "open"},
                {"tickets": ["TKT-0002"], "action": "explode"},
                {"tickets": ["TKT-0002"], "action": "status", "value": "gone"},
                {"tickets": ["TKT-0002"], "action": "assign", "value": "nobody@raxx.app"},
                {"tickets": ["TKT-0002"], "action": "snooze", "until": "2020-01-01T00:00:00Z"}):
        response = api(client, headers, "POST", "/tickets/bulk", json=bad)
        assert 400 <= response.status_code < 500 and "error" in response.get_json(), bad
    assert statuses(db)["TKT-0002"] == "open"


def test_bulk_skips_and_names_what_cannot_take_the_action(client, db, agent_token):
    _, headers = agent_token()
    file(client, 2)
    api(client, headers, "PATCH", "/tickets/TKT-0002", json={"status": "closed"})
    until = (utcnow() + timedelta(days=1)).isoformat()
    result = api(client, headers, "POST", "/tickets/bulk",
                 json={"tickets": ["TKT-0001", "TKT-0002"], "action": "snooze", "until": until}).get_json()
    assert result["changed"] == ["TKT-0001"]
    assert result["skipped"] == [{"ticket": "TKT-0002", "reason": "a closed ticket cannot be snoozed"}]


def test_a_snoozed_ticket_leaves_the_open_views_and_comes_back_to_its_assignee(client, db, agent_token, call_task,
                                                                              run_jobs, postmark):
    agent, headers = agent_token()
    file(client, 2)
    sam = AgentFactory(email="sam@raxx.app", display_name="Sam")
    api(client, headers, "PATCH", "/tickets/TKT-0001", json={"assignee": sam.email, "status": "pending"})
    until = utcnow() + timedelta(hours=4)
    snoozed = api(client, headers, "POST", "/tickets/TKT-0001/snooze", json={"until": until.isoformat()})
    assert snoozed.status_code == 200 and snoozed.get_json()["snoozed_until"]
    active = api(client, headers, "GET", "/tickets?status=active").get_json()
    assert [t["number"] for t in active["tickets"]] == ["TKT-0002"]
    run_jobs()
    postmark.sent.clear()
    assert call_task(tasks.wake_snoozed) == 0
    with time_machine.travel(until + timedelta(seconds=5), tick=False):
        assert call_task(tasks.wake_snoozed) == 1
        run_jobs()
    db.session.expire_all()
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == "TKT-0001"))
    assert ticket.snoozed_until is None and ticket.status == "open"
    assert [m["Subject"] for m in postmark.sent if m["To"] == "sam@raxx.app"] == ["[TKT-0001] Back from snooze: Q0"]


def test_a_customer_reply_wakes_a_snoozed_ticket(client, db, agent_token):
    _, headers = agent_token()
    file(client, 1)
    api(client, headers, "POST", "/tickets/TKT-0001/snooze",
        json={"until": (utcnow() + timedelta(days=2)).isoformat()})
    again = inbound_payload(sender="c0@example.com", subject="Re: Q0", in_reply_to="<q0-c0@example.com>")
    assert post_inbound(client, again).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(Ticket.snoozed_until).where(Ticket.number == "TKT-0001")) is None


def test_a_snooze_in_the_past_or_without_a_zone_is_refused(client, db, agent_token):
    _, headers = agent_token()
    file(client, 1)
    for until in ("2020-01-01T00:00:00Z", "2030-01-01T09:00:00", "next week"):
        response = api(client, headers, "POST", "/tickets/TKT-0001/snooze", json={"until": until})
        assert response.status_code == 422, until
    db.session.expire_all()
    assert db.session.scalar(select(Ticket.snoozed_until)) is None


def test_spam_with_block_quarantines_the_senders_next_mail_silently(client, db, agent_token, run_jobs, postmark):
    _, headers = agent_token()
    file(client, 1, sender="spammer@example.com")
    run_jobs()
    postmark.sent.clear()
    marked = api(client, headers, "POST", "/tickets/TKT-0001/spam", json={"block": True})
    assert marked.status_code == 200 and marked.get_json()["quarantine_reason"] == "spam"
    assert db.session.get(BlockedSender, "spammer@example.com") is not None
    response = post_inbound(client, inbound_payload(sender="Spammer@Example.com", subject="Buy now"))
    assert response.status_code == 200  # kept, never refused
    run_jobs()
    db.session.expire_all()
    second = db.session.scalar(select(Ticket).where(Ticket.number == "TKT-0002"))
    assert second.quarantined and second.quarantine_reason == "blocked"
    assert postmark.sent == []  # never acknowledged
    api(client, headers, "POST", "/tickets/TKT-0002/release", json={})
    run_jobs()
    assert postmark.sent == []  # and not on release either


def test_delete_moves_to_the_quarantine_and_a_second_delete_purges(client, db, agent_token):
    _, headers = agent_token()
    payload = inbound_payload(sender="junk@example.com", subject="Junk",
                              attachments=[attachment("a.txt", b"bytes", "text/plain")])
    assert post_inbound(client, payload).status_code == 200
    file(client, 1)
    deleted = api(client, headers, "DELETE", "/tickets/TKT-0001")
    assert deleted.status_code == 200 and deleted.get_json()["quarantine_reason"] == "deleted"
    active = api(client, headers, "GET", "/tickets?status=active").get_json()
    assert [t["number"] for t in active["tickets"]] == ["TKT-0002"]
    ticket_id = db.session.scalar(select(Ticket.id).where(Ticket.number == "TKT-0001"))
    purged = api(client, headers, "DELETE", "/tickets/TKT-0001")
    assert purged.status_code == 204
    db.session.expire_all()
    assert db.session.get(Ticket, ticket_id) is None
    for model, column in ((Thread, Thread.ticket_id), (MessageId, MessageId.ticket_id),
                          (OutboxMessage, OutboxMessage.ticket_id)):
        assert db.session.scalar(select(func.count()).select_from(model).where(column == ticket_id)) == 0
    assert db.session.scalar(select(func.count()).select_from(Attachment)) == 0
    assert api(client, headers, "GET", "/tickets/TKT-0001").status_code == 404
    assert api(client, headers, "GET", "/tickets/TKT-0002").status_code == 200


def test_a_merge_can_be_undone(client, db, agent_token):
    _, headers = agent_token(role="ops")
    file(client, 2, sender="same@example.com")  # TKT-0001 and TKT-0002, same customer, both open
    api(client, headers, "PATCH", "/tickets/TKT-0002", json={"status": "resolved", "tags": ["billing"]})
    api(client, headers, "PATCH", "/tickets/TKT-0001", json={"tags": ["export"]})
    merged = api(client, headers, "POST", "/tickets/TKT-0001/merge", json={"into": "TKT-0002"}).get_json()
    assert merged["status"] == "open" and sorted(merged["tags"]) == ["billing", "export"]
    # Mail to the merged conversation lands on the survivor while merged.
    late = inbound_payload(sender="same@example.com", subject="Re: Q0", in_reply_to="<q0-same@example.com>",
                           text="One more thing.")
    assert post_inbound(client, late).status_code == 200
    undone = api(client, headers, "POST", "/tickets/TKT-0001/unmerge", json={})
    assert undone.status_code == 200
    body = undone.get_json()
    assert body["number"] == "TKT-0001" and body["status"] == "open" and body["merged_into"] is None
    assert [t["body_text"] for t in body["threads"]] == [inbound_payload()["TextBody"]]
    survivor = api(client, headers, "GET", "/tickets/TKT-0002").get_json()
    assert survivor["status"] == "resolved" and survivor["tags"] == ["billing"]
    assert [t["body_text"] for t in survivor["threads"]][-1] == "One more thing."  # what came since stays
    # The source's message ids are its own again: a reply to its first message threads onto it.
    again = inbound_payload(sender="same@example.com", subject="Re: Q0", in_reply_to="<q0-same@example.com>",
                            text="And another.")
    assert post_inbound(client, again).get_json()["ticket_number"] == "TKT-0001"
    refused = api(client, headers, "POST", "/tickets/TKT-0001/unmerge", json={})
    assert refused.status_code == 409 and refused.get_json()["error"] == "cannot_unmerge"
