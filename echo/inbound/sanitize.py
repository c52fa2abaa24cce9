"""Make customer HTML safe to show, and render it as text.

Images are the one thing in mail a browser fetches by itself, with the agent's cookies when the
URL is Echo's own: `<img src="https://support…/tickets?q=…">` would run a search or mark a
ticket read as the agent. So no image in stored or shown HTML has a live `src` but Echo's own
attachment URLs (inline `cid:` images). Remote http(s) images wait in `data-remote-src` until
the agent clicks "Show images" (echo/static/console.js), as in a mail client; images on Echo's
hosts, on loopback or IP addresses, or with any other URL are replaced by their alt text. With
that, the ticket page's CSP can allow `https:` images without reopening the hole (`'self'` was
the hole, and now every `src` Echo shows is Echo's own doing). Links to open each image in a new
tab would have needed no CSP change, but leave HTML mail unreadable as sent; a proxy that hides
the agent's address from senders is another feature. The console runs `hold_images` again on
every message it shows, so HTML stored by older rules is as safe as new HTML.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Collection
from typing import TypedDict
from urllib.parse import unquote, urlsplit

import nh3
from flask import current_app, has_app_context, has_request_context, request

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd", "del", "div",
    "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li",
    "mark", "ol", "p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "table",
    "tbody", "td", "tfoot", "th", "thead", "tr", "u", "ul",
}
# No style, class or id: CSS can overlay the console or exfiltrate data, ids can clobber the DOM.
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan", "align", "valign"},
    "th": {"colspan", "rowspan", "align", "valign", "scope"},
    "col": {"span"},
    "colgroup": {"span"},
    "ol": {"start", "type"},
    "blockquote": {"type", "cite"},
    "abbr": {"title"},
}
URL_SCHEMES = {"http", "https", "mailto", "cid"}
ABSOLUTE_URL_PREFIXES = ("http://", "https://", "mailto:")
HELD_IMAGE_ATTRIBUTE = "data-remote-src"
_KEPT_IMAGE_ATTRIBUTES = ("alt", "title", "width", "height")
_ATTACHMENT_PATH = re.compile(r"/tickets/attachments/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
# An `<img>` start tag read as a browser reads it (HTML's own whitespace; values quoted either way
# or not at all), or, when it cannot be read so, everything up to the next `>`, which becomes text.
# No match crosses a `>` (nh3 writes `&gt;` inside values), so every image a browser would see is
# visited, even after an `<img` that sat inside another tag's attribute; and each character is
# looked at a bounded number of times, whatever the input.
_VALUE = r"""(?>"[^">]*"|'[^'>]*'|(?:[^\t\n\f\r >"'][^\t\n\f\r >]*)?)"""
_IMAGE_NAME = r"[Ii][Mm](?:[Gg]|[Aa][Gg][Ee])"  # ASCII case only, as in HTML; an HTML parser reads <image> as <img>
_IMAGE_TAG = re.compile(  # `<` outside the alternation lets the engine skip ahead to it: ten times faster
    r"<(?:" + _IMAGE_NAME + r"(?=[\t\n\f\r />])"
    r"(?P<attrs>(?>[\t\n\f\r /]+[^\t\n\f\r />=]+(?>[\t\n\f\r ]*=[\t\n\f\r ]*" + _VALUE + r")?)*)[\t\n\f\r /]*>"
    r"|(?P<broken>" + _IMAGE_NAME + r"[^>]*>?))"
)
_ATTRIBUTE = re.compile(r"([^\t\n\f\r />=]+)(?:[\t\n\f\r ]*=[\t\n\f\r ]*(" + _VALUE + r"))?")
_URL_NOISE = re.compile(r"[\t\n\r]")  # browsers drop these anywhere in a URL, and C0 controls and spaces around it
_URL_EDGES = "".join(map(chr, range(33)))
_NUMERIC_LABEL = re.compile(r"\d+|0x[0-9a-f]*")  # a host ending in one is an IPv4 address to a browser
CLEAN_CONTENT_TAGS = {"script", "style", "title", "head", "template", "noscript", "xmp", "iframe", "object"}
_TAGS_RE = re.compile(r'<[^>"]*(?:"[^"]*"[^>"]*)*>')
_LINK_RE = re.compile(r'<a(?:\s[a-z-]+="[^"]*")*?\shref="([^"]*)"(?:\s[a-z-]+="[^"]*")*>(.*?)</a>', re.DOTALL)
_BLOCK_END_RE = re.compile(r"</(p|div|tr|li|h[1-6]|blockquote)>|<br\s*/?>", re.IGNORECASE)


