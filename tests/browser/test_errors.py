"""A refused action says why, where the agent is looking (issue 13: errors were never shown)."""

import pytest

from tests.browser.support import SCREENSHOTS
from tests.mailbuilder import inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect


def test_refused_actions_show_their_message_and_echo_pages_answer_unknown_addresses(signed_in, client, js_errors):
    page = signed_in
    assert post_inbound(client, inbound_payload(subject="Export button does nothing")).status_code == 200
    page.goto("/tickets/TKT-0001")

    page.fill('input[name="into"]', "TKT-9999")
    page.locator('input[name="into"]').press("Enter")
    expect(page.locator(".banner.error").first).to_contain_text("TKT-9999")

    page.fill("#note-body", "   ")  # the browser's own `required` passes spaces; the server refuses them
    page.click("#add-note")
    expect(page.locator(".banner.error").first).to_contain_text("note")
    expect(page.locator("article.message.note")).to_have_count(0)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "refused-note.png"))

    response = page.goto("/tickets/TKT-0001/nothing-here")
    assert response.status == 404
    expect(page.locator("main h1")).to_have_text("Not found")  # an Echo page, not a bare one
    expect(page.locator("main")).to_contain_text("nothing at this address")
    page.click("text=Go to the inbox")
    page.wait_for_url("**/tickets")
    assert js_errors == []
