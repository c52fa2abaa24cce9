"""Machine reports about mail: bounces (RFC 3464), spam complaints (RFC 5965), read receipts
(RFC 8098) and DMARC reports (RFC 7489).

No person wrote them and none may be acknowledged. A report names the message it is about (the
original's headers ride along as a `message/rfc822` or `text/rfc822-headers` part, or quoted in
the text), so a bounce of Echo's own mail threads onto that mail's ticket and says on its outbox
row why it was refused. Everything here reads a bounded prefix of each part.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from echo.inbound.mail_threading import normalize_message_id

BOUNCE, COMPLAINT, RECEIPT, DMARC = "bounce", "complaint", "receipt", "dmarc"
REPORT_PARTS = {
    "message/delivery-status": BOUNCE, "message/global-delivery-status": BOUNCE,
    "message/feedback-report": COMPLAINT, "message/disposition-notification": RECEIPT,
    "message/global-disposition-notification": RECEIPT,
}
REPORT_TYPES = {"delivery-status": BOUNCE, "feedback-report": COMPLAINT, "disposition-notification": RECEIPT}
ORIGINAL_PARTS = {"message/rfc822", "text/rfc822-headers", "message/global", "message/global-headers"}
MAX_PART_CHARS = 96_000  # base64 of the first 64 KB: a message's headers are in its first few KB
MAX_TEXT_CHARS = 64_000
MAX_IDS = 10

_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([a-z-]+)", re.IGNORECASE)
_DMARC_SUBJECT = re.compile(r"^\s*(report\s+domain:|dmarc\s+aggregate\s+report)", re.IGNORECASE)
_ID_LINE = re.compile(r"^[ \t>]*(?:original-)?message-id[ \t]*:[ \t]*(<[^<>\s]{1,500}>)", re.IGNORECASE | re.MULTILINE)
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=]+")
_FIELD = re.compile(r"^(action|status|diagnostic-code|final-recipient)[ \t]*:[ \t]*(.{0,300})$",
                    re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Report:
    kind: str
    referenced_ids: list[str]  # normalised Message-IDs of the mail the report is about
    failed: bool = False  # a bounce that says delivery failed for good (not "delayed")
    detail: str = ""  # the receiving server's words: status and diagnostic


def read_report(headers: Mapping[str, str], subject: str, attachments: Iterable, text: str) -> Report | None:
    """The report this message is, or None for anything else.

    `attachments` are the payload's (with `ContentType` and base64 `Content`); `headers` by
    lower-cased name, as `InboundEmail.header_map` gives them.
    """
    declared = _REPORT_TYPE.search(headers.get("content-type", "")[:1000])
    kind = REPORT_TYPES.get(declared.group(1).lower()) if declared and "multipart/report" in (
        headers.get("content-type", "").lower()[:200]) else None
    status_part, originals = "", []
    for item in attachments:
        content_type = item.ContentType.split(";", 1)[0].strip().lower()
        if content_type in REPORT_PARTS:
            kind = kind or REPORT_PARTS[content_type]
            status_part = status_part or _decoded(item.Content)
        elif content_type in ORIGINAL_PARTS:
            originals.append(_decoded(item.Content))
    if kind is None and _DMARC_SUBJECT.match(subject[:200]):
        kind = DMARC
    if kind is None:
        return None
    ids: dict[str, None] = {}
    for source in [*originals, text[:MAX_TEXT_CHARS]]:
        for raw in _ID_LINE.findall(source):
            if (message_id := normalize_message_id(raw)) and len(ids) < MAX_IDS:
                ids.setdefault(message_id)
    fields: dict[str, str] = {}
    for name, value in _FIELD.findall(status_part or text[:MAX_TEXT_CHARS]):
        fields.setdefault(name.lower(), value.strip())
    failed = kind == BOUNCE and (fields.get("action", "").lower() == "failed"
                                 or fields.get("status", "").startswith("5"))
    detail = "; ".join(f"{name}: {fields[name]}" for name in ("status", "diagnostic-code") if name in fields)
    return Report(kind, list(ids), failed, detail[:500])


def _decoded(content: str) -> str:
    packed = _NOT_BASE64.sub("", content[:MAX_PART_CHARS])
    try:
        data = base64.b64decode(packed[:len(packed) - len(packed) % 4])
    except (binascii.Error, ValueError):
        return ""
    return data.decode("utf-8", "replace")
