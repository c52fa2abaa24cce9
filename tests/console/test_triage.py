"""The inbox as agents triage it: "All open" by default, tabs and counts that keep the other filters, a stable
order by the customer's latest message, a preview line, and empty states that say which view is empty."""

import re
from datetime import timedelta

from sqlalchemy import func, select, update

from echo.db import utcnow
from echo.tickets.models import Thread, Ticket
from tests.mailbuilder import inbound_payload, post_inbound


def subjects(html: str) -> list[str]:
    return re.findall(r'<span class="subject[^"]*">([^<]+)</span>', html)


def tab_count(html: str, label: str) -> int:
    found = re.search(rf">\s*{label} <span class=\"muted\">(\d+)</span>", html)
    assert found, f"no count on the {label} tab"
    return int(found.group(1))


def file_tickets(client, db):
    """Four conversations, written a minute apart, then triaged: one resolved, one closed."""
    for i, (subject, text) in enumerate([("Export fails", "The CSV export spins forever on my portfolio."),
                                         ("Login link", "The magic link never arrives."),
                                         ("Invoice copy", "Could I get last month's invoice?"),
                                         ("Thanks!", "All good now, thank you.")]):
        assert post_inbound(client, inbound_payload(sender=f"c{i}@example.com", subject=subject,
                                                    text=text)).status_code == 200
    now = utcnow()
    for number, minutes in (("TKT-0001", 40), ("TKT-0002", 30), ("TKT-0003", 20), ("TKT-0004", 10)):
        db.session.execute(update(Ticket).where(Ticket.number == number)
                           .values(last_customer_reply_at=now - timedelta(minutes=minutes)))
    db.session.execute(update(Ticket).where(Ticket.number == "TKT-0003").values(status="resolved"))
    db.session.execute(update(Ticket).where(Ticket.number == "TKT-0004").values(status="closed", updated_at=now))
    db.session.commit()


def test_the_default_view_is_all_open_and_all_includes_closed(signed_in, db):
    client, _, _ = signed_in()
    file_tickets(client, db)
    page = client.get("/tickets").get_data(as_text=True)
    assert subjects(page) == ["Login link", "Export fails"]  # open and pending only, newest customer message first
    assert tab_count(page, "All open") == 2 and tab_count(page, "Closed") == 1
    assert sorted(subjects(client.get("/tickets?status=all").get_data(as_text=True))) == [
        "Export fails", "Invoice copy", "Login link", "Thanks!"]
    assert subjects(client.get("/tickets?status=resolved").get_data(as_text=True)) == ["Invoice copy"]


def test_a_ticket_just_closed_does_not_jump_to_the_top(signed_in, db):
    client, _, _ = signed_in()
    file_tickets(client, db)  # TKT-0004 was closed a moment ago, its customer wrote 10 minutes ago
    everything = subjects(client.get("/tickets?status=all").get_data(as_text=True))
    assert everything == ["Thanks!", "Invoice copy", "Login link", "Export fails"]  # by the customer's message
    waiting = subjects(client.get("/tickets?status=all&sort=waiting").get_data(as_text=True))
    assert waiting == list(reversed(everything))
    latest = subjects(client.get("/tickets?status=all&sort=updated").get_data(as_text=True))
    assert latest[0] == "Thanks!"  # the last change of any kind, when the agent asks for it


def test_tabs_and_counts_keep_the_assignee_filter(signed_in, db):
    client, _, agent = signed_in()
    file_tickets(client, db)
    db.session.execute(update(Ticket).where(Ticket.number.in_(["TKT-0001", "TKT-0004"])).values(assigned_to=agent.id))
    db.session.commit()
    mine = client.get("/tickets?assignee=mine").get_data(as_text=True)
    assert subjects(mine) == ["Export fails"]
    assert tab_count(mine, "All open") == 1 and tab_count(mine, "Closed") == 1 and tab_count(mine, "Pending") == 0
    closed_tab = re.search(r'href="([^"]+)"[^>]*>\s*Closed', mine).group(1).replace("&amp;", "&")
    assert "assignee=mine" in closed_tab  # choosing a status keeps "Mine"
    assert subjects(client.get(closed_tab).get_data(as_text=True)) == ["Thanks!"]


