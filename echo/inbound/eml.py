"""Convert raw RFC 822 messages into the JSON shape of a Postmark inbound webhook.

`echo-desk inbound FILE.eml` and the tests replay real mail through the same code path as
Postmark's webhook; this module is the adapter. It parses with the stdlib `email` package and
never raises on malformed mail: bad charsets, broken MIME and odd headers degrade to
replacement characters or empty fields instead. Bytes sent without a charset that are not
UTF-8 are decoded by detection (charset-normalizer), and as cp1252 when no guess is confident.
"""

from __future__ import annotations

import base64
import codecs
import email
import email.policy
import hashlib
import mimetypes
import re
import uuid
from collections.abc import Iterator
from email.header import decode_header
from email.message import Message
from email.utils import getaddresses

from charset_normalizer import from_bytes

# Fixed forever: replaying the same file must always yield the same Postmark-style MessageID.
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://echo.invalid/inbound/eml")

# Postmark lifts these into their own fields and leaves them out of `Headers`.
LIFTED_HEADERS = {"from", "to", "cc", "bcc", "subject", "date", "reply-to"}

# Labels that mail clients use loosely; decode them the way browsers do.
CHARSET_ALIASES = {
    "iso-8859-1": "cp1252",
    "latin-1": "cp1252",
    "latin1": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "x-sjis": "shift_jis",
    "unicode-1-1-utf-7": "utf-7",
}
ASCII_LABELS = {"", "us-ascii", "ascii", "ansi_x3.4-1968", "unknown-8bit", "x-unknown", "default"}

# Undeclared 8-bit bytes are guessed from at most this many (detection reads samples of them).
DETECT_BYTES = 64 * 1024
# Never guessed for 8-bit bytes that are not UTF-8: wide encodings read any bytes as CJK.
_NOT_GUESSED = ["utf_16", "utf_16_be", "utf_16_le", "utf_32", "utf_32_be", "utf_32_le", "utf_7"]
_SHIFT_JIS = ["cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213"]
_CHARACTER_END = re.compile(rb"[\x00-\x2f\x3a-\x7f]")

_FOLD = re.compile(r"\r?\n[ \t]*")
_MIME_TYPES = mimetypes.MimeTypes()  # built-in table only, so made-up names match on every host


def message_to_postmark(raw: bytes, support_address: str | None = None) -> dict:
    """Convert a raw RFC 822 message into the JSON shape of a Postmark inbound webhook."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    msg = _parse(raw)
    text_parts, html_parts, attachment_parts = _classify(msg)
    header_charset = _raw_header_charset([msg, *attachment_parts])
    bodies = _bodies(text_parts + html_parts, header_charset)
    texts, htmls = bodies[:len(text_parts)], bodies[len(text_parts):]
    raw_charset = header_charset or "cp1252"
    sender = (_addresses(msg, "From", raw_charset) or [_address("", "", raw_charset)])[0]
    to, cc = _addresses(msg, "To", raw_charset), _addresses(msg, "Cc", raw_charset)
    rfc_message_id = _header(msg, "Message-ID", raw_charset).strip()
    original_recipient = to[0]["Email"] if to else (support_address or "")
    return {
        "From": _header(msg, "From", raw_charset),
        "FromName": sender["Name"],
        "FromFull": {**sender, "MailboxHash": ""},
        "To": _header(msg, "To", raw_charset),
        "ToFull": to,
        "Cc": _header(msg, "Cc", raw_charset),
        "CcFull": cc,
        "Bcc": "",
        "OriginalRecipient": original_recipient,
        "ReplyTo": _header(msg, "Reply-To", raw_charset),
        "Subject": _header(msg, "Subject", raw_charset),
        "MessageID": str(uuid.uuid5(NAMESPACE, rfc_message_id or hashlib.sha256(raw).hexdigest())),
        "Date": _header(msg, "Date", raw_charset),
        "MailboxHash": _mailbox_hash(to + cc, support_address),
        "TextBody": "\n".join(text for text in texts if text),
        "HtmlBody": "\n".join(html for html in htmls if html),
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": name, "Value": _decode_header_value(value, raw_charset)}
            for name, value in _raw_headers(msg)
            if name.lower() not in LIFTED_HEADERS
        ],
        "Attachments": _attachments(attachment_parts, raw_charset),
    }


def _parse(raw: bytes) -> Message:
    """Parse with the lenient legacy policy, whose headers are plain strings read in linear time.

    The modern policy parses structured headers (Content-Type, addresses) with a parser that
    re-reads them on every lookup: one 320 KB folded Content-Type took over 20 s."""
    try:
        return email.message_from_bytes(raw, policy=email.policy.compat32)
    except Exception:
        return Message()


def _raw_headers(msg: Message) -> list[tuple[str, str]]:
    """Return the headers exactly as stored, skipping the policy's parsing."""
    try:
        return [(str(name), str(value)) for name, value in msg.raw_items()]
    except Exception:
        return []


