"""What one email may cost Echo: every field cut to a size before any expensive step, and nothing lost.

Mail is never refused for its size or shape (Postmark gives up after ten retries and the
customer is lost), and no single email may stall a worker. So, before validation, every field
of the payload is cut to a generous bound (`fit_payload`), and HTML is cut to a nesting depth
the sanitiser handles in linear time (`bound_html`). Whatever was cut is named in a notice the
agent sees on the message, and the whole message as it came (`original_eml`) is kept as an
attachment beside it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

MAX_BODY_CHARS = 1_000_000  # the text and Postmark's stripped reply
MAX_HTML_CHARS = 500_000  # at most ~0.6 s to bound, sanitise and render as text, whatever its shape
MAX_SUBJECT = 1000
MAX_NAME = 500
MAX_ADDRESS_LIST = 100_000  # the To and Cc header strings
MAX_RECIPIENTS = 1000
MAX_HEADERS = 2000
MAX_HEADER_NAME = 200
MAX_HEADER_VALUE = 20_000
MAX_ATTACHMENTS = 500
MAX_CONTENT_ID = 255
MAX_HTML_DEPTH = 100
# HTML with at most this many tags is handed to the sanitiser as it is: whatever its shape, nh3 cleans
# it in a few milliseconds (1000 nested <div>s: 2.6 ms, against 30 s for 25 000), and most mail has
# hundreds of tags, which would each cost the depth model below a step.
BOUND_FROM_TAGS = 1000
# The original keeps more than the message does, but not without bound either.
MAX_ORIGINAL_HEADERS = 20 * MAX_HEADERS
MAX_ORIGINAL_HEADER_VALUE = 1_000_000

ORIGINAL_FILENAME = "original-message.eml"
ORIGINAL_CONTENT_TYPE = "message/rfc822"

_STRING_FIELDS = {
    "Subject": MAX_SUBJECT * 10, "FromName": MAX_NAME, "From": 1000, "To": MAX_ADDRESS_LIST,
    "Cc": MAX_ADDRESS_LIST, "Bcc": MAX_ADDRESS_LIST, "ReplyTo": 1000, "Date": 200, "MailboxHash": 200,
    "TextBody": MAX_BODY_CHARS, "HtmlBody": MAX_HTML_CHARS, "StrippedTextReply": MAX_BODY_CHARS,
}
_ADDRESS_FIELDS = {"Email": 320, "Name": MAX_NAME, "MailboxHash": 200}
_LABELS = {"TextBody": "text", "HtmlBody": "HTML", "StrippedTextReply": "stripped reply", "FromName": "sender's name",
           "From": "From header", "To": "To header", "Cc": "Cc header", "Bcc": "Bcc header",
           "ReplyTo": "Reply-To header", "Date": "Date header", "MailboxHash": "mailbox hash"}


@dataclass
class Fitted:
    """The payload cut to Echo's bounds, what was cut (as sentences for the agent), and the uncut original."""

    data: dict
    notices: list[str] = field(default_factory=list)
    original: dict | None = None

    @property
    def cut(self) -> bool:
        return bool(self.notices)


def fit_payload(data: dict) -> Fitted:
    """Cut every known field of a Postmark inbound payload to its bound, keeping the original when anything was cut.

    Runs on the decoded JSON before validation, so that validation (and everything after it)
    only ever sees bounded values. Values of the wrong type are left for validation to refuse.
    """
    fitted = dict(data)
    notices: list[str] = []
    for name, limit in _STRING_FIELDS.items():
        value = fitted.get(name)
        if isinstance(value, str) and len(value) > limit:
            fitted[name] = value[:limit]
            if name != "Subject":  # the intake cuts it much shorter, and says so
                    notices.append(f"The {_LABELS.get(name, name)} was {len(value):,} characters long; "
                               f"the first {limit:,} are kept.")
    for name in ("FromFull",):
        if isinstance(fitted.get(name), dict):
            fitted[name] = _fit_address(fitted[name])
    for name in ("ToFull", "CcFull", "BccFull"):
        items = fitted.get(name)
        if isinstance(items, list):
            if len(items) > MAX_RECIPIENTS:
                notices.append(f"The message had {len(items):,} {name[:2]} recipients; the first "
                               f"{MAX_RECIPIENTS:,} are kept.")
                items = items[:MAX_RECIPIENTS]
            fitted[name] = [_fit_address(item) if isinstance(item, dict) else item for item in items]
    headers = fitted.get("Headers")
    if isinstance(headers, list):
        if len(headers) > MAX_HEADERS:
            notices.append(f"The message had {len(headers):,} headers; the first {MAX_HEADERS:,} are read.")
            headers = headers[:MAX_HEADERS]
        fitted["Headers"], long_values = _fit_headers(headers)
        if long_values:
            notices.append(f"{long_values} header value(s) longer than {MAX_HEADER_VALUE:,} characters "
                           "were cut.")
    attachments = fitted.get("Attachments")
    if isinstance(attachments, list) and len(attachments) > MAX_ATTACHMENTS:
        notices.append(f"The message had {len(attachments):,} attachments; the first {MAX_ATTACHMENTS:,} "
                       "are kept.")
        fitted["Attachments"] = attachments[:MAX_ATTACHMENTS]
    return Fitted(fitted, notices, data if notices else None)


