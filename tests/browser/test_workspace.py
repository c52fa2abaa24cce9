"""The agent's workspace in a real browser, on a phone (390x844) and a laptop (1280x800): drafts that survive a
reload and a lapsed session, undo send, Cc, saved replies, send and next, bulk actions and the keyboard, snooze,
quarantine, the sandboxed original, the team, the agent's time zone, the phone layout and Echo's error pages.

Each flow is checked on the page and, where it matters, in the database or in what reached the fake Postmark;
each keeps a screenshot as test-artifacts/screenshots/workspace-<flow>-<width>.png."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from echo.agents.models import Agent, AgentSession
from echo.agents.service import ensure_agent
from echo.db import utcnow
from echo.mail import tasks
from echo.mail.models import OutboxMessage
from echo.tickets.models import BlockedSender, Draft, SavedReply, Thread, Ticket
from tests.browser.support import INBOX, SCREENSHOTS
from tests.mailbuilder import inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
# Direct parametrization overrides the `viewport` fixture (which reads no request.param: `indirect` would not).
both_sizes = pytest.mark.parametrize("viewport", [PHONE, LAPTOP], ids=["phone", "laptop"])


# --- Helpers ----------------------------------------------------------------------------------------

def file_mail(client, **kwargs) -> None:
    """Mail to support, as Postmark's inbound webhook delivers it."""
    payload = kwargs.pop("payload", None) or inbound_payload(**kwargs)
    assert post_inbound(client, payload).status_code == 200


def file_three(client, db) -> None:
    """Three open tickets whose customers wrote 30, 20 and 10 minutes ago: the inbox shows 0003, 0002, 0001."""
    for i, subject in enumerate(["Export fails", "Login link never arrives", "Invoice copy"]):
        file_mail(client, sender=f"c{i}@example.com", name=f"Customer {i}", subject=subject,
                  text=f"Question {i}, please help.")
    now = utcnow()
    for number, minutes in (("TKT-0001", 30), ("TKT-0002", 20), ("TKT-0003", 10)):
        db.session.execute(update(Ticket).where(Ticket.number == number)
                           .values(last_customer_reply_at=now - timedelta(minutes=minutes)))
    db.session.commit()


def ticket_row(db, number: str) -> Ticket | None:
    db.session.expire_all()
    return db.session.scalar(select(Ticket).where(Ticket.number == number))


# A whole-page shot draws what is fixed to the window where the first window ended, over the page: the phone's
# action bar is drawn at the page's foot instead (the window-sized shots of the phone test show it in place).
# Through the CSSOM, which the console's CSP allows (it refuses an injected <style>, so screenshot(style=) is void).
PIN_BARS = "p => document.querySelectorAll('.action-bar').forEach(bar => bar.style.position = p)"