def test_each_row_previews_the_latest_customer_message_and_says_who_waits(signed_in, db):
    client, _, _ = signed_in()
    file_tickets(client, db)
    page = client.get("/tickets").get_data(as_text=True)
    assert '<span class="preview">The CSV export spins forever on my portfolio.</span>' in page
    assert page.count("Waiting since") == 2  # both open tickets await an answer


def test_an_empty_view_says_which_view_is_empty(signed_in, db):
    client, _, _ = signed_in()
    file_tickets(client, db)
    assert "No open or pending tickets assigned to you." in client.get("/tickets?assignee=mine").get_data(as_text=True)
    assert "No pending tickets tagged “vip”." in client.get("/tickets?status=pending&tag=vip").get_data(as_text=True)
    assert "No open or pending tickets from nobody@example.com." in client.get(
        "/tickets?customer=nobody@example.com").get_data(as_text=True)
    assert subjects(client.get("/tickets?status=closed&assignee=none").get_data(as_text=True)) == ["Thanks!"]


def test_a_search_looks_through_every_status(signed_in, db):
    client, _, _ = signed_in()
    file_tickets(client, db)
    assert subjects(client.get("/tickets?q=thank").get_data(as_text=True)) == ["Thanks!"]  # closed, still found
    assert subjects(client.get("/tickets?q=thank&status=open").get_data(as_text=True)) == []


def test_the_agent_api_takes_the_same_views_and_orders(client, db, agent_token):
    _, headers = agent_token()
    file_tickets(client, db)
    active = client.get("/api/v1/agent/tickets?status=active&sort=waiting", headers=headers).get_json()
    assert [t["number"] for t in active["tickets"]] == ["TKT-0001", "TKT-0002"]


def test_an_agent_starts_a_conversation_from_the_console(signed_in, db, run_jobs, postmark):
    client, token, _ = signed_in()
    assert "New conversation" in client.get("/tickets").get_data(as_text=True)
    assert client.get("/tickets/new").status_code == 200
    refused = client.post("/tickets/new", data={"csrf_token": token, "customer_email": "dana at example",
                                                "subject": "Your refund", "body": "It went out today."})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "Customer email" in page and "Your refund" in page  # typed text kept
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    started = client.post("/tickets/new", data={"csrf_token": token, "customer_email": "dana@example.com",
                                                "customer_name": "Dana", "subject": "Your refund",
                                                "body": "It went out today."})
    assert started.status_code == 302 and started.headers["Location"].endswith("/tickets/TKT-0001")
    run_jobs()
    assert [(m["To"], m["Subject"]) for m in postmark.sent] == [("dana@example.com", "Your refund [TKT-0001]")]
    assert "Your refund" in client.get("/tickets/TKT-0001").get_data(as_text=True)


def test_bulk_actions_from_the_list(signed_in, db):
    client, token, _ = signed_in()
    file_tickets(client, db)
    response = client.post("/tickets/bulk", headers={"HX-Request": "true",
                                                     "HX-Current-URL": "https://help.raxx.app/tickets"},
                           data={"csrf_token": token, "action": "status:resolved",
                                 "tickets": ["TKT-0001", "TKT-0002"]})
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "2 tickets updated." in html
    assert subjects(html) == []  # the list again, for the view the agent is in: nothing open is left
    nothing = client.post("/tickets/bulk", headers={"HX-Request": "true"},
                          data={"csrf_token": token, "action": "status:open", "tickets": ["TKT-0001", "TKT-0404"]})
    assert nothing.status_code == 404 and "TKT-0404" in nothing.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(Ticket.status).where(Ticket.number == "TKT-0001")) == "resolved"


