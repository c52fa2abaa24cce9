"""Signed reply tokens: `support+TOKEN@…` in Reply-To proves a reply belongs to a ticket.

TOKEN is the ticket id and a truncated HMAC-SHA256 of it, both base32 in lower case (mail
systems may fold the case of the local part). Verification is constant-time and the token
has a fixed length, so nothing about a forgery's closeness leaks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid

MAC_BYTES = 10
TOKEN_LENGTH = 42  # 26 characters of ticket id + 16 of MAC


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"echo.reply-token.v1", hashlib.sha256).digest()


def _mac(secret: str, ticket_id: uuid.UUID) -> bytes:
    return hmac.new(_key(secret), ticket_id.bytes, hashlib.sha256).digest()[:MAC_BYTES]


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=").lower()


def mint(secret: str, ticket_id: uuid.UUID) -> str:
    """Return the reply token for a ticket."""
    return _b32(ticket_id.bytes) + _b32(_mac(secret, ticket_id))


def verify(secret: str, token: str) -> uuid.UUID | None:
    """Return the ticket id a token names, or None when it is malformed or not ours."""
    if len(token) != TOKEN_LENGTH:
        return None
    try:
        ticket_bytes = base64.b32decode(token[:26].upper() + "======")
        mac = base64.b32decode(token[26:].upper())
    except (binascii.Error, ValueError):
        return None
    if len(ticket_bytes) != 16:
        return None
    ticket_id = uuid.UUID(bytes=ticket_bytes)
    if not hmac.compare_digest(mac, _mac(secret, ticket_id)):
        return None
    return ticket_id


def reply_address(secret: str, support_address: str, ticket_id: uuid.UUID) -> str:
    """The `support+TOKEN@domain` address that routes a reply back to its ticket."""
    local, _, domain = support_address.rpartition("@")
    return f"{local}+{mint(secret, ticket_id)}@{domain}"