def _header(msg: Message, name: str, raw_charset: str) -> str:
    """Return the first header called `name`, unfolded and decoded, or ""."""
    for key, value in _raw_headers(msg):
        if key.lower() == name.lower():
            return _decode_header_value(value, raw_charset)
    return ""


def _decode_header_value(value: str, raw_charset: str) -> str:
    """Unfold a raw header value and decode RFC 2047 encoded words and stray 8-bit bytes."""
    value = _FOLD.sub(" ", _from_surrogates(value, raw_charset)).strip()
    if "=?" not in value:
        return value
    try:
        return "".join(
            chunk if isinstance(chunk, str)
            # decode_header hands back the text around encoded words as raw-unicode-escape bytes
            else chunk.decode("raw-unicode-escape") if charset is None
            else _decode_bytes(chunk, charset, raw_charset)
            for chunk, charset in decode_header(value)
        )
    except Exception:
        return value


def _from_surrogates(value: str, raw_charset: str) -> str:
    """Recover raw 8-bit header bytes (kept as surrogates by the parser) as UTF-8 or `raw_charset`."""
    data = _surrogate_bytes(value)
    if data is None:
        return value
    try:
        return data.decode("utf-8")
    except UnicodeError:
        return _replacing(data, raw_charset)


def _surrogate_bytes(value: str) -> bytes | None:
    """Return a header value as the bytes it came as, or None when it cannot be had."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return None


def _raw_header_charset(parts: list[Message]) -> str | None:
    """Guess the one charset of the undeclared 8-bit bytes in these parts' headers, if they have any.

    A name or a subject alone is too short to tell KOI8-R from Big5, so every such header value
    that is not UTF-8 is read together; a client that writes raw 8-bit headers writes them all
    in its one local charset.
    """
    values = (_surrogate_bytes(value) for part in parts for _, value in _raw_headers(part))
    undeclared = [data for data in values if data is not None and not _decodes(data, "utf-8")]
    return _detect_charset(_joined_sample(undeclared)) if undeclared else None


def _detect_charset(data: bytes) -> str | None:
    """Return the charset that explains bytes which are not UTF-8, or None when no guess is confident.

    Western text fits a dozen single-byte code pages equally well, and the detector's pick
    among them is arbitrary; cp1252, what undeclared Western mail nearly always is, wins those.
    """
    data = _sample(data)
    try:
        encoding = _best_guess(data, _NOT_GUESSED)
        if encoding and _mostly_halfwidth_kana(data.decode(encoding, errors="replace")):
            # Lower-case KOI8-R reads as Shift_JIS half-width katakana, which mail all but never uses.
            encoding = _best_guess(data, _NOT_GUESSED + _SHIFT_JIS)
        return encoding
    except Exception:  # the detector must never cost the mail
        return None


def _sample(data: bytes) -> bytes:
    """Return the first DETECT_BYTES of data, cut where no multibyte character can be split.

    In every multibyte charset a detector guesses, the end of an ASCII byte is the end of a
    character, except for GB18030's digits in the middle of its four-byte sequences.
    """
    if len(data) <= DETECT_BYTES:
        return data
    ends = [m.end() for m in _CHARACTER_END.finditer(data, DETECT_BYTES - 4096, DETECT_BYTES)]
    return data[:ends[-1] if ends else DETECT_BYTES]


def _best_guess(data: bytes, excluded: list[str]) -> str | None:
    """Return the detector's best charset, preferring cp1252 to others that fit as well."""
    matches = from_bytes(data, cp_exclusion=excluded, enable_fallback=False)
    best = matches.best()
    if best is None or best.encoding in excluded:
        return None
    if any("cp1252" in match.could_be_from_charset and match.chaos <= best.chaos + 0.05 for match in matches):
        return "cp1252"
    return best.encoding


def _mostly_halfwidth_kana(text: str) -> bool:
    wide = [char for char in text if ord(char) > 0x7F]
    return sum("\uff61" <= char <= "\uff9f" for char in wide) * 2 > len(wide)


