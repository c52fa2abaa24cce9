"""What each audience may see of an event-log row: agents see every ticket change (no message text);
a customer sees only support's replies and status changes on their own tickets, in the portal's words."""

from __future__ import annotations

import uuid
from typing import Any

from echo.live.stream import Row
from echo.portal.schemas import STATUS_FOR_CUSTOMER

# audit action -> the event's kind, for agents
AGENT_KINDS = {
    "tickets.inbound": "message", "tickets.portal_message": "message", "tickets.reply": "reply",
    "tickets.note": "note", "tickets.status": "status", "tickets.assign": "assignee", "tickets.tags": "tags",
    "tickets.category": "category", "tickets.merge": "merge", "tickets.merged_into": "merge",
    "tickets.unmerge": "merge", "tickets.snooze": "snooze", "tickets.unsnooze": "snooze", "tickets.woke": "snooze",
    "tickets.spam": "quarantine", "tickets.deleted": "quarantine", "tickets.release": "quarantine",
    "tickets.reply_undone": "reply", "tickets.start": "created", "tickets.portal_create": "created",
    "tickets.portal_reply": "message", "tickets.from_snapshot": "created",
    "tickets.draft_started": "draft", "tickets.purged": "deleted", "tickets.viewed": "viewing",
}
# Payload facts an agent's browser may be told (never text, never addresses).
AGENT_FACTS = ("old", "new", "created", "thread_id", "added", "removed", "until", "quarantined", "into_number",
               "source_number")


def for_agents(row: Row) -> dict[str, Any] | None:
    kind = AGENT_KINDS.get(row.action)
    if kind is None:
        return None
    facts = {key: row.payload[key] for key in AGENT_FACTS if key in row.payload}
    if row.action == "tickets.inbound" and row.payload.get("created"):
        kind = "created"
    return {"id": str(row.cursor), "kind": kind, "ticket": row.number, "ticket_id": str(row.ticket_id)
            if row.ticket_id else None, "actor": row.actor, "at": row.at.isoformat(), **facts}


def for_customer(row: Row, customer_id: uuid.UUID) -> dict[str, Any] | None:
    """The portal's view: the customer's own tickets only; support replied, the status changed."""
    if row.customer_id != customer_id or row.ticket_id is None:
        return None
    base = {"id": str(row.cursor), "ticket_id": str(row.ticket_id), "at": row.at.isoformat()}
    if row.action == "tickets.reply":
        return {**base, "kind": "support_replied", "message_id": row.payload.get("thread_id")}
    if row.action == "tickets.status" and row.payload.get("new") in STATUS_FOR_CUSTOMER:
        old, new = row.payload.get("old"), row.payload["new"]
        if STATUS_FOR_CUSTOMER.get(old or "") == STATUS_FOR_CUSTOMER[new]:
            return None
        return {**base, "kind": "status_changed", "status": STATUS_FOR_CUSTOMER[new]}
    return None