def _fit_address(address: dict) -> dict:
    fitted = dict(address)
    for name, limit in _ADDRESS_FIELDS.items():
        value = fitted.get(name)
        if isinstance(value, str) and len(value) > limit:
            fitted[name] = value[:limit]
    return fitted


def _fit_headers(headers: list) -> tuple[list, int]:
    fitted, long_values = [], 0
    for header in headers:
        if isinstance(header, dict):
            name, value = header.get("Name"), header.get("Value")
            if (isinstance(name, str) and len(name) > MAX_HEADER_NAME) or (
                    isinstance(value, str) and len(value) > MAX_HEADER_VALUE):
                long_values += 1
                header = dict(header)
                if isinstance(name, str):
                    header["Name"] = name[:MAX_HEADER_NAME]
                if isinstance(value, str):  # References lists the newest ids last: those matter most
                    header["Value"] = (value[-MAX_HEADER_VALUE:] if str(name).strip().lower() == "references"
                                       else value[:MAX_HEADER_VALUE])
        fitted.append(header)
    return fitted, long_values


# --- HTML nesting -------------------------------------------------------------------------------
#
# The sanitiser (html5ever under nh3) looks through its stack of open elements for most tags, so
# its cost grows with length × depth: 25 000 nested <div>s took longer than gunicorn's 30 s timeout.
# `bound_html` drops the start tags (and their end tags) that would open elements deeper than
# MAX_HTML_DEPTH, keeping all text. It models the tree builder closely enough never to count a
# depth lower than html5ever's by more than a constant factor (counting higher only costs some
# formatting in very sloppy HTML): end tags close only elements that are open; <p> and <li> close
# implicitly as the HTML standard says; formatting elements (<b>, <font>, …) count until their own
# end tag, because the tree builder reopens them after a block closes; the contents of raw-text
# elements (<style>, <script>, …) are skipped unless inside <svg>/<math>, where they are markup.

_TAG = re.compile(r"<!--.*?(?:-->|\Z)|<(/?)([A-Za-z][^\t\n\f\r />]*)[^>]*>?", re.DOTALL)
_VOID = frozenset("area base basefont bgsound br col embed frame hr image img input keygen link meta "
                  "param source track wbr".split())
_FORMATTING = frozenset("a b big code em font i nobr s small strike strong tt u".split())
_RAW_TEXT = frozenset("iframe noembed noframes noscript plaintext script style textarea title xmp".split())
_FOREIGN = frozenset(("svg", "math"))
_MARKERS = frozenset("applet caption marquee object td template th".split())
_CLOSES_P = frozenset(
    "address article aside blockquote center details dialog dir div dl dd dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hgroup hr li listing main menu nav ol p pre section summary "
    "ul xmp".split())
_BUTTON_SCOPE = frozenset(("applet", "caption", "html", "table", "td", "th", "marquee", "object", "template",
                           "button", "mi", "mo", "mn", "ms", "mtext", "annotation-xml", "foreignobject", "desc",
                           "title"))


_SCOPE, _MARKER, _FOREIGN_ROOT = 1, 2, 4
_POPPED_KIND = {**{n: _SCOPE for n in _BUTTON_SCOPE}, **{n: _FOREIGN_ROOT for n in _FOREIGN}}
for _name in _MARKERS:
    _POPPED_KIND[_name] = _POPPED_KIND.get(_name, 0) | _MARKER