def _decode_bytes(data: bytes, charset: str | None, undeclared: str) -> str:
    """Decode bytes with their declared charset, else as UTF-8, else as `undeclared`.

    A declared charset that is wrong falls back to UTF-8 and then to replacement characters;
    one that is missing, ASCII (while the bytes are not) or unknown counts as undeclared.
    """
    declared = _codec(charset)
    for candidate in [declared, "utf-8"] if declared else ["utf-8"]:
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeError, ValueError):
            continue
    return _replacing(data, *[declared] if declared else [], undeclared)


def _replacing(data: bytes, *codecs: str) -> str:
    """Decode with the first of the codecs that can put replacement characters in (idna cannot)."""
    for codec in codecs:
        try:
            return data.decode(codec, errors="replace")
        except (LookupError, UnicodeError, ValueError, TypeError):
            continue
    return data.decode("utf-8", errors="replace")


def _codec(charset: str | None) -> str | None:
    """Return the codec for a declared charset, or None when it is missing, ASCII or unknown."""
    label = (charset or "").strip().strip('"').lower()
    if label in ASCII_LABELS:
        return None
    codec = CHARSET_ALIASES.get(label, label)
    return codec if _known_codec(codec) else None


def _known_codec(name: str) -> bool:
    """Whether Python decodes text in this charset (base64 and rot13 are codecs too, but not text)."""
    try:
        return getattr(codecs.lookup(name), "_is_text_encoding", True)
    except (LookupError, ValueError, TypeError):
        return False


def _address(name: str, addr: str, raw_charset: str) -> dict:
    """Return one Postmark recipient object."""
    local = addr.partition("@")[0]
    return {
        "Email": addr,
        "Name": _decode_header_value(name, raw_charset),
        "MailboxHash": local.partition("+")[2],
    }


def _addresses(msg: Message, name: str, raw_charset: str) -> list[dict]:
    """Return every mailbox listed in the headers called `name`."""
    values = [_from_surrogates(v, raw_charset) for k, v in _raw_headers(msg) if k.lower() == name.lower()]
    try:
        pairs = getaddresses([_FOLD.sub(" ", value) for value in values])
    except Exception:
        return []
    return [_address(n, a.strip(), raw_charset) for n, a in pairs if a and "@" in a]


def _mailbox_hash(recipients: list[dict], support_address: str | None) -> str:
    """Return HASH from a `support+HASH@domain` recipient of our support mailbox, or ""."""
    if not support_address or "@" not in support_address:
        return ""
    base, _, domain = support_address.strip().lower().rpartition("@")
    for recipient in recipients:
        local, _, rdomain = recipient["Email"].rpartition("@")
        head, plus, mailbox_hash = local.partition("+")
        if plus and mailbox_hash and head.lower() == base and rdomain.lower() == domain:
            return mailbox_hash
    return ""


def _leaves(msg: Message) -> Iterator[Message]:
    """Yield the leaf parts of a message in order, treating attached messages as leaves."""
    stack = [msg]
    while stack:
        part = stack.pop()
        try:
            children = part.get_payload() if part.is_multipart() else None
        except Exception:
            children = None
        if isinstance(children, list) and _content_type(part).startswith("multipart/"):
            stack.extend(child for child in reversed(children) if isinstance(child, Message))
        else:
            yield part


def _classify(msg: Message) -> tuple[list[Message], list[Message], list[Message]]:
    """Split leaf parts into plain bodies, HTML bodies and attachments."""
    text, html, attachments = [], [], []
    for part in _leaves(msg):
        ctype = _content_type(part)
        if ctype == "text/html" and not _is_attachment(part):
            html.append(part)
        elif ctype == "text/plain" and not _is_attachment(part):
            text.append(part)
        elif ctype.startswith("multipart/"):
            text.append(part)  # boundary missing or broken: keep what text there is
        else:
            attachments.append(part)
    return text, html, attachments


def _content_type(part: Message) -> str:
    """Return the part's MIME type, or text/plain when it cannot be read."""
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _is_attachment(part: Message) -> bool:
    """Tell whether a text part is a file rather than the message body.

    Only `Content-Disposition: attachment` makes it one: clients also name the text they show
    inline (`inline; filename=…`, or a bare `name=`), and that text is still what was written.
    """
    try:
        return part.get_content_disposition() == "attachment"
    except Exception:
        return False


