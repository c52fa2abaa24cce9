"""Stored XSS in subjects, names, bodies and attachment names stays inert in a real browser."""

import struct
import zlib

import pytest

from tests.mailbuilder import attachment, inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

VECTORS_HTML = (
    '<p>Hello kaleidoscope</p><script>alert(1)</script><script>window.__xss=1</script>'
    '<img src=x onerror=alert(1)><img src=x onerror="window.__xss=1"><svg onload=alert(1)></svg>'
    '<svg><script>window.__xss=1</script></svg><a href="javascript:alert(1)">click me</a>'
    '<a href=" JaVaScRiPt:window.__xss=1">and me</a><iframe src="javascript:alert(1)"></iframe>'
    '<details open ontoggle=alert(1)><summary>x</summary></details><body onload=alert(1)>'
    '<math><mtext><table><mglyph><style><img src=x onerror="window.__xss=1"></style></mglyph></table></mtext></math>'
    '<form action="javascript:alert(1)"><button formaction="javascript:alert(1)">go</button></form>'
    '<object data="javascript:alert(1)"></object><embed src="javascript:alert(1)">'
    '<div style="background:url(javascript:alert(1))" onclick=alert(1) onmouseover="window.__xss=1">hover</div>'
)
VECTORS_TEXT = (
    'kaleidoscope <script>alert(1)</script> <img src=x onerror="window.__xss=1"> <svg onload=alert(1)>\n'
    '"><script>window.__xss=1</script> javascript:alert(1)'
)
# Anywhere in the live DOM: an on* handler, a javascript: URL, an inline style (mail could restyle the console),
# active or foreign elements inside a message, or a script that is not one of Echo's own files.
FIND_ACTIVE_CONTENT = """() => {
  const urlish = new Set(["href", "src", "action", "formaction", "data", "xlink:href", "srcdoc"]);
  const found = [];
  for (const el of document.querySelectorAll("*")) {
    for (const attr of el.attributes) {
      const name = attr.name.toLowerCase();
      if (name.startsWith("on") || (urlish.has(name) && /^\\s*javascript:/i.test(attr.value)) || name === "style")
        found.push(`${el.tagName.toLowerCase()} ${name}=${attr.value}`);
    }
    const tag = el.tagName.toUpperCase();
    if (["IFRAME", "OBJECT", "EMBED", "SVG", "MATH", "FORM"].includes(tag) && el.closest(".html"))
      found.push(`${tag.toLowerCase()} inside a message`);
  }
  for (const script of document.scripts)
    if (!script.src || !new URL(script.src).pathname.startsWith("/tickets/static/"))
      found.push("script " + script.outerHTML);
  return found;
}"""


def tiny_png() -> bytes:
    """A valid 1×1 PNG, so the attachment is shown inline with its (hostile) name as alt text."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\0\0\0\0\0")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.fixture
def hostile_tickets(client):
    """A conversation whose every customer-controlled field carries an XSS vector, and one HTML-only mail."""
    first = inbound_payload(
        sender="mallory@example.com", name='"><script>window.__xss=1</script><svg onload=alert(1)>',
        subject='<script>alert(1)</script><img src=x onerror="window.__xss=1"> Export broken',
        text=VECTORS_TEXT, html=VECTORS_HTML, message_id="<xss-1@mail.example.com>",
        attachments=[
            attachment('<img src=x onerror="window.__xss=1">.pdf', b"%PDF-1.4\n%%EOF\n", "application/pdf"),
            attachment('"><svg onload=alert(1)>.png', tiny_png(), "image/png"),
        ],
    )
    reply = inbound_payload(
        sender="mallory@example.com", name="<img src=x onerror=alert(1)>", subject="Re: anything",
        text="Still broken.\n\nOn Sun, Raxx Support wrote:\n> <script>alert(1)</script>",
        stripped="Still broken. <svg onload=alert(1)>", html=VECTORS_HTML, in_reply_to="<xss-1@mail.example.com>",
    )
    html_only = inbound_payload(
        sender="eve@example.com", name="Eve <b onmouseover=alert(1)>", subject="javascript:alert(1)",
        text="", html="<p>&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt; kaleidoscope</p>" + VECTORS_HTML,
    )
    for mail in (first, reply, html_only):
        assert post_inbound(client, mail).status_code == 200


def visit(page, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")
    for summary in page.locator("details > summary").all():
        summary.click()
    page.mouse.move(200, 300)
    page.wait_for_timeout(300)  # let any image error or load handler have its chance


def test_vectors_never_run_on_inbox_ticket_search_and_customer_pages(signed_in, hostile_tickets, js_errors):
    """No dialog, no window.__xss, no handler or javascript: URL in the DOM, and the text shows as text."""
    page = signed_in
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    visit(page, "/tickets")
    expect(page.locator(".list .row")).to_have_count(2)
    expect(page.locator('.row[data-number="TKT-0001"] .subject')).to_have_text(
        '<script>alert(1)</script><img src=x onerror="window.__xss=1"> Export broken')
    assert page.evaluate(FIND_ACTIVE_CONTENT) == []

    visit(page, "/tickets/TKT-0001")
    expect(page.locator("article.message.customer")).to_have_count(2)
    expect(page.locator("article.message.customer header").first).to_contain_text(
        '"><script>window.__xss=1</script><svg onload=alert(1)> <mallory@example.com>')
    expect(page.locator("details.quoted[open] .html").first).to_contain_text("click me")
    expect(page.locator(".attachments a.button")).to_contain_text('<img src=x onerror="window.__xss=1">.pdf')
    expect(page.locator(".attachments img")).to_have_attribute("alt", '"><svg onload=alert(1)>.png')
    assert page.evaluate(FIND_ACTIVE_CONTENT) == []
    customer_page = page.locator('aside a[href*="/tickets/customers/"]').get_attribute("href")

    visit(page, "/tickets/TKT-0002")
    first_body = page.locator("article.message.customer .body").first
    expect(first_body).to_contain_text('<img src=x onerror="window.__xss=1">')
    assert page.evaluate(FIND_ACTIVE_CONTENT) == []

    visit(page, "/tickets?q=kaleidoscope")
    expect(page.locator(".row .snippet mark").first).to_have_text("kaleidoscope")
    expect(page.locator('.row[data-number="TKT-0002"] .snippet')).to_contain_text('onerror="window.__xss=1">')
    assert page.evaluate(FIND_ACTIVE_CONTENT) == []

    visit(page, customer_page)
    expect(page.locator("h1")).to_have_text("<img src=x onerror=alert(1)>")  # the name on the customer's latest mail
    assert page.evaluate(FIND_ACTIVE_CONTENT) == []

    assert dialogs == []
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert js_errors == []
