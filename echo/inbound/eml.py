"""Convert raw RFC 822 messages into the JSON shape of a Postmark inbound webhook.

`echo-desk inbound FILE.eml` and the tests replay real mail through the same code path as
Postmark's webhook; this module is the adapter. It uses only the stdlib `email` package and
never raises on malformed mail: bad charsets, broken MIME and odd headers degrade to
replacement characters or empty fields instead.
"""

from __future__ import annotations

import base64
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

_FOLD = re.compile(r"\r?\n[ \t]*")
_MIME_TYPES = mimetypes.MimeTypes()  # built-in table only, so made-up names match on every host


def message_to_postmark(raw: bytes, support_address: str | None = None) -> dict:
    """Convert a raw RFC 822 message into the JSON shape of a Postmark inbound webhook."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    msg = _parse(raw)
    sender = (_addresses(msg, "From") or [_address("", "")])[0]
    to, cc = _addresses(msg, "To"), _addresses(msg, "Cc")
    text_parts, html_parts, attachment_parts = _classify(msg)
    rfc_message_id = _header(msg, "Message-ID").strip()
    original_recipient = to[0]["Email"] if to else (support_address or "")
    return {
        "From": _header(msg, "From"),
        "FromName": sender["Name"],
        "FromFull": {**sender, "MailboxHash": ""},
        "To": _header(msg, "To"),
        "ToFull": to,
        "Cc": _header(msg, "Cc"),
        "CcFull": cc,
        "Bcc": "",
        "OriginalRecipient": original_recipient,
        "ReplyTo": _header(msg, "Reply-To"),
        "Subject": _header(msg, "Subject"),
        "MessageID": str(uuid.uuid5(NAMESPACE, rfc_message_id or hashlib.sha256(raw).hexdigest())),
        "Date": _header(msg, "Date"),
        "MailboxHash": _mailbox_hash(to + cc, support_address),
        "TextBody": "\n".join(text_parts),
        "HtmlBody": "\n".join(html_parts),
        "StrippedTextReply": "",
        "Tag": "",
        "Headers": [
            {"Name": name, "Value": _decode_header_value(value)}
            for name, value in _raw_headers(msg)
            if name.lower() not in LIFTED_HEADERS
        ],
        "Attachments": [_attachment(part, n) for n, part in enumerate(attachment_parts, 1)],
    }


def _parse(raw: bytes) -> Message:
    """Parse with the modern policy, falling back to the lenient legacy one."""
    for policy in (email.policy.default, email.policy.compat32):
        try:
            return email.message_from_bytes(raw, policy=policy)
        except Exception:
            continue
    return Message()


def _raw_headers(msg: Message) -> list[tuple[str, str]]:
    """Return the headers exactly as stored, skipping the policy's parsing."""
    try:
        return [(str(name), str(value)) for name, value in msg.raw_items()]
    except Exception:
        return []


def _header(msg: Message, name: str) -> str:
    """Return the first header called `name`, unfolded and decoded, or ""."""
    for key, value in _raw_headers(msg):
        if key.lower() == name.lower():
            return _decode_header_value(value)
    return ""


def _decode_header_value(value: str) -> str:
    """Unfold a raw header value and decode RFC 2047 encoded words and stray 8-bit bytes."""
    value = _FOLD.sub(" ", _from_surrogates(value)).strip()
    if "=?" not in value:
        return value
    try:
        return "".join(
            chunk if isinstance(chunk, str) else _decode_bytes(chunk, charset)
            for chunk, charset in decode_header(value)
        )
    except Exception:
        return value


def _from_surrogates(value: str) -> str:
    """Recover raw 8-bit header bytes (kept as surrogates by the parser) as UTF-8 or cp1252."""
    try:
        data = value.encode("utf-8", "surrogateescape")
    except UnicodeError:
        return value
    return _decode_bytes(data, None)


def _decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode bytes with a declared charset, falling back to UTF-8 then cp1252 with replacement."""
    label = (charset or "").strip().strip('"').lower()
    if label in ASCII_LABELS:
        candidates = ["utf-8", "cp1252"]
    else:
        candidates = [CHARSET_ALIASES.get(label, label), "utf-8"]
    for candidate in candidates:
        try:
            return data.decode(candidate)
        except (LookupError, UnicodeError, ValueError):
            continue
    try:
        return data.decode(candidates[0], errors="replace")
    except (LookupError, ValueError):
        return data.decode("utf-8", errors="replace")


def _address(name: str, addr: str) -> dict:
    """Return one Postmark recipient object."""
    local = addr.partition("@")[0]
    return {
        "Email": addr,
        "Name": _decode_header_value(name),
        "MailboxHash": local.partition("+")[2],
    }


def _addresses(msg: Message, name: str) -> list[dict]:
    """Return every mailbox listed in the headers called `name`."""
    values = [_from_surrogates(v) for k, v in _raw_headers(msg) if k.lower() == name.lower()]
    try:
        pairs = getaddresses([_FOLD.sub(" ", value) for value in values])
    except Exception:
        return []
    return [_address(n, a.strip()) for n, a in pairs if a and "@" in a]


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


def _classify(msg: Message) -> tuple[list[str], list[str], list[Message]]:
    """Split leaf parts into plain bodies, HTML bodies and attachments."""
    text, html, attachments = [], [], []
    for part in _leaves(msg):
        ctype = _content_type(part)
        if ctype == "text/html" and not _is_attachment(part):
            html.append(_body(part))
        elif ctype == "text/plain" and not _is_attachment(part):
            text.append(_body(part))
        elif ctype.startswith("multipart/"):
            text.append(_body(part))  # boundary missing or broken: keep what text there is
        else:
            attachments.append(part)
    return [t for t in text if t], [h for h in html if h], attachments


def _content_type(part: Message) -> str:
    """Return the part's MIME type, or text/plain when it cannot be read."""
    try:
        return part.get_content_type()
    except Exception:
        return "text/plain"


def _is_attachment(part: Message) -> bool:
    """Tell whether a text part is a file rather than the message body."""
    try:
        return part.get_content_disposition() == "attachment" or bool(part.get_filename())
    except Exception:
        return False


def _body(part: Message) -> str:
    """Return a text part's content decoded with its declared charset, with LF line ends."""
    try:
        charset = part.get_content_charset()
    except Exception:
        charset = None
    return _decode_bytes(_payload_bytes(part), charset).replace("\r\n", "\n")


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


def _attachment(part: Message, number: int) -> dict:
    """Return one Postmark attachment object for a leaf part."""
    data = _payload_bytes(part)
    ctype = _content_type(part)
    content_id = _header(part, "Content-ID").strip().strip("<>").strip()
    return {
        "Name": _filename(part, ctype, number),
        "Content": base64.b64encode(data).decode("ascii"),
        "ContentType": ctype,
        "ContentLength": len(data),
        "ContentID": content_id,
    }


def _filename(part: Message, ctype: str, number: int) -> str:
    """Return the part's decoded filename without any path, or one made up from its type."""
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    name = _decode_header_value(str(name))
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if name and name not in (".", ".."):
        return name
    if ctype == "message/rfc822":
        return "forwarded-message.eml"
    extension = _MIME_TYPES.guess_extension(ctype) or ".bin"
    maintype = ctype.partition("/")[0]
    prefix = maintype if maintype in ("image", "audio", "video") else "attachment"
    return f"{prefix}-{number}{extension}"
