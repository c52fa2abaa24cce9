"""Read customer HTML as lines of text that remember how the client quoted.

Mail clients mark quoted history in the HTML itself, whatever the language: Gmail's
`gmail_quote`, Apple Mail's and Thunderbird's `<blockquote type="cite">`, Yahoo's `yahoo_quoted`,
Outlook's `divRplyFwdMsg` and `appendonsend`, Outlook for Mac's `OLK_SRC_BODY_SECTION`. Each line
keeps its quote depth and whether a client called it an attribution, a signature or the start of
the history, so `echo.inbound.quotes` can decide with the same rules as for plain text.

The markup is scanned with one linear pass of a tag pattern (no parser, no backtracking: each
character is looked at a bounded number of times) over at most MAX_HTML_CHARS.
"""

from __future__ import annotations

import html as html_lib
import re
from dataclasses import dataclass

from echo.inbound import quote_words as words

MAX_HTML_CHARS = 400_000
ATTRIBUTION, CUT, RULE, SIGNATURE = "s", "x", "r", "g"


@dataclass(slots=True)
class Line:
    text: str  # the words, without quote markers
    depth: int = 0  # how many quotes deep
    mark: str = ""  # what the client said the line is (ATTRIBUTION, CUT, RULE, SIGNATURE) or ""
    raw: str = ""  # the line as written, quote markers included, when it came from text


_TAG = re.compile(r"""<(/?)([A-Za-z][A-Za-z0-9:-]{0,40}+)((?>"[^"]*"|'[^']*'|[^<>"']+)*+)>""")
_HIDDEN_ELEMENTS = ("script", "style", "head", "title", "template", "noscript", "xml")
_DECLARATION = re.compile(r"<[!?][^>]{0,2000}>")
_QUOTE_MARKS = re.compile(r"(?:>[ \t]?)+")
_BLOCK = {
    "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt", "figure", "footer", "form",
    "h1", "h2", "h3", "h4", "h5", "h6", "header", "li", "ol", "p", "pre", "section", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}
MAX_TAGS = 8000
MAX_RENDERED_DEPTH = 8  # text quoted deeper than this is old history: it is never shown, so never read
_ROLE_BEARING = {"blockquote", "div", "span", "pre", "hr", "section", "article", "table"}
# Containers that hold a whole earlier message, and elements after which everything is history.
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "protonmail_quote", "zmail_extra", "__quoted_text__",
                  "messagereplysection")
_CUT_IDS = ("divrplyfwdmsg", "appendonsend", "olk_src_body_section", "mail-editor-reference-message-container",
            "stopspelling", "zwchr")
_ATTRIBUTION_CLASSES = ("gmail_attr", "moz-cite-prefix")
_SIGNATURE_IDS = ("gmail_signature", "applemailsignature", "ms-outlook-mobile-signature", "ymail_android_signature",
                  "moz-signature", 'id="signature"', "id=signature")
_FORWARD = re.compile(r"^[\s>*-]*(?:" + words.union(words.FORWARDED) + ")", re.IGNORECASE)
_MARKER = re.compile(
    "(?P<cut>" + "|".join(map(re.escape, _CUT_IDS)) + ")|(?P<attribution>" + "|".join(_ATTRIBUTION_CLASSES)
    + ")|(?P<signature>" + "|".join(map(re.escape, _SIGNATURE_IDS)) + ")|(?P<quote>"
    + "|".join(map(re.escape, _QUOTE_CLASSES)) + ")"
)


def has_quote_markup(raw: str) -> bool:
    """Whether a client marked quoted history in this HTML (cheap substring tests)."""
    lowered = raw[:MAX_HTML_CHARS].lower()
    return "<blockquote" in lowered or any(name in lowered for name in _QUOTE_CLASSES + _CUT_IDS + ("moz-cite",))