def shoot(page, flow: str, viewport: dict, *, full_page: bool = True) -> None:
    """Keep a screenshot of the flow (from the top, else the sticky header is drawn mid-page)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"workspace-{flow}-{viewport['width']}.png"
    path.unlink(missing_ok=True)
    if full_page:
        page.evaluate("window.scrollTo(0, 0)")
        page.evaluate(PIN_BARS, "static")
    page.screenshot(path=str(path), full_page=full_page)
    if full_page:
        page.evaluate(PIN_BARS, "")
    assert path.stat().st_size > 5_000, f"{path} is suspiciously small"


def deliver_mail(run_jobs, call_task, db) -> None:
    """Work the queues until every due outbox entry has been handled. The test runs of this repository share
    one Redis database (TEST_REDIS_URL): another run's worker may take (and find nothing for) a job of ours, or
    its clean-up may empty the queues; the outbox sweep then gives each due entry a job again, as in production."""
    for _ in range(5):
        run_jobs()
        db.session.rollback()  # the clock of a fresh statement, not of a transaction the test left open
        due = db.session.execute(select(OutboxMessage.kind, OutboxMessage.state).where(
            OutboxMessage.state.in_(("queued", "sending")), OutboxMessage.next_attempt_at <= utcnow())).all()
        if not due:
            return
        call_task(tasks.sweep_outbox)
    raise AssertionError(f"outbox entries are still due after five rounds of jobs: {due}")


def inbox_numbers(page) -> list[str]:
    return page.locator(".list .row").evaluate_all("rows => rows.map(r => r.dataset.number)")


@pytest.fixture
def undo_window(live_server):
    """The live app holds console replies 30 seconds (the tests' app otherwise sends them at once)."""
    app = live_server.app
    settings = app.config["ECHO"]
    app.config["ECHO"] = settings.with_overrides(undo_send_seconds=30)
    try:
        yield 30
    finally:
        app.config["ECHO"] = settings


# --- 1. Drafts --------------------------------------------------------------------------------------

@both_sizes
def test_a_draft_survives_a_reload_and_a_lapsed_session(signed_in, client, db, viewport, js_errors):
    page = signed_in
    file_mail(client, subject="Export fails")
    page.goto("/tickets/TKT-0001")

    page.fill("#reply-body", "Half a thought")
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    db.session.expire_all()
    assert db.session.scalar(select(Draft.body_text)) == "Half a thought"
    page.evaluate("localStorage.clear()")  # what comes back after the reload is the server's copy
    page.reload()
    expect(page.locator("#reply-body")).to_have_value("Half a thought")

    # The session lapses while the agent types on: the browser keeps every word.
    page.fill("#reply-body", "First part.")
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")
    db.session.execute(update(AgentSession).values(revoked_at=func.now()))
    db.session.commit()
    page.locator("#reply-body").press("End")
    page.locator("#reply-body").press_sequentially(" And the rest, typed after the lapse.")
    # The autosave is refused (the session is gone): the agent is told so, in words. Checked at the end,
    # so that the rest of the flow (the browser's copy put back after signing in) is still exercised.
    expect(page.locator("#draft-status")).not_to_have_text(re.compile(r"^Draft saved"))  # the autosave answered
    status = page.locator("#draft-status").inner_text()
    page.locator("#draft-status").scroll_into_view_if_needed()
    shoot(page, "draft-signed-out", viewport, full_page=False)
    problems = []
    if not status.startswith("Signed out: your draft is kept in this browser."):
        problems.append(f"after the session lapsed, #draft-status says {status[:120]!r}…")
    db.session.expire_all()
    assert db.session.scalar(select(Draft.body_text)) == "First part."  # the server never got the rest

    page.reload()
    page.wait_for_url(re.compile(r"/tickets/login\?next=(/|%2F)tickets(/|%2F)TKT-0001$"))
    page.click("#dev-sign-in")
    page.wait_for_url("**/tickets/TKT-0001")
    whole = "First part. And the rest, typed after the lapse."
    expect(page.locator("#reply-body")).to_have_value(whole)
    expect(page.locator("#draft-status")).to_contain_text("Draft saved")  # and the server has it again
    db.session.expire_all()
    assert db.session.scalar(select(Draft.body_text)) == whole
    shoot(page, "draft", viewport)
    assert js_errors == []
    assert problems == []


# --- 2. Undo send -----------------------------------------------------------------------------------

@both_sizes
def test_undo_send_takes_the_reply_back_into_the_box(signed_in, client, db, run_jobs, call_task, postmark,
                                                     undo_window, viewport, js_errors):
    page = signed_in
    file_mail(client, subject="Export fails")
    text = "Oops, this was meant for another customer."
    page.goto("/tickets/TKT-0001")
    page.fill("#reply-body", text)
    page.click("#send-reply")
    banner = page.locator("#ticket-detail .banner.ok")
    expect(banner).to_contain_text("Reply sends in 30 seconds.")
    expect(page.locator("article.message.reply .body")).to_have_text(text)
    expect(page.locator("#reply-body")).to_have_value("")
    shoot(page, "undo-held", viewport)

    banner.get_by_role("button", name="Undo").click()
    expect(page.locator("#ticket-detail .banner.ok")).to_have_text("Reply taken back; it was not sent.")
    expect(page.locator("#reply-body")).to_have_value(text)
    expect(page.locator("article.message.reply")).to_have_count(0)
    shoot(page, "undo", viewport)

    deliver_mail(run_jobs, call_task, db)
    assert not [m for m in postmark.sent if text in m.get("TextBody", "")]
    auto = {"Name": "Auto-Submitted", "Value": "auto-replied"}
    assert [m["To"] for m in postmark.sent] == ["alice@example.com"]  # the acknowledgement alone
    assert all(auto in m["Headers"] for m in postmark.sent)
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.direction == "outbound")) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage)
                             .where(OutboxMessage.kind == "reply")) == 0
    assert js_errors == []


