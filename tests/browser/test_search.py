"""The header search box: words with highlighted snippets, ticket numbers, and fragments of customer emails."""

import pytest

from tests.mailbuilder import inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect


@pytest.fixture
def tickets(client):
    """Three tickets from different customers; only the second mentions a kaleidoscope."""
    mails = [
        inbound_payload(sender="alice@example.com", name="Alice Example", subject="Cannot export my trades",
                        text="The export button does nothing."),
        inbound_payload(sender="zelda.marquez@example.org", name="Zelda Marquez", subject="Chart colours",
                        text="My charts look like a kaleidoscope since the update."),
        inbound_payload(sender="bob@example.net", name="Bob Builder", subject="Invoice for March",
                        text="Please send the March invoice again."),
    ]
    for mail in mails:
        assert post_inbound(client, mail).status_code == 200


def search(page, query: str) -> None:
    page.fill("#search", query)
    page.press("#search", "Enter")
    page.wait_for_load_state()


def test_a_word_from_a_body_finds_its_ticket_with_a_highlight(signed_in, tickets):
    """Typing a word and pressing Enter lists only the matching ticket, its snippet marked."""
    page = signed_in
    page.goto("/tickets")
    expect(page.locator(".list .row")).to_have_count(3)
    search(page, "kaleidoscope")
    expect(page).to_have_url("/tickets?q=kaleidoscope")
    rows = page.locator(".list .row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-number", "TKT-0002")
    expect(rows.first.locator(".snippet mark")).to_have_text("kaleidoscope")
    expect(page.locator("#search")).to_have_value("kaleidoscope")


def test_a_ticket_number_jumps_straight_to_the_ticket(signed_in, tickets):
    """A ticket number in the search box opens that ticket's page."""
    page = signed_in
    search(page, "TKT-0001")
    expect(page).to_have_url("/tickets/TKT-0001")
    expect(page.locator("h1")).to_contain_text("Cannot export my trades")


def test_part_of_a_customer_email_finds_their_ticket(signed_in, tickets):
    """A fragment of the customer's address lists that customer's ticket and no other."""
    page = signed_in
    search(page, "zelda.marq")
    rows = page.locator(".list .row")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-number", "TKT-0002")
    expect(rows.first.locator(".meta")).to_contain_text("Zelda Marquez")
    search(page, "nobody-like-this@nowhere")
    expect(page.locator(".list .row")).to_have_count(0)
    expect(page.locator(".empty")).to_contain_text("Nothing matches")
