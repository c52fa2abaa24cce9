"""The OpenAPI 3 description of /api/v1/support, served at /api/v1/support/openapi.json."""

from __future__ import annotations

from functools import cache

from echo.portal.schemas import MAX_BODY
from echo.tickets.models import CATEGORIES


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


ERRORS = {
    "400": _error("Malformed request"),
    "401": _error("Missing, expired or invalid token"),
    "403": _error("The ticket does not exist or is not yours (identical answers)"),
    "409": _error("The ticket is closed"),
    "413": _error("Body too large"),
    "415": _error("Not JSON"),
    "422": _error("Fields missing or invalid"),
    "429": {**_error("Too many requests"), "headers": {"Retry-After": {"schema": {"type": "integer"}}}},
    "503": _error("The portal API is switched off for maintenance"),
}
TICKET_ID = {"name": "ticket_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _op(summary: str, ok: dict, *, body: str | None = None, params: list | None = None,
        codes: tuple[str, ...] = ("401", "429", "503")) -> dict:
    operation = {"summary": summary, "responses": {**ok, **{c: ERRORS[c] for c in codes}},
                 "security": [{"bearer": []}], "parameters": params or []}
    if body:
        operation["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}}}
    return operation


def _json(description: str, ref: str, status: str = "200") -> dict:
    return {status: {"description": description,
                     "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}}


@cache
def document() -> dict:
    text_body = {"type": "string", "minLength": 1, "maxLength": MAX_BODY, "pattern": r"\S"}
    timestamp = {"type": "string", "format": "date-time"}
    status = {"type": "string", "enum": ["open", "waiting_for_you", "resolved"]}
    return {
        "openapi": "3.0.3",
        "info": {"title": "Echo support portal API", "version": "1.0.0",
                 "description": "Customers' own tickets, privacy-filtered. Tickets of other customers and missing "
                                "tickets both answer 403 not_found."},
        "paths": {
            "/api/v1/support/health": {"get": {"summary": "Liveness", "security": [], "responses": _json(
                "OK", "Health")}},
            "/api/v1/support/session": {"get": _op("Who the token names", _json("Session", "Session"))},
            "/api/v1/support/events": {"get": {
                "summary": "My tickets' events, live (Server-Sent Events)",
                "description": (
                    "A `text/event-stream` that stays open: one `data:` line of JSON per event on the customer's own "
                    "tickets, `support_replied` (`ticket_id`, `message_id`) or `status_changed` (`ticket_id`, "
                    "`status`), each with an `id:`. Reconnect with `Last-Event-ID` (or `?since=`) to get exactly "
                    "the events after it. Notes and operator fields never appear. Read it with fetch and the "
                    "Authorization header (EventSource cannot send one); the stream ends after ten minutes and "
                    "the client reconnects."),
                "security": [{"bearer": []}],
                "parameters": [{"name": "since", "in": "query", "schema": {"type": "string", "maxLength": 60}}],
                "responses": {"200": {"description": "The stream",
                                      "content": {"text/event-stream": {"schema": {"type": "string"}}}},
                              **{code: ERRORS[code] for code in ("401", "429", "503")}},
            }},
            "/api/v1/support/tickets": {
                "get": _op("List my tickets, newest activity first", _json("Tickets", "TicketList"), params=[
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 10000}},
                    {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 50}},
                ], codes=("400", "401", "429", "503")),
                "post": _op("Open a ticket", _json("Created", "Created", "201"), body="CreateTicket",
                            codes=("400", "401", "413", "415", "422", "429", "503")),
            },
            "/api/v1/support/tickets/{ticket_id}": {"get": _op(
                "Read one of my tickets", _json("Ticket", "TicketDetail"), params=[TICKET_ID],
                codes=("401", "403", "429", "503"))},
            "/api/v1/support/tickets/{ticket_id}/replies": {"post": _op(
                "Reply on my ticket", _json("Reply sent", "ReplyCreated", "201"), body="Reply", params=[TICKET_ID],
                codes=("400", "401", "403", "409", "413", "415", "422", "429", "503"))},
            "/api/v1/support/tickets/{ticket_id}/resolve": {"put": _op(
                "Mark my ticket resolved", _json("Resolved", "Resolved"), params=[TICKET_ID],
                codes=("401", "403", "429", "503"))},
            "/api/v1/support/tickets/{ticket_id}/attachments/{attachment_id}": {"get": _op(
                "Download an attachment", {"200": {"description": "The file, as a download",
                                                   "content": {"application/octet-stream": {"schema": {
                                                       "type": "string", "format": "binary"}}}}},
                params=[TICKET_ID, {"name": "attachment_id", "in": "path", "required": True,
                                    "schema": {"type": "string"}}], codes=("401", "403", "429", "503"))},
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error", "message"], "properties": {
                    "error": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "array"}}},
                "Health": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string"}}},
                "Session": {"type": "object", "required": ["customer_id", "linked"], "properties": {
                    "customer_id": {"type": "string", "nullable": True}, "linked": {"type": "boolean"}}},
                "TicketSummary": {"type": "object", "additionalProperties": False,
                                  "required": ["id", "number", "subject", "status", "created_at", "updated_at",
                                               "unread"],
                                  "properties": {"id": {"type": "string"}, "number": {"type": "string"},
                                                 "subject": {"type": "string"}, "status": status,
                                                 "created_at": timestamp, "updated_at": timestamp,
                                                 "unread": {"type": "boolean"}}},
                "TicketList": {"type": "object", "required": ["tickets", "total"], "properties": {
                    "tickets": {"type": "array", "items": {"$ref": "#/components/schemas/TicketSummary"}},
                    "total": {"type": "integer"}, "page": {"type": "integer"}, "per_page": {"type": "integer"}}},
                "Attachment": {"type": "object", "additionalProperties": False,
                               "required": ["id", "filename", "size_bytes"],
                               "properties": {"id": {"type": "string"}, "filename": {"type": "string"},
                                              "size_bytes": {"type": "integer"}}},
                "Thread": {"type": "object", "additionalProperties": False,
                           "required": ["id", "from", "body", "sent_at", "attachments"],
                           "properties": {"id": {"type": "string"},
                                          "from": {"type": "string", "enum": ["customer", "support"]},
                                          "body": {"type": "string"}, "sent_at": timestamp,
                                          "attachments": {"type": "array",
                                                          "items": {"$ref": "#/components/schemas/Attachment"}}}},
                "TicketDetail": {"type": "object", "additionalProperties": False,
                                 "required": ["id", "number", "subject", "status", "created_at", "updated_at",
                                              "threads"],
                                 "properties": {"id": {"type": "string"}, "number": {"type": "string"},
                                                "subject": {"type": "string"}, "status": status,
                                                "created_at": timestamp, "updated_at": timestamp,
                                                "threads": {"type": "array",
                                                            "items": {"$ref": "#/components/schemas/Thread"}}}},
                "CreateTicket": {"type": "object", "additionalProperties": False, "required": ["subject", "body"],
                                 "properties": {"subject": {"type": "string", "minLength": 1, "maxLength": 200,
                                                            "pattern": r"\S"},
                                                "body": text_body,
                                                "category": {"type": "string", "nullable": True,
                                                             "enum": list(CATEGORIES)}}},
                "Created": {"type": "object", "required": ["id", "number", "subject", "status", "created_at"],
                            "properties": {"id": {"type": "string"}, "number": {"type": "string"},
                                           "subject": {"type": "string"}, "status": status,
                                           "created_at": timestamp}},
                "Reply": {"type": "object", "additionalProperties": False, "required": ["body"],
                          "properties": {"body": text_body}},
                "ReplyCreated": {"type": "object", "required": ["thread_id", "sent_at"], "properties": {
                    "thread_id": {"type": "string"}, "sent_at": timestamp}},
                "Resolved": {"type": "object", "required": ["id", "status"], "properties": {
                    "id": {"type": "string"}, "status": {"type": "string", "enum": ["resolved"]}}},
            },
        },
    }