def bound_html(raw: str, max_depth: int = MAX_HTML_DEPTH) -> tuple[str, bool]:
    """`raw` without the tags that would nest elements deeper than `max_depth`, and whether any were dropped.

    Linear in the length of `raw` (one pass over its tags, each pushed and popped at most once);
    HTML with at most BOUND_FROM_TAGS tags (or fewer than `max_depth`) is returned untouched without
    being read. Written as one loop over plain locals: it reads every tag of every HTML mail that has many.
    """
    if raw.count("<") <= max(max_depth, BOUND_FROM_TAGS):
        return raw, False
    lowered = raw.lower()
    stack: list[str] = []  # the open elements (formatting elements apart)
    open_count: Counter[str] = Counter()  # of each name in `stack`
    p_at: list[int] = []  # where each open <p> sits in `stack`
    scopes: list[int] = []  # where each element that bounds button scope sits
    active: list[str] = []  # formatting elements open, or waiting to be reopened after a block ends
    markers: list[int] = []  # len(active) when each open table cell (or other marker) began
    foreign = 0  # open <svg> and <math> elements: inside them, <style> and <title> are markup
    dropped: Counter[str] = Counter()  # start tags left out, by name, whose end tags go too
    pieces: list[str] = []
    kept_from = skip_to = 0

    def pop_to(index: int) -> None:
        nonlocal foreign
        while len(stack) > index:
            name = stack.pop()
            open_count[name] -= 1
            kind = _POPPED_KIND.get(name)
            if name == "p":
                p_at.pop()
            elif kind:
                if kind & _SCOPE:
                    scopes.pop()
                if kind & _MARKER:  # a cell that ends takes its formatting with it
                    del active[markers.pop():]
                if kind & _FOREIGN_ROOT:
                    foreign -= 1

    for match in _TAG.finditer(lowered):
        name = match.group(2)
        if name is None or match.start() < skip_to:  # a comment, or inside a raw-text element
            continue
        if match.group(1):  # an end tag
            if dropped[name]:
                dropped[name] -= 1
            else:
                if name in _FORMATTING:
                    floor = markers[-1] if markers else 0
                    for index in range(len(active) - 1, floor - 1, -1):  # at most max_depth steps
                        if active[index] == name:
                            del active[index]
                            break
                elif open_count[name]:
                    pop_to(len(stack) - 1 - stack[::-1].index(name))
                continue
        elif name in _VOID:
            continue
        elif name in _RAW_TEXT and not foreign:
            end = lowered.find("</" + name, match.end()) if name != "plaintext" else -1
            skip_to = len(raw) if end < 0 else end  # its contents are text; its end tag is read next
            continue
        elif len(stack) + len(active) < max_depth:
            if name in _FORMATTING:
                active.append(name)
                continue
            if p_at and name in _CLOSES_P and (not scopes or scopes[-1] < p_at[-1]):  # a <p> in button scope
                pop_to(p_at[-1])
            if name == "li" and stack and stack[-1] == "li":
                pop_to(len(stack) - 1)
            if name == "p":
                p_at.append(len(stack))
            elif name in _POPPED_KIND:
                kind = _POPPED_KIND[name]
                if kind & _SCOPE:
                    scopes.append(len(stack))
                if kind & _MARKER:
                    markers.append(len(active))
                if kind & _FOREIGN_ROOT:
                    foreign += 1
            open_count[name] += 1
            stack.append(name)
            continue
        else:
            dropped[name] += 1
        pieces.append(raw[kept_from:match.start()])
        kept_from = match.end()
    if kept_from == 0:
        return raw, False
    pieces.append(raw[kept_from:])
    return "".join(pieces), True


# --- The original -------------------------------------------------------------------------------

def original_eml(data: dict) -> bytes:
    """The message as Postmark gave it, as an RFC 5322 message with its text and HTML parts.

    Attachments are stored as files of their own and are not repeated here. Header lines are
    written as they came, with line breaks inside values replaced by spaces.
    """
    lines = []
    for name in ("From", "To", "Cc", "Subject", "Date"):
        value = data.get(name)
        if isinstance(value, str) and value:
            lines.append(f"{name}: {_one_line(value)}")
    headers = data.get("Headers")
    for header in (headers if isinstance(headers, list) else [])[:MAX_ORIGINAL_HEADERS]:
        if isinstance(header, dict) and isinstance(header.get("Name"), str):
            value = header.get("Value")
            value = value[:MAX_ORIGINAL_HEADER_VALUE] if isinstance(value, str) else ""
            lines.append(f"{_one_line(header['Name'][:MAX_HEADER_NAME])}: {_one_line(value)}")
    boundary = "echo-original-part"
    lines += ["MIME-Version: 1.0", f'Content-Type: multipart/alternative; boundary="{boundary}"', ""]
    for key, subtype in (("TextBody", "plain"), ("HtmlBody", "html")):
        body = data.get(key)
        if isinstance(body, str) and body:
            lines += [f"--{boundary}", f"Content-Type: text/{subtype}; charset=utf-8",
                      "Content-Transfer-Encoding: 8bit", "", body.replace(f"--{boundary}", f"- -{boundary}")]
    lines += [f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("utf-8", "replace")


def _one_line(value: str) -> str:
    return value.replace("\r", " ").replace("\n", " ")