class _CleanOptions(TypedDict):
    tags: set[str]
    clean_content_tags: set[str]
    attributes: dict[str, set[str]]
    url_schemes: set[str]
    link_rel: str
    strip_comments: bool


_OPTIONS: _CleanOptions = dict(
    tags=ALLOWED_TAGS, clean_content_tags=CLEAN_CONTENT_TAGS, attributes=ALLOWED_ATTRIBUTES, url_schemes=URL_SCHEMES,
    link_rel="noopener noreferrer nofollow", strip_comments=True,
)
_PLAIN_OPTIONS: _CleanOptions = {**_OPTIONS, "url_schemes": URL_SCHEMES - {"cid"}}
# Most mail has neither inline images nor `cite` attributes: for it, relative URLs are denied by
# ammonia itself and the cleaner is built once. Otherwise the Python filter below decides.
_PLAIN_CLEANER = nh3.Cleaner(**_PLAIN_OPTIONS, url_relative="deny")
_CITE_ATTRIBUTE = re.compile(r"\bcite\s*=")  # not the `type="cite"` of quoted mail


def sanitize_html(raw: str, cid_urls: dict[str, str] | None = None, *, own_hosts: Collection[str] | None = None,
                  hold_remote_images: bool = True) -> str:
    """Return `raw` reduced to an allow-list of tags, attributes and URL schemes.

    Inline images (`cid:` sources) are pointed at Echo's attachment URLs when known; any
    other `cid:` reference and every relative URL is dropped. Images are then held or dropped
    (`hold_images`; `own_hosts` defaults to Echo's); HTML that leaves Echo in an email, where no
    agent's cookies are at stake, may keep its remote images (`hold_remote_images=False`).
    """
    if not raw:
        return ""
    lowered = raw.lower()  # plain substring tests: a case-insensitive regex costs more than the cleaning
    if "cid:" not in lowered and ("cite" not in lowered or _CITE_ATTRIBUTE.search(lowered) is None):
        clean = _PLAIN_CLEANER.clean(raw)
    else:
        clean = nh3.clean(raw, **_OPTIONS, attribute_filter=_url_filter(cid_urls or {}))
    if not hold_remote_images:
        return clean
    return hold_images(clean, echo_hosts() if own_hosts is None else own_hosts)


def _url_filter(cid_urls: dict[str, str]) -> Callable[[str, str, str], str | None]:
    """Keep absolute web and mail links; map `cid:` images; drop relative URLs.

    A relative URL in an email means nothing, but inside the console it would resolve to
    Echo itself (`<img src="/tickets/…">` would fire requests as the agent).
    """

    def rewrite(tag: str, attribute: str, value: str) -> str | None:
        if attribute not in ("href", "src", "cite"):
            return value
        lowered = value.strip().lower()
        if lowered.startswith(ABSOLUTE_URL_PREFIXES):
            return value
        if lowered.startswith("cid:") and tag == "img" and attribute == "src":
            return cid_urls.get(lowered[4:].strip("<>"))
        return None

    return rewrite


