"""An agent works a ticket in the browser: reply, note, assign, status — on the page, in the database, by mail."""

import pytest
from sqlalchemy import select

from echo.agents.service import ensure_agent
from echo.tickets.models import Thread, Ticket
from tests.mailbuilder import inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

REPLY = "Hi Alice, the export is fixed now. Please try again from Settings."
NOTE = "Internal only: she is on the legacy plan, do not mention pricing."


def test_reply_note_assign_and_status_from_the_ticket_page(signed_in, client, db, run_jobs, postmark, js_errors):
    """Each action shows on the page and in the database; only the reply (and the acknowledgement) is mailed."""
    page = signed_in
    assert post_inbound(client, inbound_payload(subject="Export button does nothing")).status_code == 200
    colleague = ensure_agent("sam@raxx.app", "Sam Colleague", "ops")
    db.session.commit()

    page.goto("/tickets")
    page.locator('.row[data-number="TKT-0001"]').click()
    page.wait_for_url("**/tickets/TKT-0001")
    expect(page.locator("h1")).to_contain_text("Export button does nothing")

    page.fill("#reply-body", REPLY)
    page.click("#send-reply")
    expect(page.locator(".banner.ok")).to_have_text("Reply queued. It leaves in a moment.")
    expect(page.locator("article.message.reply .body")).to_have_text(REPLY)

    page.fill("#note-body", NOTE)
    page.click("#add-note")
    expect(page.locator(".banner.ok")).to_have_text("Note added.")
    expect(page.locator("article.message.note .body")).to_have_text(NOTE)

    page.select_option("#assignee-select", "sam@raxx.app")
    page.click("#assign")
    expect(page.locator(".banner.ok")).to_have_text("Assignment updated.")
    expect(page.locator("#assignee-select")).to_have_value("sam@raxx.app")

    page.select_option("#status-select", "resolved")
    page.click("#set-status")
    expect(page.locator(".banner.ok")).to_have_text("Status updated.")
    expect(page.locator("h1 .badge")).to_have_text("resolved")

    page.reload()  # what the server stored, not just what the last fragment said
    expect(page.locator("h1 .badge")).to_have_text("resolved")
    expect(page.locator("article.message")).to_have_count(3)

    db.session.expire_all()
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == "TKT-0001"))
    assert ticket.status == "resolved" and ticket.assigned_to == colleague.id
    threads = db.session.scalars(
        select(Thread).where(Thread.ticket_id == ticket.id).order_by(Thread.created_at)).all()
    assert [t.direction for t in threads] == ["inbound", "outbound", "internal"]
    assert REPLY in threads[1].body_text and NOTE in threads[2].body_text

    run_jobs()
    to_customer = [m for m in postmark.sent if m["To"] == "alice@example.com"]
    assert len(to_customer) == 2
    [reply] = [m for m in to_customer if REPLY in m["TextBody"]]
    [acknowledgement] = [m for m in to_customer if m is not reply]
    assert {"Name": "Auto-Submitted", "Value": "auto-replied"} in acknowledgement["Headers"]
    assert "Auto-Submitted" not in {h["Name"] for h in reply["Headers"]}
    assert [m["To"] for m in postmark.sent if m not in to_customer] == ["sam@raxx.app"]  # the assignment notice
    assert not any(NOTE in str(m) or "legacy plan" in str(m) for m in postmark.sent)
    assert js_errors == []


def test_control_enter_sends_the_reply_being_typed(signed_in, client, db, js_errors):
    page = signed_in
    assert post_inbound(client, inbound_payload(subject="Export button does nothing")).status_code == 200
    page.goto("/tickets/TKT-0001")
    page.fill("#reply-body", REPLY)
    page.press("#reply-body", "Control+Enter")
    expect(page.locator(".banner.ok")).to_have_text("Reply queued. It leaves in a moment.")
    expect(page.locator("article.message.reply .body")).to_have_text(REPLY)
    db.session.expire_all()
    assert db.session.scalar(select(Thread.body_text).where(Thread.direction == "outbound")) == REPLY