def render_lines(raw: str) -> list[Line]:
    """The text of `raw` line by line, each with its quote depth and what the client marked it as."""
    source = _DECLARATION.sub("", _drop_hidden(raw[:MAX_HTML_CHARS]))
    pieces = _TAG.split(source)
    lines: list[Line] = []
    buffer: list[str] = []
    stack: list[tuple[str, str]] = []  # the open elements that can carry a role, with it
    depth = attribution = in_pre = 0
    sign_next = False

    def flush() -> None:
        nonlocal sign_next
        text = "".join(buffer).strip()
        buffer.clear()
        if text:
            mark = SIGNATURE if sign_next else ATTRIBUTION if attribution else ""
            sign_next = False
            quoted = _QUOTE_MARKS.match(text)  # Hotmail and others write "&gt; " quotes into the HTML
            if quoted:
                lines.append(Line(text[quoted.end():], depth + quoted.group().count(">"), mark))
            else:
                lines.append(Line(text, depth, mark))

    last = len(pieces) - 1
    for index in range(0, len(pieces), 4):
        text = pieces[index]
        if text and depth <= MAX_RENDERED_DEPTH:
            if "&" in text:
                text = html_lib.unescape(text)
            if in_pre and "\n" in text:
                first, *rest = text.split("\n")
                buffer.append(first)
                for part in rest:
                    flush()
                    buffer.append(part)
            else:
                collapsed = " ".join(text.split())
                if collapsed:
                    buffer.append((" " if text[0].isspace() else "") + collapsed + (" " if text[-1].isspace() else ""))
                elif buffer:
                    buffer.append(" ")
        if index == last:
            break
        if index >= 4 * MAX_TAGS:  # capped: the rest is read as one more line of text
            buffer.append(" " + " ".join(_TAG.sub(" ", "".join(pieces[index + 4:])).split()))
            break
        closing, name = pieces[index + 1], pieces[index + 2].lower()
        if name in _BLOCK or name == "br" or name == "hr":
            wrote = bool(buffer)
            if wrote:
                flush()
            if (name == "br" and not closing and not wrote) or (name == "p" and closing):
                lines.append(Line("", depth))
        if name not in _ROLE_BEARING:
            continue
        if closing:
            for position in range(len(stack) - 1, max(-1, len(stack) - 64), -1):
                if stack[position][0] == name:
                    for _, role in stack[position:]:
                        depth -= role == "quote"
                        attribution -= role == "attribution"
                        in_pre -= role == "pre"
                    del stack[position:]
                    break
            continue
        attrs = pieces[index + 3]
        role = _role(name, attrs.lower(), pieces, index, depth) if attrs else ("quote" if name == "blockquote" else "")
        if role and buffer:
            flush()
        if name == "hr":
            lines.append(Line("", depth, CUT if role == "cut" else RULE))
            continue
        if role == "cut":
            lines.append(Line("", depth, CUT))
        elif role == "signature":
            sign_next = True
        if attrs.endswith("/"):
            continue
        role = role or ("pre" if name == "pre" else "")
        stack.append((name, role))
        depth += role == "quote"
        attribution += role == "attribution"
        in_pre += role == "pre"
    if buffer:
        flush()
    return lines


def _role(name: str, attrs: str, pieces: list[str], index: int, depth: int) -> str:
    """What the client meant by this element: quote, attribution, cut, signature, or nothing."""
    found = _MARKER.search(attrs)
    role = found.lastgroup or "" if found else ""
    if name != "blockquote":
        return "" if role == "quote" and _FORWARD.match(_text_after(pieces, index)) else role
    style = attrs.replace(" ", "")
    if "border:none" in style and "40px" in style:
        return ""  # Gmail's and Outlook's "indent", not a quote
    if role == "quote" and "gmail_quote" in attrs and "type=" not in attrs and not depth:
        return ""  # Gmail's reply quote sits in a div.gmail_quote; a bare one is the customer quoting a passage
    return role or "quote"


def _text_after(pieces: list[str], index: int) -> str:
    """The first words after a tag (does a gmail_quote open a forward?)."""
    parts: list[str] = []
    size = 0
    for position in range(index + 4, min(len(pieces), index + 4 * 24), 4):
        parts.append(pieces[position])
        size += len(pieces[position].strip())
        if size > 60:
            break
    return html_lib.unescape(" ".join(" ".join(parts).split()))[:200]


def _drop_hidden(raw: str) -> str:
    """`raw` without comments and without the content of elements no reader sees (style, script, head)."""
    lowered = raw.lower()
    if "<!--" not in lowered and not any("<" + name in lowered for name in _HIDDEN_ELEMENTS):
        return raw
    kept, position, length = [], 0, len(raw)
    opener = re.compile(r"<!--|<(" + "|".join(_HIDDEN_ELEMENTS) + r")[\s/>]")
    while position < length:
        found = opener.search(lowered, position)
        if found is None:
            kept.append(raw[position:])
            break
        kept.append(raw[position:found.start()])
        if found.group(1) is None:
            end = lowered.find("-->", found.end())
            position = length if end < 0 else end + 3
        else:
            end = lowered.find("</" + found.group(1), found.end())
            close = lowered.find(">", end) if end >= 0 else -1
            position = length if close < 0 else close + 1
    return "".join(kept)
