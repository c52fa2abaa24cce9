"""Decide which ticket an inbound message belongs to, strongest evidence first (SPEC §4.2).

Header ids only cross customers when the id is one Echo or Postmark minted (random and
unguessable); ids from customers' own mail clients, subject tokens and ticket numbers only
ever match the sender's own tickets, and only when the sender authenticated. The signed reply
token is cryptographic proof for a year after it was minted, then weak evidence like the rest.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlalchemy import Connection

from echo.inbound.store import Known, customer_ticket_by_seq
from echo.mail import reply_token
from echo.tickets.service import follow_merges
from echo.tickets.store import TicketRef, ticket_by_id

POSTMARK_DOMAIN = "mtasv.net"
MAX_REFERENCES = 50
_ANGLE_ID = re.compile(r"<([^<>\s]{1,500})>")
_SUBJECT_NUMBER = re.compile(r"\[\s*TKT-(\d{1,12})\s*\]", re.IGNORECASE)
_SPACE = re.compile(r"\s")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def spell_message_id(raw: str | None) -> str | None:
    """`<Abc@Host>` → `Abc@Host`, spelled as the sender's client wrote it (62 % of real ids have
    capitals, and mail clients compare them exactly); a bare Postmark uuid gains `@mtasv.net`."""
    if not raw:
        return None
    value = raw.strip().strip("<>").strip()
    if not value or len(value) > 500 or _SPACE.search(value):
        return None
    if "@" not in value:
        return f"{value}@{POSTMARK_DOMAIN}" if _UUID.match(value.lower()) else None
    return value


def normalize_message_id(raw: str | None) -> str | None:
    """`<Abc@Host>` → `abc@host`: how Echo compares and looks up ids (case-insensitively)."""
    spelled = spell_message_id(raw)
    return spelled.lower() if spelled else None


def ids_in_header(value: str | None) -> list[str]:
    """Every message id in an In-Reply-To or References header, bracketed or bare."""
    if not value:
        return []
    found = _ANGLE_ID.findall(value) or value.replace(",", " ").split()
    return [i for i in (normalize_message_id(raw) for raw in found) if i]


def candidate_ids(in_reply_to: str | None, references: str | None) -> list[str]:
    """Ids to try, most specific first: In-Reply-To, then References from newest to oldest."""
    ordered: dict[str, None] = {}  # a set that keeps order: membership is O(1) whatever the header's length
    for message_id in ids_in_header(in_reply_to) + ids_in_header(references)[::-1]:
        ordered.setdefault(message_id)
        if len(ordered) == MAX_REFERENCES:
            break
    return list(ordered)


@dataclass(frozen=True)
class Match:
    ticket: TicketRef
    via: str  # "header" | "token" | "subject"


def find_ticket(
    conn: Connection, *, customer_id: uuid.UUID, candidates: list[str], known: dict[str, Known],
    mailbox_hash: str, subject: str, secret: str, sender_trusted: bool, awaited: Known | None = None,
) -> Match | None:
    """Return the ticket this message replies to, or None for a new conversation.

    Strong evidence threads whoever sent the mail: an id Echo or Postmark minted, a reply token
    younger than its LIFETIME. Weak evidence matches only the sender's own tickets, and only
    when `sender_trusted` (inbound.guards.sender_trusted): anyone can write a customer's address
    into From:, a ticket number into the subject, an id from that customer's own mail client
    into In-Reply-To, or quote a token old enough to have been forwarded.

    `known` (from inbound.store.lookup) already carries the tickets of the referenced ids, so a reply
    threaded by its headers costs no further query. `awaited` is this message's own id when a
    later message of the sender's referred to it first (Postmark retried this one late): it joins
    that ticket, as weak evidence."""
    for hit in (known[c] for c in candidates if c in known):
        if hit.origin == "outbound":
            return Match(_survivor(conn, hit.ticket), "header")
        if sender_trusted and hit.ticket.customer_id == customer_id:
            return Match(_survivor(conn, hit.ticket), "header")
    if awaited is not None and sender_trusted and awaited.ticket.customer_id == customer_id:
        return Match(_survivor(conn, awaited.ticket), "awaited")

    token = reply_token.check(secret, mailbox_hash.strip()) if mailbox_hash else None
    ticket = ticket_by_id(conn, token.ticket_id) if token else None
    if token and ticket:
        if not token.expired():
            return Match(_survivor(conn, ticket), "token")
        if sender_trusted and ticket.customer_id == customer_id:
            return Match(_survivor(conn, ticket), "token")

    number = _SUBJECT_NUMBER.search(subject or "") if sender_trusted else None
    if number:
        ticket = customer_ticket_by_seq(conn, int(number.group(1)), customer_id)
        if ticket:
            return Match(_survivor(conn, ticket), "subject")
    return None


def _survivor(conn: Connection, ticket: TicketRef) -> TicketRef:
    return follow_merges(ticket, lambda ticket_id: ticket_by_id(conn, ticket_id))
