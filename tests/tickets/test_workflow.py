"""Ticket workflow through the agent API: status, assignment, tags, category, merge, auto-close."""

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from echo.audit.models import AuditLog
from echo.db import utcnow
from echo.tickets.models import Thread, Ticket
from echo.tickets.tasks import auto_close
from tests.factories import AgentFactory
from tests.mailbuilder import inbound_payload, post_inbound


def api(client, headers, method, path, **kwargs):
    return client.open(f"/api/v1/agent{path}", method=method, headers=headers, **kwargs)


def audit_actions(db):
    return [a.action for a in db.session.scalars(select(AuditLog).order_by(AuditLog.id))]


def test_status_changes_stamp_closed_at_and_audit(client, db, agent_token):
    agent, headers = agent_token()
    post_inbound(client, inbound_payload())
    resolved = api(client, headers, "PATCH", "/tickets/TKT-0001", json={"status": "resolved"}).get_json()
    assert resolved["status"] == "resolved" and resolved["closed_at"]
    reopened = api(client, headers, "PATCH", "/tickets/TKT-0001", json={"status": "open"}).get_json()
    assert reopened["closed_at"] is None
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "tickets.status")).all()
    assert [(r.payload["old"], r.payload["new"]) for r in rows] == [("open", "resolved"), ("resolved", "open")]
    assert rows[0].actor == f"agent:{agent.id}"


def test_assignment_notifies_the_assignee_and_customer_replies_notify_again(
        client, db, run_jobs, postmark, agent_token):
    _, headers = agent_token()
    colleague = AgentFactory(email="sam@raxx.app")
    post_inbound(client, inbound_payload(message_id="<q1@mail.example.com>",
                                         headers={"Auto-Submitted": "auto-replied"}))
    body = api(client, headers, "PATCH", "/tickets/TKT-0001", json={"assignee": "Sam@Raxx.app"}).get_json()
    assert body["assignee"]["email"] == "sam@raxx.app"
    run_jobs()
    assert [m["To"] for m in postmark.sent] == ["sam@raxx.app"]
    assert postmark.sent[0]["Subject"] == f"[TKT-0001] Assigned to you: {body['subject']}"
    assert "Auto-Submitted" in {h["Name"] for h in postmark.sent[0]["Headers"]}

    post_inbound(client, inbound_payload(in_reply_to="<q1@mail.example.com>", text="any news?"))
    run_jobs()
    assert postmark.sent[-1]["To"] == "sam@raxx.app"
    assert "Customer replied" in postmark.sent[-1]["Subject"]

    assert api(client, headers, "PATCH", "/tickets/TKT-0001", json={"assignee": None}).get_json()["assignee"] is None
    unknown = api(client, headers, "PATCH", "/tickets/TKT-0001", json={"assignee": "ghost@raxx.app"})
    assert unknown.status_code == 422 and unknown.get_json()["error"] == "unknown_agent"
    colleague.active = False
    db.session.commit()
    inactive = api(client, headers, "PATCH", "/tickets/TKT-0001", json={"assignee": "sam@raxx.app"})
    assert inactive.status_code == 422


def test_tags_are_normalised_and_category_validated(client, db, agent_token):
    _, headers = agent_token()
    post_inbound(client, inbound_payload())
    body = api(client, headers, "PATCH", "/tickets/TKT-0001",
               json={"tags": [" Billing ", "billing", "VIP customer", "", "refund!"], "category": "billing"}).get_json()
    assert body["tags"] == ["billing", "vip-customer", "refund"] and body["category"] == "billing"
    assert api(client, headers, "GET", "/tickets?tag=vip-customer").get_json()["total"] == 1
    bad = api(client, headers, "PATCH", "/tickets/TKT-0001", json={"category": "gossip"})
    assert bad.status_code == 422
    removed = api(client, headers, "PATCH", "/tickets/TKT-0001", json={"tags": ["refund"]}).get_json()
    assert removed["tags"] == ["refund"]
    tag_rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "tickets.tags")).all()
    assert tag_rows[-1].payload == {"added": [], "removed": ["billing", "vip-customer"]}


def test_merge_moves_threads_and_both_numbers_resolve(client, db, agent_token, run_jobs):
    _, headers = agent_token(role="superadmin")
    post_inbound(client, inbound_payload(subject="first", message_id="<a1@mail.example.com>"))
    post_inbound(client, inbound_payload(subject="second", message_id="<b1@mail.example.com>"))
    merged = api(client, headers, "POST", "/tickets/TKT-0001/merge", json={"into": "TKT-0002"})
    assert merged.status_code == 200
    body = merged.get_json()
    assert body["number"] == "TKT-0002" and len(body["threads"]) == 2
    assert api(client, headers, "GET", "/tickets/TKT-0001").get_json()["number"] == "TKT-0002"
    later = post_inbound(client, inbound_payload(in_reply_to="<a1@mail.example.com>")).get_json()
    assert later["ticket_number"] == "TKT-0002"
    by_subject = post_inbound(client, inbound_payload(subject="Re: [TKT-0001]")).get_json()
    assert by_subject["ticket_number"] == "TKT-0002"
    assert "tickets.merge" in audit_actions(db)
    listed = api(client, headers, "GET", "/tickets").get_json()
    assert [t["number"] for t in listed["tickets"]] == ["TKT-0002"]


