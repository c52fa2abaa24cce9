"""Signed reply tokens: `support+TOKEN@…` in Reply-To proves a reply belongs to a ticket.

TOKEN is the ticket id, the day it was minted and a truncated HMAC-SHA256 of both, in base32 and
lower case (mail systems may fold the case of the local part). Verification is constant-time and
a token has a fixed length, so nothing about a forgery's closeness leaks.

A token stays authentic for ever, but is strong evidence (it threads whoever sends it) only for
LIFETIME after it was minted: after that it has been forwarded, archived and quoted for long
enough, and threading treats it like a ticket number in the subject. Tokens of the first format
(ticket id and MAC only, 42 characters) still verify; having no date, they count as minted on
LEGACY_ISSUED_ON, the day dated tokens shipped, so they too stop being strong a LIFETIME later.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MAC_BYTES = 10
TOKEN_LENGTH = 45  # 28 bytes in base32: 16 of ticket id, 2 of issue day, 10 of MAC
LEGACY_TOKEN_LENGTH = 42  # 26 characters of ticket id + 16 of MAC
LIFETIME = timedelta(days=365)
EPOCH = date(2020, 1, 1)  # issue days count from here, in two bytes (until 2199)
LEGACY_ISSUED_ON = date(2026, 12, 3)


@dataclass(frozen=True)
class Token:
    ticket_id: uuid.UUID
    issued_on: date

    def expired(self, today: date | None = None) -> bool:
        return (today or _today()) - self.issued_on > LIFETIME


def _today() -> date:
    return datetime.now(UTC).date()


@functools.lru_cache(maxsize=8)
def _key(secret: str, version: bytes) -> bytes:
    return hmac.new(secret.encode(), b"echo.reply-token." + version, hashlib.sha256).digest()


def _mac(secret: str, version: bytes, signed: bytes) -> bytes:
    return hmac.new(_key(secret, version), signed, hashlib.sha256).digest()[:MAC_BYTES]


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def mint(secret: str, ticket_id: uuid.UUID, *, issued_on: date | None = None) -> str:
    """Return the reply token for a ticket, dated today (or `issued_on`)."""
    day = min(max(((issued_on or _today()) - EPOCH).days, 0), 0xFFFF)
    signed = ticket_id.bytes + day.to_bytes(2, "big")
    return _b32(signed + _mac(secret, b"v2", signed))


def check(secret: str, token: str) -> Token | None:
    """Return what an authentic token says (ticket and issue day), or None when it is malformed or not ours."""
    if len(token) == LEGACY_TOKEN_LENGTH:
        return _check_legacy(secret, token)
    if len(token) != TOKEN_LENGTH:
        return None
    try:
        raw = base64.b32decode(token.upper() + "===")
    except (binascii.Error, ValueError):
        return None
    signed, mac = raw[:18], raw[18:]
    # base32 of 28 bytes leaves one spare bit in the last character: only the canonical spelling
    # is ours, so that no two tokens name the same ticket
    if len(raw) != 28 or _b32(raw) != token.lower() or not hmac.compare_digest(mac, _mac(secret, b"v2", signed)):
        return None
    return Token(uuid.UUID(bytes=signed[:16]), EPOCH + timedelta(days=int.from_bytes(signed[16:], "big")))


def _check_legacy(secret: str, token: str) -> Token | None:
    try:
        ticket_bytes = base64.b32decode(token[:26].upper() + "======")
        mac = base64.b32decode(token[26:].upper())
    except (binascii.Error, ValueError):
        return None
    if len(ticket_bytes) != 16 or _b32(ticket_bytes) != token[:26].lower():
        return None
    if not hmac.compare_digest(mac, _mac(secret, b"v1", ticket_bytes)):
        return None
    return Token(uuid.UUID(bytes=ticket_bytes), LEGACY_ISSUED_ON)


def verify(secret: str, token: str) -> uuid.UUID | None:
    """Return the ticket id an authentic token names, expired or not, or None when it is malformed or not ours."""
    found = check(secret, token)
    return found.ticket_id if found else None


def reply_address(secret: str, support_address: str, ticket_id: uuid.UUID) -> str:
    """The `support+TOKEN@domain` address that routes a reply back to its ticket."""
    local, _, domain = support_address.rpartition("@")
    return f"{local}+{mint(secret, ticket_id)}@{domain}"
