"""Baseline for the inbound benchmark: the same writes as Echo's new-ticket path, none of its logic.

A bare WSGI callable (no Flask, no ORM, no validation models, no sanitising, no threading lookups):
parse the JSON, check the same HTTP Basic credentials, then in one transaction

    upsert customer (INSERT ... ON CONFLICT ... RETURNING)
    insert ticket (RETURNING number)
    insert thread (raw HtmlBody / TextBody stored as they came)
    insert message_ids (the inbound Message-ID)
    insert outbox (the acknowledgement) + message_ids (its Message-ID)
    insert audit_log
    commit

and enqueue one rq job (`echo.mail.tasks.deliver`, by name, on the `mail` queue), as Echo does.
Plain SQL through SQLAlchemy Core's connection pool (`exec_driver_sql`, psycopg 3 underneath).
Every request is filed as a new ticket, replies included (the baseline has no threading).

Served by gunicorn exactly like Echo:  gunicorn baseline_app:app --pythonpath bench --workers N
Environment: BASELINE_DATABASE_URL, BASELINE_REDIS_URL, ECHO_WEBHOOK_USER, ECHO_WEBHOOK_PASSWORD,
ECHO_SUPPORT_ADDRESS.
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import uuid

from redis import Redis
from rq import Queue
from sqlalchemy import create_engine

USER = os.environ.get("ECHO_WEBHOOK_USER", "postmark").encode()
PASSWORD = os.environ.get("ECHO_WEBHOOK_PASSWORD", "dev-webhook-password").encode()
SUPPORT_DOMAIN = os.environ.get("ECHO_SUPPORT_ADDRESS", "support@example.com").rpartition("@")[2]

# Same pool settings as Echo's engine; the engine is created lazily, after gunicorn forks.
_engine = None
_redis = None


def _db():
    global _engine
    if _engine is None:
        url = os.environ["BASELINE_DATABASE_URL"]
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                url = "postgresql+psycopg://" + url[len(prefix):]
        _engine = create_engine(url, pool_size=10, max_overflow=10, pool_recycle=1800)
    return _engine


def _queue() -> Queue:
    global _redis
    if _redis is None:
        _redis = Redis.from_url(os.environ["BASELINE_REDIS_URL"])
    return Queue("mail", connection=_redis)


UPSERT_CUSTOMER = """
INSERT INTO customers (id, email, display_name, first_seen_at, last_seen_at)
VALUES (%(id)s, %(email)s, %(name)s, now(), now())
ON CONFLICT (email) WHERE deleted_at IS NULL
DO UPDATE SET last_seen_at = now(), display_name = coalesce(excluded.display_name, customers.display_name)
RETURNING id, email_bounced
"""
INSERT_TICKET = """
INSERT INTO tickets (id, customer_id, status, subject, source, quarantined, created_at, updated_at,
                     last_customer_reply_at)
VALUES (%(id)s, %(customer_id)s, 'open', %(subject)s, 'email', false, now(), now(), now())
RETURNING number
"""
INSERT_THREAD = """
INSERT INTO threads (id, ticket_id, direction, source, customer_id, sender_email, sender_name, subject,
                     body_html, body_text, stripped_text, rfc_message_id, postmark_message_id, in_reply_to,
                     "references", is_auto_reply, spam_score, quarantined, created_at)
VALUES (%(id)s, %(ticket_id)s, 'inbound', 'email', %(customer_id)s, %(email)s, %(name)s, %(subject)s,
        %(html)s, %(text)s, %(stripped)s, %(rfc_id)s, %(pm_id)s, %(in_reply_to)s,
        %(references)s, false, %(spam)s, false, now())
"""
INSERT_MESSAGE_ID = """
INSERT INTO message_ids (message_id, ticket_id, thread_id, origin)
VALUES (%(message_id)s, %(ticket_id)s, %(thread_id)s, %(origin)s)
ON CONFLICT DO NOTHING
"""
INSERT_OUTBOX = """
INSERT INTO outbox (id, kind, ticket_id, thread_id, to_email, context, state, attempts, message_id, next_attempt_at)
VALUES (%(id)s, 'acknowledgement', %(ticket_id)s, NULL, %(to_email)s, %(context)s::jsonb, 'queued', 0,
        %(message_id)s, now())