def _bodies(parts: list[Message], header_charset: str | None) -> list[str]:
    """Decode text parts with their declared charsets, guessing once for all that have none.

    The client that wrote raw 8-bit headers wrote its bodies in the same charset, and a short
    body alone is hard to tell, so a charset guessed from the headers comes first when it fits
    (except cp1252, which fits nearly any bytes).
    """
    contents = []
    for part in parts:
        try:
            charset = _codec(part.get_content_charset())
        except Exception:
            charset = None
        contents.append((_payload_bytes(part), charset))
    undeclared = [data for data, charset in contents if charset is None and not _decodes(data, "utf-8")]
    guess = header_charset or "cp1252"
    if undeclared and not (guess != "cp1252" and all(_decodes(data, guess) for data in undeclared)):
        guess = _detect_charset(_joined_sample(undeclared)) or guess
    return [_decode_bytes(data, charset, guess).replace("\r\n", "\n") for data, charset in contents]


def _decodes(data: bytes, charset: str) -> bool:
    try:
        data.decode(charset)
    except (LookupError, UnicodeError, ValueError):
        return False
    return True


def _joined_sample(chunks: list[bytes]) -> bytes:
    """Join the chunks, one a line, until there is enough to detect from."""
    sample = bytearray()
    for chunk in chunks:
        sample += chunk[:DETECT_BYTES + 4096] + b"\n"  # _sample cuts it back where no character is split
        if len(sample) >= DETECT_BYTES:
            break
    return bytes(sample)


def _payload_bytes(part: Message) -> bytes:
    """Return a part's transfer-decoded bytes (an attached message is re-serialised)."""
    try:
        if not part.is_multipart():
            data = part.get_payload(decode=True)
            return data if isinstance(data, bytes) else b""
        payload = part.get_payload()
        if (_content_type(part) == "message/rfc822" and isinstance(payload, list) and len(payload) == 1
                and isinstance(payload[0], Message)):
            return payload[0].as_bytes(policy=email.policy.compat32)
        return part.as_bytes(policy=email.policy.compat32)
    except Exception:
        return b""


def _attachments(parts: list[Message], raw_charset: str) -> list[dict]:
    """Return the Postmark attachment objects, naming calendar invitations invite.ics, invite-2.ics…"""
    attachments, invites = [], 0
    for number, part in enumerate(parts, 1):
        ctype = _content_type(part)
        name = _filename(part, raw_charset)
        if not name and ctype == "text/calendar":
            invites += 1
            name = "invite.ics" if invites == 1 else f"invite-{invites}.ics"
        attachments.append(_attachment(part, ctype, name or _made_up_filename(ctype, number), raw_charset))
    return attachments


def _attachment(part: Message, ctype: str, name: str, raw_charset: str) -> dict:
    """Return one Postmark attachment object for a leaf part."""
    data = _payload_bytes(part)
    content_id = _header(part, "Content-ID", raw_charset).strip().strip("<>").strip()
    return {
        "Name": name,
        "Content": base64.b64encode(data).decode("ascii"),
        "ContentType": ctype,
        "ContentLength": len(data),
        "ContentID": content_id,
    }


def _filename(part: Message, raw_charset: str) -> str:
    """Return the part's decoded filename without any path, or "" when it has none."""
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    if "\ufffd" in name:  # the parser gave up on raw 8-bit bytes in the parameter
        name = _raw_filename(part, raw_charset) or name
    name = _decode_header_value(str(name), raw_charset)
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "" if name in (".", "..") else name


def _raw_filename(part: Message, raw_charset: str) -> str:
    """Read the filename from the raw headers, their undeclared 8-bit bytes decoded as `raw_charset`."""
    holder = Message()  # the lenient legacy policy, which takes parameters as they are
    try:
        for key, value in _raw_headers(part):
            if key.lower() in ("content-disposition", "content-type"):
                holder[key] = _from_surrogates(value, raw_charset)
        return str(holder.get_filename() or "")
    except Exception:
        return ""


def _made_up_filename(ctype: str, number: int) -> str:
    """Return a filename for a part that has none, made up from its type and position."""
    if ctype == "message/rfc822":
        return "forwarded-message.eml"
    extension = _MIME_TYPES.guess_extension(ctype) or ".bin"
    maintype = ctype.partition("/")[0]
    prefix = maintype if maintype in ("image", "audio", "video") else "attachment"
    return f"{prefix}-{number}{extension}"