# --- 3. Cc --------------------------------------------------------------------------------------------

@both_sizes
def test_inbound_cc_prefills_the_reply_and_an_edited_cc_is_sent(signed_in, client, db, run_jobs, call_task,
                                                                postmark, viewport, js_errors):
    page = signed_in
    payload = inbound_payload(sender="ada@example.com", name="Ada", subject="Export fails")
    payload["ToFull"].append({"Email": "Bob@Example.com", "Name": "Bob", "MailboxHash": ""})
    payload["CcFull"] = [{"Email": "carol@example.org", "Name": "Carol", "MailboxHash": ""},
                         {"Email": "support+abc@raxx.app", "Name": "", "MailboxHash": "abc"},
                         {"Email": "ada@example.com", "Name": "Ada", "MailboxHash": ""}]
    file_mail(client, payload=payload)
    deliver_mail(run_jobs, call_task, db)
    postmark.sent.clear()

    page.goto("/tickets/TKT-0001")
    expect(page.locator("article.message.customer .recipients")).to_have_text("Cc: bob@example.com, carol@example.org")
    expect(page.locator("#reply-cc")).to_have_value("bob@example.com, carol@example.org")
    page.fill("#reply-cc", "carol@example.org, Dee <dee@example.net>")
    page.fill("#reply-body", "Looking into it, all of you.")
    page.click("#send-reply")
    expect(page.locator("#ticket-detail .banner.ok")).to_have_text("Reply queued. It leaves in a moment.")
    expect(page.locator("article.message.reply .recipients")).to_have_text("Cc: carol@example.org, dee@example.net")
    shoot(page, "cc", viewport)

    deliver_mail(run_jobs, call_task, db)
    [sent] = [m for m in postmark.sent if "Looking into it, all of you." in m["TextBody"]]
    assert sent["To"] == "ada@example.com"
    assert sent["Cc"] == "carol@example.org, dee@example.net"
    out = db.session.scalar(select(Thread).where(Thread.direction == "outbound"))
    assert out.cc == ["carol@example.org", "dee@example.net"]
    assert js_errors == []


# --- 4. Saved replies -------------------------------------------------------------------------------

@both_sizes
def test_a_saved_reply_is_picked_by_name_and_filled_in(signed_in, client, db, viewport, js_errors):
    page = signed_in
    file_mail(client, sender="alice@example.com", name="Alice Example", subject="Refund please")
    page.goto("/tickets/saved-replies")
    expect(page.locator("main")).to_contain_text("No saved replies yet.")
    page.fill("#new-name", "Refund policy")
    page.fill("#new-body", "Hi {first_name}, about {ticket_number}: refunds reach you within 5 days.")
    page.get_by_role("button", name="Add").click()
    page.wait_for_url("**/tickets/saved-replies")
    expect(page.locator("details.saved summary")).to_have_text(["Refund policy"])
    db.session.expire_all()
    assert db.session.scalar(select(SavedReply.name)) == "Refund policy"
    shoot(page, "saved-replies", viewport)

    page.goto("/tickets/TKT-0001")
    expect(page.locator("#saved-reply-names option")).to_have_count(1)
    page.fill("#saved-reply", "Refund policy")
    page.press("#saved-reply", "Tab")  # leaving the field fires `change`, as picking from the list does
    expect(page.locator("#reply-body")).to_have_value("Hi Alice, about TKT-0001: refunds reach you within 5 days.")
    expect(page.locator("#saved-reply")).to_have_value("")
    shoot(page, "saved-reply", viewport)
    assert js_errors == []


# --- 5. Send and next ---------------------------------------------------------------------------------

@both_sizes
def test_send_and_next_opens_the_next_ticket_of_the_inbox(signed_in, client, db, viewport, js_errors):
    page = signed_in
    file_three(client, db)
    page.goto("/tickets")  # the view is remembered in this tab
    assert inbox_numbers(page) == ["TKT-0003", "TKT-0002", "TKT-0001"]
    page.locator('.row[data-number="TKT-0002"]').click()
    page.wait_for_url("**/tickets/TKT-0002")
    expect(page.locator("input[data-view]")).to_have_value(re.compile(r"^/tickets/?$"))
    page.fill("#reply-body", "Here is the link again.")
    page.click("#send-next")
    page.wait_for_url("**/tickets/TKT-0001")
    expect(page.locator("h1")).to_contain_text("Export fails")
    shoot(page, "send-next", viewport)

    db.session.expire_all()
    answered = db.session.scalar(select(Thread).where(Thread.direction == "outbound"))
    assert answered.body_text.startswith("Here is the link again.")
    assert ticket_row(db, "TKT-0002").status == "pending"
    assert js_errors == []