"""
INSERT_AUDIT = """
INSERT INTO audit_log (actor, action, target_type, target_id, payload)
VALUES (%(actor)s, 'tickets.inbound', 'ticket', %(target_id)s, %(payload)s::jsonb)
"""


def _respond(start_response, status: str, body: dict):
    data = json.dumps(body).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


def _authorized(environ) -> bool:
    header = environ.get("HTTP_AUTHORIZATION", "")
    user = password = b""
    if header[:6].lower() == "basic ":
        try:
            user, _, password = base64.b64decode(header[6:]).partition(b":")
        except ValueError:
            pass
    user_ok = hmac.compare_digest(user, USER)
    password_ok = hmac.compare_digest(password, PASSWORD)
    return user_ok and password_ok


def app(environ, start_response):
    if environ["PATH_INFO"] != "/tickets/inbound":
        return _respond(start_response, "404 Not Found", {"error": "not_found"})
    if environ["REQUEST_METHOD"] != "POST":
        return _respond(start_response, "405 Method Not Allowed", {"error": "method_not_allowed"})
    if not _authorized(environ):
        return _respond(start_response, "401 Unauthorized", {"error": "unauthorized"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = json.loads(environ["wsgi.input"].read(length))
    except ValueError:
        return _respond(start_response, "400 Bad Request", {"error": "invalid_json"})

    sender = data["FromFull"]
    email, name = sender["Email"].lower(), sender.get("Name") or None
    headers = {h["Name"].lower(): h["Value"] for h in reversed(data.get("Headers") or [])}
    rfc_id = headers.get("message-id", "").strip().strip("<>").lower() or None
    spam = headers.get("x-spam-score")
    subject = data.get("Subject") or "(no subject)"
    ticket_id, thread_id, outbox_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ack_id = f"echo.{uuid.uuid4().hex}@{SUPPORT_DOMAIN}"

    with _db().begin() as conn:
        customer_id, _bounced = conn.exec_driver_sql(
            UPSERT_CUSTOMER, {"id": uuid.uuid4(), "email": email, "name": name}).one()
        number = conn.exec_driver_sql(
            INSERT_TICKET, {"id": ticket_id, "customer_id": customer_id, "subject": subject}).scalar_one()
        conn.exec_driver_sql(INSERT_THREAD, {
            "id": thread_id, "ticket_id": ticket_id, "customer_id": customer_id, "email": email, "name": name,
            "subject": subject, "html": data.get("HtmlBody") or "", "text": data.get("TextBody") or "",
            "stripped": data.get("StrippedTextReply") or data.get("TextBody") or "", "rfc_id": rfc_id,
            "pm_id": data["MessageID"], "in_reply_to": headers.get("in-reply-to"),
            "references": headers.get("references"), "spam": float(spam) if spam else None,
        })
        if rfc_id:
            conn.exec_driver_sql(INSERT_MESSAGE_ID, {
                "message_id": rfc_id, "ticket_id": ticket_id, "thread_id": thread_id, "origin": "inbound"})
        conn.exec_driver_sql(INSERT_OUTBOX, {
            "id": outbox_id, "ticket_id": ticket_id, "to_email": email,
            "context": json.dumps({"in_reply_to": rfc_id}), "message_id": ack_id})
        conn.exec_driver_sql(INSERT_MESSAGE_ID, {
            "message_id": ack_id, "ticket_id": ticket_id, "thread_id": None, "origin": "outbound"})
        conn.exec_driver_sql(INSERT_AUDIT, {
            "actor": f"customer:{customer_id}", "target_id": str(ticket_id),
            "payload": json.dumps({"thread_id": str(thread_id), "created": True, "matched_via": None,
                                   "previous_ticket_id": None, "auto_reply": False, "quarantined": False,
                                   "attachments": 0})})
    _queue().enqueue("echo.mail.tasks.deliver", str(outbox_id))
    return _respond(start_response, "200 OK", {
        "status": "created", "ticket_id": str(ticket_id), "ticket_number": number, "thread_id": str(thread_id)})
