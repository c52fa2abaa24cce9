"""The Postmark inbound webhook: POST /tickets/inbound."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy.exc import IntegrityError

from echo.errors import EchoError, InvalidPayload
from echo.extensions import db
from echo.inbound.schemas import parse_inbound
from echo.inbound.service import find_duplicate, ingest_email

log = logging.getLogger(__name__)
bp = Blueprint("inbound", __name__, url_prefix="/tickets")


class Unauthorized(EchoError):
    status = 401
    code = "unauthorized"


def require_webhook_auth() -> None:
    """Check Postmark's HTTP Basic credentials in constant time (both parts, always)."""
    settings = current_app.config["ECHO"]
    auth = request.authorization
    user = (auth.username or "") if auth and auth.type == "basic" else ""
    password = (auth.password or "") if auth and auth.type == "basic" else ""
    user_ok = hmac.compare_digest(user.encode(), settings.webhook_user.encode())
    password_ok = hmac.compare_digest(password.encode(), settings.webhook_password.encode())
    if not (user_ok and password_ok):
        raise Unauthorized("Missing or wrong webhook credentials.")


def json_body() -> object:
    if not request.is_json:
        raise InvalidPayload("Send the payload as application/json.", code="unsupported_media_type", status=415)
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidPayload("The body is not valid JSON.", code="invalid_json", status=400)
    return data


@bp.post("/inbound")
def inbound():
    require_webhook_auth()
    message = parse_inbound(json_body())
    try:
        result = ingest_email(message)
        db.session.commit()
    except IntegrityError:
        # Two deliveries of the same message raced; the other one won and holds it.
        db.session.rollback()
        result = find_duplicate(message)
        if result is None:
            raise
    except Exception:
        db.session.rollback()
        raise
    log.info("inbound %s: %s %s", message.MessageID, result.outcome, result.ticket_number)
    return jsonify(
        status=result.outcome, ticket_id=str(result.ticket_id), ticket_number=result.ticket_number,
        thread_id=str(result.thread_id) if result.thread_id else None,
    ), 200
