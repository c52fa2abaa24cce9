"""The portal's JSON, built from explicit allow-lists: nothing reaches a customer unless named here."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from echo.tickets.models import Category, Ticket
from echo.validation import M, validate

STATUS_FOR_CUSTOMER = {"open": "open", "pending": "waiting_for_you", "resolved": "resolved", "closed": "resolved"}
MAX_BODY = 20_000

Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Body = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_BODY)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class CreateTicketIn(_In):
    subject: Subject
    body: Body
    category: Category | None = None


class ReplyIn(_In):
    body: Body


def parse(model: type[M], data: object) -> M:
    return validate(model, data, "Some fields are missing or not valid.")


def _iso(value) -> str:
    return value.isoformat()


def unread(ticket) -> bool:
    """Support has replied since the customer last looked."""
    replied = ticket.last_agent_reply_at
    return bool(replied and (ticket.customer_read_at is None or replied > ticket.customer_read_at))


def ticket_summary(ticket) -> dict:
    """A ticket (or a row of service.SUMMARY_COLUMNS) in the customer's list."""
    return {
        "id": str(ticket.id), "number": ticket.number, "subject": ticket.subject,
        "status": STATUS_FOR_CUSTOMER[ticket.status], "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at), "unread": unread(ticket),
    }


def thread_out(thread) -> dict:
    """A row of service.visible_threads: the message body and its attachments, nothing internal."""
    return {
        "id": str(thread.id),
        "from": "customer" if thread.direction == "inbound" else "support",
        "body": thread.body,
        "sent_at": _iso(thread.created_at),
        "attachments": [{"id": a["id"], "filename": a["filename"], "size_bytes": a["size_bytes"]}
                        for a in thread.attachments],
    }


def ticket_detail(ticket, threads: list) -> dict:
    return {
        "id": str(ticket.id), "number": ticket.number, "subject": ticket.subject,
        "status": STATUS_FOR_CUSTOMER[ticket.status], "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at), "threads": [thread_out(t) for t in threads],
    }


def created(ticket: Ticket) -> dict:
    return {"id": str(ticket.id), "number": ticket.number, "subject": ticket.subject,
            "status": STATUS_FOR_CUSTOMER[ticket.status], "created_at": _iso(ticket.created_at)}