# --- 6. Bulk actions and the keyboard -------------------------------------------------------------

@both_sizes
def test_bulk_resolve_two_tickets_picked_by_keyboard_and_by_tap(signed_in, client, db, viewport, js_errors):
    page = signed_in
    file_three(client, db)
    page.goto("/tickets")
    bar = page.locator("#bulk-form")
    expect(bar).to_be_hidden()

    page.keyboard.press("j")  # TKT-0003
    page.keyboard.press("j")  # TKT-0002
    expect(page.locator(".list .row.selected")).to_have_attribute("data-number", "TKT-0002")
    page.keyboard.press("x")
    expect(page.locator('.item:has(.row[data-number="TKT-0002"]) .pick')).to_be_checked()
    expect(bar).to_be_visible()
    expect(page.locator("#bulk-count")).to_have_text("1 selected")

    page.locator('.item:has(.row[data-number="TKT-0001"]) .pick').check()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    page.select_option("#bulk-action", "status:resolved")
    shoot(page, "bulk-selected", viewport)
    bar.get_by_role("button", name="Apply").click()

    expect(page.locator("#ticket-list .banner.ok")).to_have_text("2 tickets updated.")
    expect(page.locator(".list .row")).to_have_count(1)
    assert inbox_numbers(page) == ["TKT-0003"]
    expect(bar).to_be_hidden()  # nothing is selected any more
    shoot(page, "bulk", viewport)

    assert [ticket_row(db, n).status for n in ("TKT-0001", "TKT-0002", "TKT-0003")] == [
        "resolved", "resolved", "open"]
    assert js_errors == []


# --- 7. Snooze ----------------------------------------------------------------------------------------

@both_sizes
def test_snooze_from_the_ticket_page_moves_it_to_the_snoozed_view(signed_in, client, db, viewport, js_errors):
    page = signed_in
    file_three(client, db)
    page.goto("/tickets/TKT-0002")
    page.select_option("#snooze-select", "tomorrow")
    page.click("#snooze")
    expect(page.locator("#ticket-detail .banner.ok")).to_have_text("Snoozed.")
    expect(page.locator("#ticket-detail p.banner").filter(has_text="Snoozed until")).to_be_visible()
    expect(page.locator("#snooze")).to_have_text("Change snooze")
    shoot(page, "snooze", viewport)
    assert ticket_row(db, "TKT-0002").snoozed_until > utcnow()

    page.locator("header.top .brand").click()
    page.wait_for_url(INBOX)
    assert inbox_numbers(page) == ["TKT-0003", "TKT-0001"]
    page.locator(".views a", has_text="Snoozed").click()
    page.wait_for_url(re.compile(r"/tickets\?snoozed=1$"))
    assert inbox_numbers(page) == ["TKT-0002"]
    expect(page.locator('.row[data-number="TKT-0002"] .waiting').filter(has_text="Snoozed until")).to_be_visible()
    shoot(page, "snoozed-view", viewport)
    assert js_errors == []


# --- 8. Quarantine --------------------------------------------------------------------------------------

@both_sizes
def test_spam_and_block_then_delete_for_good_from_the_quarantine(signed_in, client, db, viewport, js_errors):
    page = signed_in
    file_mail(client, sender="spammer@example.biz", name="Cheap Pills", subject="Buy now")
    dialogs: list[str] = []

    def accept(dialog):
        dialogs.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto("/tickets/TKT-0001")
    page.locator("#ticket-actions").get_by_label("and block the sender").check()
    page.locator("#ticket-actions").get_by_role("button", name="Mark as spam").click()
    expect(page.locator("#ticket-detail .banner.ok")).to_have_text("Marked as spam; the sender is blocked.")
    db.session.expire_all()
    assert db.session.get(BlockedSender, "spammer@example.biz") is not None
    assert ticket_row(db, "TKT-0001").quarantined

    page.goto("/tickets")
    expect(page.locator(".list .row")).to_have_count(0)
    page.locator(".views a", has_text="Quarantine").click()
    page.wait_for_url(re.compile(r"quarantined=1"))
    assert inbox_numbers(page) == ["TKT-0001"]
    page.locator('.row[data-number="TKT-0001"]').click()
    page.wait_for_url("**/tickets/TKT-0001")
    actions = page.locator(".quarantine-actions")
    expect(actions.get_by_role("button", name="Release to the inbox")).to_be_visible()
    expect(actions.get_by_role("button", name="Unblock spammer@example.biz")).to_be_visible()
    shoot(page, "quarantine", viewport)

    actions.get_by_role("button", name="Delete for good").click()
    page.wait_for_url(re.compile(r"/tickets\?quarantined=1$"))
    assert dialogs and "Delete TKT-0001 for good" in dialogs[0]
    expect(page.locator(".empty")).to_contain_text("Nothing in quarantine.")
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 0
    assert js_errors == []


