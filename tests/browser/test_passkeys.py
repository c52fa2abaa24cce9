"""Passkey enrolment from an invitation link and passkey sign-in, with Chromium's virtual authenticator."""

import pytest
from sqlalchemy import select

from echo.agents.service import ensure_agent
from echo.console.auth_views import invitation_link
from echo.passkeys.models import Passkey
from tests.browser.support import INBOX

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect


def test_enrol_sign_out_and_sign_in_with_a_passkey(page, db, live_server, authenticator, js_errors):
    """An invited agent registers a passkey, signs out, signs back in with it; the link then is spent."""
    agent = ensure_agent("kim@raxx.app", "Kim Agent", "ops")
    link = invitation_link(agent)
    db.session.commit()
    assert link.startswith(f"{live_server.url}/tickets/enrol?token=")

    page.goto(link)
    expect(page.locator("h1")).to_have_text("Welcome, Kim Agent")
    page.fill("#passkey-name", "Kim's laptop")
    page.click("#passkey-register")
    page.wait_for_url(INBOX)
    expect(page.locator("header.top .who")).to_have_text("Kim Agent")

    [credential] = authenticator.credentials()
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"
    db.session.expire_all()
    [passkey] = db.session.scalars(select(Passkey).where(Passkey.agent_id == agent.id)).all()
    assert passkey.credential_id == authenticator.credential_id(credential)
    assert passkey.name == "Kim's laptop" and passkey.last_used_at is None

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/tickets/login")
    page.goto("/tickets")
    expect(page).to_have_url(f"{live_server.url}/tickets/login?next=/tickets")

    page.click("#passkey-sign-in")
    page.wait_for_url(INBOX)
    expect(page.locator("header.top .who")).to_have_text("Kim Agent")
    db.session.expire_all()
    assert db.session.get(Passkey, passkey.id).last_used_at is not None

    response = page.goto(link)
    assert response.status == 404
    expect(page.locator("main")).to_contain_text("This invitation link is no longer valid")
    expect(page.locator("#passkey-register")).to_have_count(0)
    assert js_errors == []
