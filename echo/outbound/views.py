"""Postmark's delivery webhooks: POST /tickets/webhooks/postmark (bounces, complaints, deliveries)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from echo.extensions import db, unlimited
from echo.http import json_object, require_webhook_auth
from echo.outbound.service import record_delivery_event

bp = Blueprint("outbound", __name__, url_prefix="/tickets")


@bp.post("/webhooks/postmark")
@unlimited  # Postmark is the only (authenticated) caller
def postmark_webhook():
    require_webhook_auth()
    outcome = record_delivery_event(json_object())
    db.session.commit()
    return jsonify(status=outcome), 200
