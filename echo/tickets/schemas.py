"""JSON shapes of tickets for agents (the agent API), and the request bodies it accepts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from echo.mail.models import OutboxMessage
from echo.tickets.models import Category, Thread, Ticket
from echo.validation import M, validate


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


# JSON has no date type: an ISO 8601 string with its zone ("2026-12-05T09:00:00+01:00").
Moment = Annotated[AwareDatetime, Field(strict=False)]


class ReplyIn(_Strict):
    body_text: Annotated[str, Field(max_length=200_000)] | None = None
    body_html: Annotated[str, Field(max_length=400_000)] | None = None
    status: Literal["open", "pending", "resolved"] | None = "pending"
    # Absent: reply-all (the customer and whoever else the latest customer message was to); [] for none.
    cc: Annotated[list[Annotated[str, Field(max_length=320)]], Field(max_length=50)] | None = None
    bcc: Annotated[list[Annotated[str, Field(max_length=320)]], Field(max_length=50)] = []
    # The traffic cop: the time of the latest message the writer had seen; a newer customer message or
    # colleague's reply makes the reply 409 `conversation_changed` (absent: no check).
    seen_until: Moment | None = None


class ConversationIn(_Strict):
    """A conversation an agent starts: the customer (found or created by address) and the first message."""

    customer_email: Annotated[str, Field(max_length=320)]
    customer_name: Annotated[str, Field(max_length=200)] | None = None
    subject: Annotated[str, Field(min_length=1, max_length=1000)]
    body_text: Annotated[str, Field(max_length=200_000)] | None = None
    body_html: Annotated[str, Field(max_length=400_000)] | None = None
    status: Literal["open", "pending", "resolved"] | None = "pending"

    @field_validator("customer_email")
    @classmethod
    def _an_address(cls, value: str) -> str:
        from echo.inbound.schemas import is_address, normalize_email

        address = normalize_email(value)
        if not is_address(address):
            raise ValueError("This is not an email address.")
        return address


class NoteIn(_Strict):
    body_text: Annotated[str, Field(min_length=1, max_length=200_000)]


class TicketPatch(_Strict):
    status: Literal["open", "pending", "resolved", "closed"] | None = None
    assignee: Annotated[str, Field(max_length=320)] | None = None
    tags: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)] | None = None
    category: Category | None = None


class MergeIn(_Strict):
    into: Annotated[str, Field(min_length=1, max_length=40)]


class SnoozeIn(_Strict):
    until: Moment | None  # null wakes the ticket now


class SpamIn(_Strict):
    block: bool = False


class BulkIn(_Strict):
    tickets: Annotated[list[Annotated[str, Field(max_length=40)]], Field(min_length=1, max_length=1000)]
    action: Literal["status", "assign", "tag", "untag", "snooze", "spam", "delete", "release"]
    value: Annotated[str, Field(max_length=320)] | None = None  # the status, the agent's email, the tag
    until: Moment | None = None  # for snooze


class DraftIn(_Strict):
    body_text: Annotated[str, Field(max_length=200_000)] = ""
    cc: Annotated[str, Field(max_length=20_000)] = ""
    bcc: Annotated[str, Field(max_length=20_000)] = ""


class SavedReplyIn(_Strict):
    name: Annotated[str, Field(min_length=1, max_length=200)]
    body_text: Annotated[str, Field(min_length=1, max_length=200_000)]


def parse(model: type[M], data: object) -> M:
    """Validate a request body, turning every problem into one 422 with per-field details."""
    return validate(model, data)


def outbox_json(outbox: OutboxMessage | None) -> dict | None:
    if outbox is None:
        return None
    return {
        "id": str(outbox.id), "state": outbox.state, "attempts": outbox.attempts, "last_error": outbox.last_error,
        "sent_at": _iso(outbox.sent_at), "delivered_at": _iso(outbox.delivered_at),
    }


def thread_json(thread: Thread, outbox: OutboxMessage | None = None) -> dict:
    return {
        "id": str(thread.id),
        "direction": thread.direction,
        "source": thread.source,
        "sender": {"email": thread.sender_email, "name": thread.sender_name} if thread.sender_email else None,
        "authored_by": str(thread.authored_by) if thread.authored_by else None,
        "body_text": thread.body_text,
        "body_html": thread.body_html,
        "stripped_text": thread.stripped_text,
        "is_auto_reply": thread.is_auto_reply,
        "quarantined": thread.quarantined,
        "cc": list(thread.cc or []),
        "bcc": list(thread.bcc or []),
        "created_at": _iso(thread.created_at),
        "attachments": [
            {"id": str(a.id), "filename": a.filename, "content_type": a.content_type, "size_bytes": a.size_bytes,
             "erased": a.erased_at is not None}
            for a in thread.attachments
        ],
        "outbox": outbox_json(outbox) if thread.direction == "outbound" else None,
    }


def ticket_json(ticket: Ticket, threads: list[tuple[Thread, OutboxMessage | None]] | None = None) -> dict:
    customer = ticket.customer
    body: dict[str, Any] = {
        "id": str(ticket.id),
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status,
        "customer": {"id": str(customer.id), "email": customer.email, "name": customer.display_name,
                     "email_bounced": customer.email_bounced} if customer else None,
        "assignee": {"id": str(ticket.assignee.id), "email": ticket.assignee.email,
                     "name": ticket.assignee.display_name} if ticket.assignee else None,
        "tags": list(ticket.tags),
        "category": ticket.category,
        "source": ticket.source,
        "quarantined": ticket.quarantined,
        "quarantine_reason": ticket.quarantine_reason,
        "previous_ticket_id": str(ticket.previous_ticket_id) if ticket.previous_ticket_id else None,
        "merged_into": ticket.merged_into_id and str(ticket.merged_into_id),
        "snoozed_until": _iso(ticket.snoozed_until),
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "closed_at": _iso(ticket.closed_at),
    }
    if threads is not None:
        body["threads"] = [thread_json(t, o) for t, o in threads]
    return body


def _iso(value) -> str | None:
    return value.isoformat() if value else None
