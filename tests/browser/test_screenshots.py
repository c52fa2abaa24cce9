"""Screenshots of the inbox and a ticket on a phone and a laptop, and no sideways scrolling on the phone."""

import struct

import pytest

from echo.actors import Actor
from echo.agents.service import ensure_agent
from echo.tickets import service
from tests.browser.support import SCREENSHOTS
from tests.mailbuilder import attachment, inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

LONG_LINK = "https://app.raxx.app/exports/2026/11/22/" + "a1b2c3d4e5f6" * 12 + "?format=csv&account=primary"
ALICE = "alice.longname.example+billing@example-corporation.co.uk"
TABLE = "<table><tr>" + "".join(f"<td>column-{i}-value</td>" for i in range(12)) + "</tr></table>"


@pytest.fixture
def busy_inbox(client, db, demo_agent):
    """A few tickets with long subjects, long unbroken text, a quoted HTML reply, attachments and a note."""
    sam = ensure_agent("sam@raxx.app", "Sam Colleague With A Long Name", "ops")
    db.session.commit()
    mails = [
        inbound_payload(sender=ALICE, name="Alice Example-Longname",
                        subject="Cannot export my trades to CSV since the November update — the button does nothing",
                        text=f"Hello,\n\nThe export button does nothing. The link I got was {LONG_LINK}\n\nAlice",
                        message_id="<shot-1@mail.example.com>",
                        attachments=[attachment("export-error-screenshot-from-the-trading-dashboard.pdf",
                                                b"%PDF-1.4\n%%EOF\n", "application/pdf")]),
        inbound_payload(sender="bob@example.net", name="Bob Builder", subject="Invoice for March",
                        text="Please send the March invoice again."),
        inbound_payload(sender="carol@example.org", name="Carol", subject="Two-factor codes never arrive",
                        text="I never get the SMS."),
    ]
    for mail in mails:
        assert post_inbound(client, mail).status_code == 200
    reply = inbound_payload(
        sender=ALICE, name="Alice Example-Longname",
        subject="Re: Cannot export", in_reply_to="<shot-1@mail.example.com>",
        text=f"Still broken, see the table.\n\nOn Sun, Raxx Support wrote:\n> Could you send the link? {LONG_LINK}",
        stripped="Still broken, see the table.",
        html=(f"<p>Still broken, see the table.</p>{TABLE}"
              f"<blockquote>Could you send the link? <a href='{LONG_LINK}'>{LONG_LINK}</a></blockquote>"),
    )
    assert post_inbound(client, reply).status_code == 200
    ticket = service.get_ticket("TKT-0001")
    service.add_note(ticket, actor=Actor.agent(demo_agent), body_text=f"Checked the logs: {LONG_LINK}")
    service.assign(ticket, sam.email, actor=Actor.agent(demo_agent))
    db.session.commit()


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def shoot(page, name: str, viewport: dict):
    path = SCREENSHOTS / f"{name}-{viewport['width']}x{viewport['height']}.png"
    path.unlink(missing_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # else the sticky header is drawn mid-page in a full-page shot
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 8_000, f"{path} is suspiciously small"
    width, height = png_size(path)
    assert width == viewport["width"] and height >= viewport["height"]
    return path


def horizontal_overflow(page) -> int:
    return page.evaluate("document.documentElement.scrollWidth")


@pytest.mark.parametrize("viewport", [{"width": 390, "height": 844}, {"width": 1280, "height": 800}],
                         ids=["phone", "laptop"])
def test_inbox_and_ticket_screenshots(signed_in, busy_inbox, viewport, js_errors):
    """Screenshots land in test-artifacts/screenshots; at 390 px nothing scrolls sideways."""
    page = signed_in
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    page.goto("/tickets")
    expect(page.locator(".list .row")).to_have_count(3)
    shoot(page, "inbox", viewport)
    inbox_width = horizontal_overflow(page)

    page.goto("/tickets/TKT-0001")
    for summary in page.locator("details > summary").all():
        summary.click()
    expect(page.locator("article.message")).to_have_count(3)
    shoot(page, "ticket", viewport)
    ticket_width = horizontal_overflow(page)

    if viewport["width"] == 390:
        assert inbox_width <= 390, f"the inbox scrolls sideways at 390 px ({inbox_width} px wide)"
        assert ticket_width <= 390, f"the ticket page scrolls sideways at 390 px ({ticket_width} px wide)"
    assert js_errors == []