def test_snoozed_tickets_have_their_own_view(signed_in, db):
    client, token, _ = signed_in()
    file_tickets(client, db)
    response = client.post("/tickets/TKT-0002/snooze", data={"csrf_token": token, "until": "tomorrow"},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Snoozed until" in response.get_data(as_text=True)
    assert subjects(client.get("/tickets").get_data(as_text=True)) == ["Export fails"]
    snoozed = client.get("/tickets?snoozed=1").get_data(as_text=True)
    assert subjects(snoozed) == ["Login link"] and tab_count_view(snoozed, "Snoozed") == 1
    client.post("/tickets/TKT-0002/snooze", data={"csrf_token": token, "until": "wake"},
                headers={"HX-Request": "true"})
    assert "No snoozed tickets." in client.get("/tickets?snoozed=1").get_data(as_text=True)


def tab_count_view(html: str, label: str) -> int:
    found = re.search(rf">{label} <span class=\"muted\">(\d+)</span>", html)
    assert found, f"no count on the {label} view"
    return int(found.group(1))


def test_the_ticket_page_shows_its_activity(signed_in, db):
    client, token, _ = signed_in()
    file_tickets(client, db)
    client.post("/tickets/TKT-0001/status", data={"csrf_token": token, "status": "pending"},
                headers={"HX-Request": "true"})
    client.post("/tickets/TKT-0001/assign", data={"csrf_token": token, "assignee": "demo@echo.local"},
                headers={"HX-Request": "true"})
    client.post("/tickets/TKT-0001/tags", data={"csrf_token": token, "tags": "export, bug"},
                headers={"HX-Request": "true"})
    page = client.get("/tickets/TKT-0001").get_data(as_text=True)
    timeline = page[page.index("<h2>Activity</h2>"):]
    assert "Demo Agent changed the status from open to pending" in timeline
    assert "Demo Agent assigned it to Demo Agent" in timeline
    assert "Demo Agent tags: added export, bug" in timeline


def test_view_original_is_sandboxed(signed_in, db):
    client, _, _ = signed_in()
    html = ('<table><tr><td>Order</td><td>#1042</td></tr></table><p><a href="https://shop.example/o/1042">'
            'your order</a><script>alert(1)</script><img src="https://tracker.example/p.gif"></p>')
    assert post_inbound(client, inbound_payload(html=html)).status_code == 200
    thread_id = db.session.scalar(select(Thread.id))
    page = client.get("/tickets/TKT-0001").get_data(as_text=True)
    assert f'src="/tickets/TKT-0001/threads/{thread_id}/original"' in page and 'sandbox="allow-popups' in page
    original = client.get(f"/tickets/TKT-0001/threads/{thread_id}/original")
    body = original.get_data(as_text=True)
    csp = original.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert "<td>#1042</td>" in body and 'href="https://shop.example/o/1042"' in body
    assert "<script" not in body and " src=\"https://tracker.example" not in body  # remote image still held
    assert client.get("/tickets/TKT-0001/threads/00000000-0000-0000-0000-000000000000/original").status_code == 404


def test_quarantine_actions_from_the_ticket(signed_in, db):
    client, token, _ = signed_in()
    file_tickets(client, db)
    marked = client.post("/tickets/TKT-0001/spam", data={"csrf_token": token, "block": "1"},
                         headers={"HX-Request": "true"})
    page = marked.get_data(as_text=True)
    assert "Marked as spam; the sender is blocked." in page and "Unblock c0@example.com" in page
    assert "Export fails" not in subjects(client.get("/tickets").get_data(as_text=True))
    assert "Export fails" in subjects(client.get("/tickets?quarantined=1&status=all").get_data(as_text=True))
    gone = client.post("/tickets/TKT-0001/delete", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert gone.status_code == 204 and gone.headers["HX-Redirect"] == "/tickets?quarantined=1"
    assert client.get("/tickets/TKT-0001").status_code == 404
