"""Two agents in two browsers: each sees the other on a ticket, new mail appears in both inboxes without a
reload, and the traffic cop stops the second answer to the same customer."""

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from echo.agents.models import AgentSession
from echo.agents.service import ensure_agent
from echo.db import utcnow
from echo.security import token_hash
from echo.tickets.models import Thread
from tests.browser.support import SCREENSHOTS
from tests.mailbuilder import inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect


@pytest.fixture
def colleague(browser, live_server, db):
    """A second agent, Ben, signed in in a browser context of his own."""
    ben = ensure_agent("ben@raxx.app", "Ben", "ops")
    raw, now = secrets.token_urlsafe(32), utcnow()
    db.session.add(AgentSession(id=token_hash(raw), agent_id=ben.id, method="passkey", last_seen_at=now,
                                expires_at=now + timedelta(hours=12)))
    db.session.commit()
    app = live_server.app
    cookie = app.session_interface.get_signing_serializer(app).dumps({"sid": raw, "_permanent": True})
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": live_server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page, errors
    context.close()


def test_two_agents_see_each_other_and_new_mail_and_only_one_answer_goes_out(signed_in, colleague, client, db,
                                                                           run_jobs, postmark, js_errors):
    ana = signed_in
    ben, ben_errors = colleague
    assert post_inbound(client, inbound_payload(sender="ada@example.com", subject="Export fails")).status_code == 200
    ben.goto("/tickets")
    ana.goto("/tickets")
    expect(ana.locator(".list .row")).to_have_count(1)

    # New mail shows up in both inboxes, no reload.
    assert post_inbound(client, inbound_payload(sender="zed@example.com", subject="Login link")).status_code == 200
    expect(ana.locator('.row[data-number="TKT-0002"]')).to_be_visible()
    expect(ben.locator('.row[data-number="TKT-0002"]')).to_be_visible()
    expect(ana.locator(".views a").first).to_contain_text("2")  # the count followed

    # Both open the first ticket: each sees the other.
    ana.goto("/tickets/TKT-0001")
    ben.goto("/tickets/TKT-0001")
    expect(ana.locator("#presence")).to_contain_text("Ben is viewing")
    ben.fill("#reply-body", "Ben's answer")
    expect(ana.locator("#presence")).to_contain_text("Ben is replying")
    expect(ben.locator("#presence")).to_contain_text("Demo Agent is viewing")

    # Both write an answer; Ben sends first, Ana's (written before Ben's arrived) is stopped.
    ana.fill("#reply-body", "Ana's answer")
    ben.click("#send-reply")
    expect(ben.locator(".banner.ok")).to_contain_text("Reply queued")
    expect(ana.locator("#live-news")).to_be_visible()  # she is typing: told, not interrupted
    ana.click("#send-reply")
    expect(ana.locator(".banner.error")).to_contain_text("Not sent: a colleague replied")
    expect(ana.locator("#reply-body")).to_have_value("Ana's answer")
    expect(ana.locator("article.message.reply .body")).to_have_text("Ben's answer")
    ana.screenshot(path=str(SCREENSHOTS / "live-traffic-cop-1280.png"), full_page=True)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.direction == "outbound")) == 1
    run_jobs()
    answers = [m for m in postmark.sent if m["To"] == "ada@example.com" and m["TextBody"].startswith(("Ana", "Ben"))]
    assert [m["TextBody"].split("\n")[0] for m in answers] == ["Ben's answer"]
    assert js_errors == [] and ben_errors == []
