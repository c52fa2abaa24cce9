"""Make customer HTML safe to show, and find the new text of a reply under its quotes."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import TypedDict

import nh3
from mailparser_reply import EmailReplyParser

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
CLEAN_CONTENT_TAGS = {"script", "style", "title", "head", "template", "noscript", "xmp", "iframe", "object"}
MAX_REPLY_PARSE_CHARS = 200_000

_english_parser = EmailReplyParser(languages=["en"])
_multilingual_parser = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl"])
_ENGLISH_MARKERS = {">", "wrote", "from", "-", "_"}
# Cheap signs that a message quotes an earlier one; without any, the (costly) parser is skipped.
_MAY_QUOTE = re.compile(
    r"^[ \t]*>|^-{3,}[ \t]*\S.*\S[ \t]*-{3,}[ \t]*$|^_{10,}[ \t]*$"
    r"|(wrote|schrieb|écrit|escribió|scritto|schreef|написал|寫道|写道|a scris|napisał)[^\n]{0,40}:?[ \t]*$"
    r"|^[ \t]*(From|Von|De|Da|Van|Från|Fra|Od|От)[ \t]*:",
    re.IGNORECASE | re.MULTILINE,
)
_TAGS_RE = re.compile(r"<[^>]+>")
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


def sanitize_html(raw: str, cid_urls: dict[str, str] | None = None) -> str:
    """Return `raw` reduced to an allow-list of tags, attributes and URL schemes.

    Inline images (`cid:` sources) are pointed at Echo's attachment URLs when known; any
    other `cid:` reference and every relative URL is dropped.
    """
    if not raw:
        return ""
    lowered = raw.lower()  # plain substring tests: a case-insensitive regex costs more than the cleaning
    if "cid:" not in lowered and ("cite" not in lowered or _CITE_ATTRIBUTE.search(lowered) is None):
        return _PLAIN_CLEANER.clean(raw)
    return nh3.clean(raw, **_OPTIONS, attribute_filter=_url_filter(cid_urls or {}))


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


def html_to_text(raw: str) -> str:
    """A plain-text rendering of HTML, for mail that came without a text part."""
    text = _BLOCK_END_RE.sub("\n", raw)
    text = html.unescape(_TAGS_RE.sub("", nh3.clean(text, tags=set(), clean_content_tags=CLEAN_CONTENT_TAGS)))
    lines = [line.strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def stripped_reply(text: str, postmark_stripped: str | None) -> str:
    """The new text of a message without the quoted history (the full text when nothing was quoted)."""
    if postmark_stripped and postmark_stripped.strip():
        return postmark_stripped.strip()
    if not text:
        return ""
    marker = _MAY_QUOTE.search(text[:MAX_REPLY_PARSE_CHARS])
    if marker is None:
        return text.strip()
    # Each extra language multiplies the parser's regex work; use them only when the quote isn't English.
    word = (marker.group(1) or marker.group(2) or marker.group(0).strip()[:1]).lower()
    parser = _english_parser if word in _ENGLISH_MARKERS else _multilingual_parser
    try:
        reply = parser.parse_reply(text=text[:MAX_REPLY_PARSE_CHARS])
    except Exception:  # a quote-stripper must never cost us the message
        reply = None
    return (reply or text).strip()