def echo_hosts() -> set[str]:
    """The host names Echo answers on: the console's and portal's, and the one this request came to."""
    urls = []
    if has_app_context():
        settings = current_app.config["ECHO"]
        urls = [url for url in (settings.console_url, settings.portal_url) if url]
    if has_request_context():
        urls.append(f"//{request.host}")
    hosts = set()
    for url in urls:
        try:
            hosts.add((urlsplit(url).hostname or "").rstrip("."))
        except ValueError:  # a Host header no browser would send (`[`): nothing to protect there
            pass
    return hosts - {""}


def hold_images(clean: str, own_hosts: Collection[str]) -> str:
    """Rewrite every `<img>` in sanitised HTML: Echo's attachments stay, remote images wait, the rest go.

    A remote image keeps its URL in `data-remote-src`, which no browser fetches; only its
    `alt`, `title`, `width` and `height` come along, whatever else the tag carried. Any other
    image is replaced by its alt text.
    """
    if "<im" not in clean.lower():
        return clean
    own = {host.lower() for host in own_hosts}

    def rewrite(match: re.Match[str]) -> str:
        if match.group("broken"):
            return "&lt;" + match.group("broken").replace("<", "&lt;")
        found: dict[str, str] = {}
        for attribute in _ATTRIBUTE.finditer(match.group("attrs")):
            value = attribute.group(2) or ""
            if value[:1] in ("'", '"'):
                value = value[1:-1]
            found.setdefault(attribute.group(1).lower(), html.unescape(value))
        src = found.get("src", found.get(HELD_IMAGE_ATTRIBUTE, "")).strip()
        if _ATTACHMENT_PATH.fullmatch(src):
            kept = [("src", src)]
        elif (remote := _remote_url(src, own)) is not None:
            kept = [(HELD_IMAGE_ATTRIBUTE, remote)]
        else:  # an image that may never load is shown as the words it stood for
            return html.escape(found.get("alt", ""))
        kept += [(name, found[name]) for name in _KEPT_IMAGE_ATTRIBUTES if name in found]
        return "<img" + "".join(f' {name}="{html.escape(value)}"' for name, value in kept) + ">"

    return _IMAGE_TAG.sub(rewrite, clean)


def _remote_url(url: str, own_hosts: Collection[str]) -> str | None:
    """`url`, normalised as a browser would read it, when it is http(s) on somebody else's named host.

    Reading the host the way a browser does matters: `\\` is a `/`, `%65` an `e`, `0x7f.1` an
    address. The console's script checks again with the browser's own parser before loading.
    """
    url = _URL_NOISE.sub("", url).strip(_URL_EDGES).replace("\\", "/")
    if not url.lower().startswith(("http://", "https://")):
        return None
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises on a malformed port)
        host = unquote(parts.hostname or "").encode("idna").decode("ascii").lower().rstrip(".")
    except (ValueError, UnicodeError):
        return None
    if (not host or ":" in host or host == "localhost" or host.endswith(".localhost")
            or _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1])
            or any(host == own or host.endswith("." + own) for own in own_hosts)):
        return None
    return url


def _link_as_text(match: re.Match[str]) -> str:
    """A link's words followed by where it leads, unless the words are the address: agents see where it goes."""
    href, label = match.group(1), match.group(2)
    words = html.unescape(_TAGS_RE.sub("", label)).strip()
    address = html.unescape(href)
    if not words or words in (address, address.removeprefix("mailto:")) or address.rstrip("/") == words.rstrip("/"):
        return label
    return f"{label} ({href})"


def html_to_text(clean: str) -> str:
    """A plain-text rendering of sanitised HTML (`sanitize_html`'s output), for mail that came without a text part.

    nh3 writes well-formed markup with no comments, scripts or styles, and `<` in text escaped,
    so dropping its tags leaves exactly the text, without parsing the HTML a second time.
    """
    text = _BLOCK_END_RE.sub("\n", _LINK_RE.sub(_link_as_text, clean))
    text = html.unescape(_TAGS_RE.sub("", text))
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
