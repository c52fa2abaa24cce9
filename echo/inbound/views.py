"""The Postmark inbound webhook: POST /tickets/inbound."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from sqlalchemy.exc import IntegrityError

from echo.extensions import db, unlimited
from echo.http import json_body, require_webhook_auth
from echo.inbound.schemas import parse_inbound
from echo.inbound.service import find_duplicate, ingest_email

log = logging.getLogger(__name__)
bp = Blueprint("inbound", __name__, url_prefix="/tickets")


@bp.post("/inbound")
@unlimited  # Postmark is the only (authenticated) caller; a limit would only make it retry
def inbound():
    require_webhook_auth()
    message = parse_inbound(json_body(replace_unstorable=True))
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