# --- 9. View original -------------------------------------------------------------------------------------

@both_sizes
def test_view_original_shows_the_mail_in_a_sandbox(signed_in, client, db, viewport, js_errors):
    page = signed_in
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    html = ('<p>My order:</p><table border="1"><tr><td>Order</td><td>#1042</td></tr>'
            '<tr><td>Total</td><td>EUR 12.50</td></tr></table>'
            '<p>See <a href="https://shop.example/o/1042">your order</a>.</p><script>alert("xss")</script>')
    file_mail(client, subject="Where is my order?", text="My order: #1042", html=html)
    page.goto("/tickets/TKT-0001")
    page.locator("details.original > summary").click()
    frame_element = page.locator("details.original iframe")
    expect(frame_element).to_be_visible()
    assert "allow-scripts" not in (frame_element.get_attribute("sandbox") or "")
    frame = page.frame_locator("details.original iframe")
    expect(frame.locator("td", has_text="#1042")).to_be_visible()
    expect(frame.locator("td", has_text="EUR 12.50")).to_be_visible()
    expect(frame.locator('a[href="https://shop.example/o/1042"]')).to_have_text("your order")
    expect(frame.locator("script")).to_have_count(0)
    frame_element.scroll_into_view_if_needed()
    shoot(page, "original", viewport, full_page=False)
    assert dialogs == []
    assert js_errors == []


# --- 10. The team -------------------------------------------------------------------------------------------