def test_merge_refuses_other_customers_and_itself(client, db, agent_token):
    _, admin = agent_token(role="ops")
    post_inbound(client, inbound_payload(sender="alice@example.com"))
    post_inbound(client, inbound_payload(sender="bob@example.com"))
    refused = api(client, admin, "POST", "/tickets/TKT-0001/merge", json={"into": "TKT-0002"})
    assert refused.status_code == 422 and refused.get_json()["error"] == "cannot_merge"
    itself = api(client, admin, "POST", "/tickets/TKT-0001/merge", json={"into": "TKT-0001"})
    assert itself.status_code == 422
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.ticket_id == Ticket.id)) is not None


def test_auto_close_after_fourteen_quiet_days(client, db, agent_token, run_jobs, postmark, call_task):
    _, headers = agent_token()
    post_inbound(client, inbound_payload(subject="stale", message_id="<s1@mail.example.com>"))
    post_inbound(client, inbound_payload(sender="bob@example.com", subject="active",
                                         message_id="<b1@mail.example.com>"))
    run_jobs()
    for number in ("TKT-0001", "TKT-0002"):
        api(client, headers, "POST", f"/tickets/{number}/replies", json={"body_text": "Does this help?"})
    run_jobs()
    sent_before = len(postmark.sent)
    with time_machine.travel(utcnow() + timedelta(days=10), tick=False):
        post_inbound(client, inbound_payload(sender="bob@example.com", in_reply_to="<b1@mail.example.com>"))
        api(client, headers, "POST", "/tickets/TKT-0002/replies", json={"body_text": "Try again?"})
        assert call_task(auto_close) == 0
    with time_machine.travel(utcnow() + timedelta(days=15), tick=False):
        assert call_task(auto_close) == 1
        assert call_task(auto_close) == 0  # idempotent
        run_jobs()
    statuses = {t.number: t.status for t in db.session.scalars(select(Ticket))}
    assert statuses == {"TKT-0001": "closed", "TKT-0002": "pending"}
    notices = [m for m in postmark.sent[sent_before:] if m["To"] == "alice@example.com"]
    assert len(notices) == 1 and "closed ticket TKT-0001" in notices[0]["TextBody"]
    assert "tickets.auto_close" in audit_actions(db)


def test_merging_an_open_ticket_into_a_resolved_one_reopens_the_survivor(client, db, agent_token):
    _, headers = agent_token(role="superadmin")
    post_inbound(client, inbound_payload(subject="first", message_id="<m1@mail.example.com>"))
    post_inbound(client, inbound_payload(subject="second", message_id="<m2@mail.example.com>"))
    api(client, headers, "PATCH", "/tickets/TKT-0002", json={"status": "resolved"})
    merged = api(client, headers, "POST", "/tickets/TKT-0001/merge", json={"into": "TKT-0002"}).get_json()
    assert merged["number"] == "TKT-0002" and merged["status"] == "open" and merged["closed_at"] is None
    rows = db.session.scalars(select(AuditLog).where(AuditLog.action == "tickets.status").order_by(AuditLog.id)).all()
    changes = {(str(r.target_id), r.payload["old"], r.payload["new"]) for r in rows[1:]}  # rows[0]: the resolve
    source, survivor = (db.session.scalar(select(Ticket.id).where(Ticket.number == n))
                        for n in ("TKT-0001", "TKT-0002"))
    assert changes == {(str(source), "open", "closed"), (str(survivor), "resolved", "open")}


def test_merging_a_resolved_ticket_into_another_resolved_one_keeps_it_resolved(client, db, agent_token):
    _, headers = agent_token(role="superadmin")
    post_inbound(client, inbound_payload(subject="first", message_id="<r1@mail.example.com>"))
    post_inbound(client, inbound_payload(subject="second", message_id="<r2@mail.example.com>"))
    for number in ("TKT-0001", "TKT-0002"):
        api(client, headers, "PATCH", f"/tickets/{number}", json={"status": "resolved"})
    merged = api(client, headers, "POST", "/tickets/TKT-0001/merge", json={"into": "TKT-0002"}).get_json()
    assert merged["status"] == "resolved"
    assert db.session.scalar(select(Ticket.status).where(Ticket.number == "TKT-0001")) == "closed"
