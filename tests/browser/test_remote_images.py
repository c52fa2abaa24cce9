"""Images in customer mail never fire requests at Echo, and remote ones load only when the agent asks."""

import struct
import zlib
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select, update

from echo.tickets.models import Thread, Ticket, TicketRead
from tests.browser.support import SCREENSHOTS
from tests.mailbuilder import attachment, inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

REMOTE_IMAGE = "https://images.example.test/newsletter/logo.png"


def solid_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A PNG of one colour, big enough to see in a screenshot."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\0" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def hostile_images(echo: str) -> str:
    """Images aimed at Echo's own origin (absolute, aliased, relative), one inline image and one remote."""
    port = urlsplit(echo).port
    return (
        "<p>Our new logo:</p>"
        f'<img src="{echo}/api/v1/agent/tickets?q=planted" alt="api search">'
        f'<img src="{echo}/tickets?q=planted-search" alt="console search">'
        f'<img src="{echo}/tickets/TKT-0002" alt="marks TKT-0002 read">'
        f'<img src="HTTP://LOCALHOST:{port}/tickets?q=upper-case" alt="upper case">'
        f'<img src="http://127.0.0.1:{port}/tickets?q=by-ip" alt="by ip">'
        '<img src="/tickets/TKT-0002" alt="relative">'
        '<img src="cid:chart@mail.example.com" alt="inline chart">'
        f'<img src="{REMOTE_IMAGE}" alt="Remote logo" width="160" height="48">'
    )


@pytest.fixture
def image_mail(client, db, live_server):
    """TKT-0001: a reply carrying the images; TKT-0002: a ticket they try to mark read."""
    first = inbound_payload(subject="New branding", text="Hello", message_id="<brand-1@mail.example.com>")
    other = inbound_payload(sender="bob@example.net", subject="Unrelated", text="Unread, please.")
    reply = inbound_payload(
        subject="Re: New branding", in_reply_to="<brand-1@mail.example.com>",
        text="See the logo.\n\nOn Sun, Raxx Support wrote:\n> Send it", stripped="See the logo.",
        html=hostile_images(live_server.url),
        attachments=[attachment("chart.png", solid_png(40, 24, (127, 183, 126)), "image/png",
                                content_id="<chart@mail.example.com>")],
    )
    for mail in (first, other, reply):
        assert post_inbound(client, mail).status_code == 200


@pytest.fixture
def old_stored_mail(client, db, image_mail, live_server):
    """TKT-0003, whose HTML was stored by the old rules: absolute Echo and remote image URLs kept as they came."""
    first = inbound_payload(subject="Stored long ago", text="Hi", message_id="<old-1@mail.example.com>")
    reply = inbound_payload(subject="Re: Stored long ago", in_reply_to="<old-1@mail.example.com>",
                            text="Old.\n\nOn Sun, Raxx Support wrote:\n> x", stripped="Old.")
    for mail in (first, reply):
        assert post_inbound(client, mail).status_code == 200
    ticket = db.session.scalars(select(Ticket).where(Ticket.subject == "Stored long ago")).one()
    old_html = (f'<p>Old rules</p><img src="{live_server.url}/tickets?q=stored-long-ago">'
                f'<img src="{live_server.url}/tickets/TKT-0002"><img src="{REMOTE_IMAGE}" alt="Remote logo">')
    db.session.execute(update(Thread).where(Thread.ticket_id == ticket.id, Thread.stripped_text == "Old.")
                       .values(body_html=old_html))
    db.session.commit()
    return ticket.number


def open_ticket(page, number: str) -> None:
    page.goto(f"/tickets/{number}")
    page.wait_for_load_state("networkidle")
    for summary in page.locator("details > summary").all():
        summary.click()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)


def test_opening_a_ticket_fires_no_request_at_echo_and_no_remote_image_until_asked(
        signed_in, image_mail, old_stored_mail, live_server, db, demo_agent, js_errors):
    page = signed_in
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    remote_hits: list[str] = []

    def serve_remote(route):
        remote_hits.append(route.request.url)
        route.fulfill(status=200, content_type="image/png", body=solid_png(160, 48, (229, 162, 61)))

    page.route("https://images.example.test/**", serve_remote)
    planted = ("planted", "/tickets/TKT-0002", "upper-case", "by-ip", "stored-long-ago")

    def fired_at_echo() -> list[str]:
        return [url for url in requests if any(mark in url for mark in planted)]

    open_ticket(page, "TKT-0001")
    message = page.locator("article.message.customer").nth(1)
    expect(message.locator(".html")).to_contain_text("Our new logo")
    expect(message.locator('.html img[alt="inline chart"]')).to_have_js_property("naturalWidth", 40)
    assert fired_at_echo() == []
    assert remote_hits == [] and not any("images.example.test" in url for url in requests)
    expect(message.locator(".html img")).to_have_count(2)  # the inline chart and the held remote logo
    expect(message.locator(".html")).to_contain_text("api searchconsole searchmarks TKT-0002 read")  # alt texts
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    message.screenshot(path=str(SCREENSHOTS / "remote-images-held.png"))

    message.get_by_role("button", name="Show images").click()
    expect(message.locator('.html img[alt="Remote logo"]')).to_have_js_property("naturalWidth", 160)
    page.wait_for_timeout(300)
    assert remote_hits == [REMOTE_IMAGE]
    assert fired_at_echo() == []
    expect(message.get_by_role("button", name="Show images")).to_have_count(0)
    message.screenshot(path=str(SCREENSHOTS / "remote-images-shown.png"))

    open_ticket(page, old_stored_mail)  # stored by the old rules: made safe when shown
    old = page.locator("article.message.customer").nth(1)
    expect(old.locator(".html")).to_contain_text("Old rules")
    assert fired_at_echo() == [] and len(remote_hits) == 1
    old.get_by_role("button", name="Show images").click()
    expect(old.locator('.html img[alt="Remote logo"]')).to_have_js_property("naturalWidth", 160)
    assert fired_at_echo() == []

    other = db.session.scalars(select(Ticket).where(Ticket.number == "TKT-0002")).one()
    db.session.expire_all()
    assert db.session.get(TicketRead, (demo_agent.id, other.id)) is None
    assert js_errors == []


def test_only_the_ticket_page_may_show_remote_images(signed_in, image_mail):
    """The relaxed img-src is the ticket page's alone; every other page keeps images to Echo itself."""
    page = signed_in
    ticket = page.goto("/tickets/TKT-0001")
    assert "img-src 'self' https:;" in ticket.headers["content-security-policy"]
    inbox = page.goto("/tickets")
    assert "img-src 'self';" in inbox.headers["content-security-policy"]
