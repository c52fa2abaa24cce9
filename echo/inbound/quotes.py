"""Find what the customer wrote in a reply, with the quoted history and the signature collapsed.

A reply is read line by line. Quoted lines (`>`), the lines that introduce an earlier message
(an attribution such as "On … wrote:", "-----Original Message-----", a From:/Sent:/Subject:
block, each in many languages, see `quote_words`) and the elements that clients use to mark
history in HTML (see `quote_html`) split it into the customer's text and blocks of history.
Then:

* a block with only history after it is hidden, and so is everything after an attribution or
  header block that is not quoted (Outlook's way: the old message follows as plain text);
* a block between customer lines stays when the customer answered around it more than once
  (an interleaved reply keeps every line of the customer's, and the quotes they answer); a single
  block is hidden when the customer wrote only above it, only below it, or only a goodbye below it;
* a forwarded message is the customer's point: it and everything after it stay in view;
* a trailing signature ("-- ", a mobile "Sent from my iPhone", a list footer) is collapsed.

Nothing is hidden when the rules would leave nothing to show. Work is capped: at most
MAX_TEXT_CHARS of text in at most MAX_LINES lines are read, long lines are never taken for
attributions, at most MAX_PLAIN_LINES unquoted lines are classified and MAX_ATTRIBUTION_TRIES tried
as the start of a wrapped attribution, and every pattern is anchored and free of nested repetition:
a 100 KB mail costs a few milliseconds, and no input costs more than linear work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from echo.inbound import quote_html
from echo.inbound import quote_words as words
from echo.inbound.quote_html import ATTRIBUTION, CUT, RULE, SIGNATURE, Line

MAX_TEXT_CHARS = 200_000
MAX_HEADER_CHARS = 1000  # longer lines are never attributions or header fields
MAX_ATTRIBUTION_TRIES = 100
MAX_LINES = 3000
MAX_PLAIN_LINES = 1000
MAX_SIGNATURE_LINES = 12

_QUOTE_MARKS = re.compile(r"[ \t]*((?:>[ \t]?)+)")
_WRAPPED_LINK = re.compile(r"(?:.*://|\(|.*\)$|.*>$)")
_CUSTOMER = ("t", "f", "g", "m")


@dataclass(frozen=True)
class Stripped:
    reply: str  # what the agent reads first: the customer's own words
    hidden: bool  # whether quoted history or a signature was collapsed (the console then offers it)


def strip_reply(text: str, html: str | None = None) -> Stripped:
    """The customer's reply without the history it quotes or the signature under it.

    HTML is read by its structure when a client marked quotes in it (or when there is no text);
    otherwise the text part is read line by line.
    """
    text = (text or "").replace("\r\n", "\n").replace("\r", "\n")
    if html and (not text.strip() or quote_html.has_quote_markup(html)):
        rendered = _Reading(quote_html.render_lines(html)).stripped()
        if text.strip() and rendered.hidden:
            plain = _Reading(_text_lines(text)).stripped()
            if "".join(plain.reply.split()) == "".join(rendered.reply.split()):
                return plain  # the same words, in the customer's own line breaks
        if rendered.reply or not text.strip():
            return rendered
    return _Reading(_text_lines(text)).stripped()


def _text_lines(text: str) -> list[Line]:
    raws = text[:MAX_TEXT_CHARS].split("\n", MAX_LINES)
    rest = raws.pop() if len(raws) > MAX_LINES else None  # read as one more line, quoted or not as it begins
    lines = []
    for raw in raws:
        marks = _QUOTE_MARKS.match(raw) if raw.lstrip(" \t")[:1] == ">" else None
        if marks:
            lines.append(Line(raw[marks.end():].strip(), marks.group(1).count(">"), raw=raw))
            continue
        body = raw.strip()
        split = words.split_inline_attribution(body) if "On " in body and len(body) <= MAX_HEADER_CHARS else None
        if split:
            lines += [Line(part, raw=part) for part in split]
        else:
            lines.append(Line(body, raw=raw))
    if rest is not None:
        marks = _QUOTE_MARKS.match(rest) if rest.lstrip(" \t")[:1] == ">" else None
        lines.append(Line(rest.strip(), marks.group(1).count(">") if marks else 0, raw=rest.rstrip()))
    return lines


@dataclass(slots=True)
class _Block:
    start: int
    end: int
    attributed: bool  # opened by an attribution or marked by the client, not just `>` lines
    after: str = "none"  # what follows it: "none" (more history), "closing" (a goodbye, a signature), "text"


class _Reading:
    """One pass over a reply's lines: their kinds, the quote blocks, and what stays in view.

    Kinds: e empty, t text, q quoted, r separator rule, g signature delimiter, m phone signature,
    f forward, x a client's "history starts here", s attribution or header block, w a weaker
    attribution that counts only above a quote.
    """

    def __init__(self, lines: list[Line]) -> None:
        self.lines = lines
        self.kinds = [""] * len(lines)
        self.tries = MAX_ATTRIBUTION_TRIES
        self.plain = MAX_PLAIN_LINES  # unquoted lines left to classify; past them all is text

    def stripped(self) -> Stripped:
        lines = self.lines
        blocks, stop, forward = self._history()
        hide = [not forward and index >= stop for index in range(len(lines))]
        for block in self._hidden_blocks(blocks, stop, forward):
            for index in range(block.start, block.end):
                hide[index] = True
            if not block.attributed:
                self._hide_orphan_attribution(hide, block.start)
        kept = self._trim([index for index in range(len(lines)) if not hide[index]])
        if not forward:  # a forwarded message is shown whole, its signatures and footers too
            kept = self._drop_signature(kept)
        reply = self._render(kept)
        if not reply:  # everything looked like history: show it all rather than nothing
            return Stripped(self._render(range(len(lines)), markers=False), False)
        shown = set(kept)
        return Stripped(reply, any(lines[index].text for index in range(len(lines)) if index not in shown))

    # --- finding the history --------------------------------------------------------------------

    def _history(self) -> tuple[list[_Block], int, bool]:
        """The quote blocks, where unquoted history starts, and whether that start is a forward."""
        lines, kinds = self.lines, self.kinds
        blocks: list[_Block] = []
        index, count = 0, len(lines)
        while index < count:
            if lines[index].depth:
                end = self._quote_end(index)
                kinds[index:end] = ["q"] * (end - index)
                blocks.append(_Block(index, end, attributed=lines[index].mark == ATTRIBUTION))
                index = end
                continue
            kind, span = self._classify(index)
            if kind in ("f", "x"):
                return blocks, index, kind == "f"
            if kind in ("s", "w"):
                follow = index + span
                while follow < count and not lines[follow].depth and (not lines[follow].text
                                                                      or lines[follow].mark == RULE):
                    follow += 1
                if follow < count and lines[follow].depth:
                    end = self._quote_end(follow)
                    kinds[index:end] = ["q" if line.depth else "s" for line in lines[index:end]]
                    blocks.append(_Block(index, end, attributed=True))
                    index = end
                    continue
                if kind == "s":
                    return blocks, self._rule_before(index), False
                kind = "t"
            kinds[index:index + span] = [kind] * span
            index += span
        return blocks, count, False

    def _classify(self, index: int) -> tuple[str, int]:
        """The kind of the unquoted line at `index`, and how many lines it spans."""
        line = self.lines[index]
        text = line.text
        if line.mark:
            if line.mark == ATTRIBUTION and words.is_forward(text):
                return "f", 1  # Gmail marks a forward's "---------- Forwarded message" as its attribution
            return {CUT: "x", RULE: "r", ATTRIBUTION: "s", SIGNATURE: "g"}[line.mark], 1
        if not text:
            return "e", 1
        if len(text) > MAX_HEADER_CHARS or self.plain <= 0:
            return "t", 1
        self.plain -= 1
        dashed = text[0] in "-_=*~—–·"
        if (dashed or text[-1] in ":：") and words.is_forward(text):
            return "f", 1
        if dashed and words.is_original_message(text):
            return ("f" if self._forwarded_headers(index + 1) else "s"), 1
        span = self._header_span(index) if ":" in text[:48] or "：" in text[:48] else 0
        if span:
            return ("f" if self._forwarded_headers(index) else "s"), span
        if text in ("--", "—"):
            return "g", 1
        if dashed and words.is_rule(text):
            return "r", 1
        if words.is_phone_signature(text):
            return "m", 1
        return self._attribution(index)

    def _attribution(self, index: int) -> tuple[str, int]:
        """An "On <date>, <person> wrote:" line, in one to three lines (six when a client wraps the address)."""
        first = self.lines[index].text.strip(" \t-*_")
        if not first:
            return "t", 1
        intro = words.opens_with_intro(first)
        runs_on = (intro or first[0].isdigit()) and self.tries > 0
        if not (runs_on or first.endswith((":", "：", ">")) or (len(first) < 300 and words.wrote_at_end(first))):
            return "t", 1
        self.tries -= runs_on
        joined, weak = "", 0
        for offset in range(6 if intro and runs_on else 3 if runs_on else 1):
            position = index + offset
            if position >= len(self.lines) or len(joined) > 2 * MAX_HEADER_CHARS:
                break
            line = self.lines[position]
            if line.depth and not (offset and words.wrote_at_end(" " + line.text) and len(line.text) < 20):
                break  # a quoted line ends the attribution, unless it is the "> wrote:" of a wrapped address
            joined = (joined + " " + line.text).strip()
            if not line.text:
                continue
            kind = words.attribution_kind(joined.strip(" \t-*_"), intro)
            if kind == "s":
                return kind, offset + 1
            weak = weak or (offset + 1 if kind == "w" else 0)
        return ("w", weak) if weak else ("t", 1)

    def _header_span(self, index: int) -> int:
        """How many lines a From:/Sent:/To:/Subject: block starting here spans (0 when it is none)."""
        lines = self.lines
        role = words.field(lines[index].text)[0]
        if role not in ("from", "date"):
            return 0
        roles, last, gap = {role}, index, 0
        for position in range(index + 1, min(len(lines), index + 14)):
            line = lines[position]
            if line.depth or not line.text or len(line.text) > MAX_HEADER_CHARS:
                break
            found = words.field(line.text)[0]
            if not found:
                gap += 1
                if gap > 2:
                    break
                continue
            if found in roles:
                break  # a header block names each field once
            roles.add(found)
            last, gap = position, 0
        if len(roles) >= 2 and roles & {"date", "subject"}:
            return last - index + 1
        previous = lines[index - 1] if index else None
        alone = last == index and previous is not None and (not previous.text or previous.mark == RULE
                                                            or words.is_rule(previous.text))
        if alone and role == "from" and words.has_address(lines[index].text):
            return 1  # "From: bob@example.com" alone under a blank line: Outlook's short form
        return 0

    def _forwarded_headers(self, index: int) -> bool:
        """Whether the header block at `index` carries a forward's subject (Fwd:, WG:, TR:, …)."""
        for line in self.lines[index:index + 10]:
            role, value = words.field(line.text)
            if role == "subject":
                return words.is_forward_subject(line.text[value:])
        return False

    def _quote_end(self, index: int) -> int:
        """The end of the run of quoted lines at `index`, through blank lines and links wrapped out of it."""
        lines = self.lines
        end = position = index
        while position < len(lines):
            line = lines[position]
            if line.depth:
                end = position = position + 1
            elif not line.text and line.mark != CUT:
                position += 1
            elif (position + 1 < len(lines) and lines[position + 1].depth and lines[position - 1].depth
                  and _WRAPPED_LINK.match(line.text)):
                position += 1  # "(http://…" broken out of the quote by a mailer's line wrap
            else:
                break
        return end

    def _rule_before(self, index: int) -> int:
        """Where history starts, taking in a separator line (____, -----) just above its header."""
        lines = self.lines
        position = index - 1
        while position >= 0 and not lines[position].depth and not lines[position].text and lines[position].mark != RULE:
            position -= 1
        if position >= 0 and not lines[position].depth and (lines[position].mark == RULE
                                                            or words.is_rule(lines[position].text)):
            return position
        return index

    # --- deciding what to hide ------------------------------------------------------------------

    def _hidden_blocks(self, blocks: list[_Block], stop: int, forward: bool) -> list[_Block]:
        """The quote blocks to hide: trailing history, and single quotes the customer wrote around."""
        for number, block in enumerate(blocks):
            until = blocks[number + 1].start if number + 1 < len(blocks) else stop
            block.after = "text" if forward and number + 1 == len(blocks) else self._after(block.end, until)
        answered = [block for block in blocks if block.after == "text"]
        hidden = [block for block in blocks if block.after == "closing"]
        if len(answered) == 1 and not any(kind in _CUSTOMER for kind in self.kinds[:answered[0].start]):
            hidden.append(answered[0])  # the customer wrote only below the quote
        last_answer = blocks.index(answered[-1]) if answered else -1
        tail = [block for block in blocks[last_answer + 1:] if block.after == "none"]
        attributed = [block for block in tail if block.attributed]
        if attributed:
            hidden += [block for block in tail if block.start >= attributed[0].start]
        elif tail and tail[-1] is blocks[-1] and stop == len(self.lines):
            hidden.append(tail[-1])  # a bare `>` quote at the very end, with no attribution line
        return hidden

    def _after(self, start: int, until: int) -> str:
        """What follows a block: "none" (history), "closing" (a goodbye, signature, footer) or "text"."""
        lines, kinds = self.lines, self.kinds
        shown = [index for index in range(start, until) if lines[index].text and kinds[index] not in ("r", "e")]
        if not shown:
            return "none"
        if until == len(lines) and len(shown) <= MAX_SIGNATURE_LINES and "r" in kinds[start:shown[0]]:
            return "closing"  # a list's or company's footer under its separator line
        first = lines[shown[0]].text
        if kinds[shown[0]] in ("g", "m") or words.is_disclaimer(first):
            return "closing"
        if len(shown) <= 4 and words.is_valediction(first) and all(len(lines[index].text) <= 80 for index in shown):
            return "closing"
        return "text"

    def _hide_orphan_attribution(self, hide: list[bool], start: int) -> None:
        """Hide the line above a hidden bare quote when it reads like an attribution, in any language."""
        lines = self.lines
        position = start - 1
        while position >= 0 and not lines[position].text and not lines[position].depth:
            position -= 1
        if position >= 0 and not hide[position]:
            text = lines[position].text
            if text.endswith((":", "：")) and len(text) <= MAX_HEADER_CHARS and (
                    words.has_digit(text) or "@" in text):
                hide[position] = True

    def _trim(self, kept: list[int]) -> list[int]:
        """Drop blank lines, separators and attribution lines left hanging at either end."""
        lines, kinds = self.lines, self.kinds
        while kept and (not lines[kept[-1]].text or kinds[kept[-1]] in ("r", "s")):
            kept.pop()
        start = 0
        while start < len(kept) and not lines[kept[start]].text:
            start += 1
        return kept[start:]

    def _drop_signature(self, kept: list[int]) -> list[int]:
        """Collapse what signs the reply: a "-- " block, a phone's "Sent from", a list footer, a "-Name"."""
        lines, kinds = self.lines, self.kinds
        while True:
            body = [index for index in kept if lines[index].text or kinds[index] == "r"]
            if len(body) < 2:
                return kept
            last, cut = body[-1], None
            if kinds[last] == "m":
                cut = kept.index(last)
            else:
                for index in reversed(body[-1 - MAX_SIGNATURE_LINES:]):
                    if lines[index].depth:
                        break
                    if kinds[index] == "g" or (kinds[index] == "r" and lines[index].text.startswith("_____")):
                        cut = kept.index(index)
                        break
                if cut is None and words.is_sign_off(lines[last].text) and not lines[kept[kept.index(last) - 1]].text:
                    cut = kept.index(last)
            if cut is None or not any(lines[index].text for index in kept[:cut]):
                return kept
            kept = self._trim(kept[:cut])

    def _render(self, kept: list[int] | range, markers: bool = True) -> str:
        out: list[str] = []
        for index in kept:
            line = self.lines[index]
            shown = line.raw.rstrip() if line.raw else ("> " * line.depth if markers else "") + line.text
            if shown or (out and out[-1]):
                out.append(shown)
        return "\n".join(out).strip()