@both_sizes
def test_the_team_page_invites_and_deactivates(signed_in, live_server, db, viewport, js_errors):
    page = signed_in
    ensure_agent("ben@echo.local", "Ben", "ops")
    db.session.commit()
    page.locator("nav.account-links").get_by_role("link", name="Team").click()
    page.wait_for_url("**/tickets/team")
    rows = page.locator("table.team tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("table.team")).to_contain_text("demo@echo.local")
    expect(page.locator("table.team")).to_contain_text("ben@echo.local")

    invite = page.locator("form.inline-form")
    invite.locator('input[name="email"]').fill("Kim@Raxx.app")
    invite.locator('input[name="display_name"]').fill("Kim")
    invite.locator('select[name="role"]').select_option("ops")
    invite.get_by_role("button", name="Invite").click()
    expect(page.locator(".banner.ok")).to_contain_text("Invited kim@raxx.app")
    expect(page.locator("code.link")).to_have_text(
        re.compile("^" + re.escape(live_server.url) + r"/tickets/enrol\?token=[\w-]+$"))
    expect(rows).to_have_count(3)
    shoot(page, "team-invite", viewport)

    rows.filter(has_text="ben@echo.local").get_by_role("button", name="Deactivate").click()
    expect(page.locator(".banner.ok")).to_contain_text("Ben is deactivated")
    expect(rows.filter(has_text="ben@echo.local").locator(".badge")).to_have_text("deactivated")
    expect(rows.filter(has_text="ben@echo.local")).to_have_class(re.compile(r"\binactive\b"))
    shoot(page, "team", viewport)

    db.session.expire_all()
    assert not db.session.scalar(select(Agent.active).where(Agent.email == "ben@echo.local"))
    assert db.session.scalar(select(Agent.active).where(Agent.email == "kim@raxx.app"))
    assert js_errors == []


# --- 11. The agent's time zone ------------------------------------------------------------------------------

@both_sizes
def test_times_follow_the_time_zone_chosen_in_settings(signed_in, client, db, demo_agent, viewport, js_errors):
    page = signed_in
    file_mail(client, subject="Export fails")
    db.session.execute(update(Ticket).values(created_at=datetime(2026, 7, 1, 12, 0, tzinfo=UTC)))
    db.session.commit()
    page.goto("/tickets/TKT-0001")
    expect(page.locator("#ticket-detail section > p.muted").first).to_contain_text("opened 2026-07-01 12:00 UTC")

    page.goto("/tickets/settings")
    page.select_option("#time_zone", "America/New_York")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/tickets/settings?saved=1")
    expect(page.locator(".banner.ok")).to_have_text("Saved.")
    expect(page.locator("#time_zone")).to_have_value("America/New_York")
    shoot(page, "settings", viewport)
    db.session.expire_all()
    assert db.session.get(Agent, demo_agent.id).time_zone == "America/New_York"

    page.goto("/tickets/TKT-0001")
    header = page.locator("#ticket-detail section > p.muted").first
    expect(header).to_contain_text("opened 2026-07-01 08:00 EDT")
    expect(header).to_have_text(re.compile(r"\b(EDT|EST)\b"))
    shoot(page, "time-zone", viewport)
    assert js_errors == []


# --- 12. The phone layout ---------------------------------------------------------------------------------

@both_sizes
def test_the_phone_layout_shows_the_first_row_and_a_reply_button(signed_in, client, db, viewport, js_errors):
    page = signed_in
    phone = viewport["width"] < 600
    file_three(client, db)
    page.goto("/tickets")
    first = page.locator(".list .row").first
    expect(first).to_be_visible()
    box = first.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"], (
        f"the first ticket is not wholly in the first screen: {box}")
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= viewport["width"], f"the inbox scrolls sideways ({width} px wide)"
    shoot(page, "inbox", viewport, full_page=False)

    page.goto("/tickets/TKT-0001")
    bar = page.locator(".action-bar")
    width = page.evaluate("document.scrollingElement.scrollWidth")
    assert width <= viewport["width"], f"the ticket page scrolls sideways ({width} px wide)"
    if not phone:
        expect(bar).to_be_hidden()
        shoot(page, "ticket", viewport, full_page=False)
        assert js_errors == []
        return

    expect(bar).to_be_visible()
    assert bar.evaluate("el => getComputedStyle(el).position") == "fixed"
    bar_box = bar.bounding_box()
    assert abs(bar_box["y"] + bar_box["height"] - viewport["height"]) <= 1, f"the bar is not at the bottom: {bar_box}"
    page.mouse.wheel(0, 300)  # it stays there as the page scrolls
    page.wait_for_timeout(100)
    assert abs(bar.bounding_box()["y"] - bar_box["y"]) <= 1
    shoot(page, "ticket", viewport, full_page=False)

    bar.get_by_role("link", name="Reply").tap()
    expect(page.locator("#reply-body")).to_be_focused()
    reply_box = page.locator("#reply-body").bounding_box()
    assert reply_box["y"] >= 0 and reply_box["y"] < bar.bounding_box()["y"], (
        f"the reply box is hidden behind the action bar: {reply_box}")
    shoot(page, "ticket-reply", viewport, full_page=False)
    assert js_errors == []


# --- 13. Error pages ----------------------------------------------------------------------------------------

@both_sizes
def test_error_pages_are_echo_pages(signed_in, client, viewport, js_errors):
    page = signed_in
    file_mail(client, subject="Export fails")

    response = page.goto("/tickets/TKT-9999")
    assert response.status == 404
    expect(page.locator("header.top .brand")).to_have_text("Echo")
    expect(page.locator("main h1")).to_have_text("Not found")
    expect(page.locator("main")).to_contain_text("There is nothing at this address.")
    expect(page.get_by_role("link", name="Go to the inbox")).to_be_visible()
    shoot(page, "not-found", viewport)

    response = page.goto("/tickets/TKT-0001/reply")  # a form's POST address, opened as a page
    assert response.status == 405
    expect(page.locator("main h1")).to_have_text("Not here")
    expect(page.locator("main")).to_contain_text("This page cannot be used that way.")
    shoot(page, "wrong-method", viewport)
    header_shown = page.locator("header.top .brand").count() == 1
    page.get_by_role("link", name="Go to the inbox").click()
    page.wait_for_url(INBOX)
    assert js_errors == []
    assert header_shown, "the 405 page shows the signed-in agent no console header (no brand, search or sign-out)"
