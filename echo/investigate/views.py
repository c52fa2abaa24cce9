"""POST /tickets/from-snapshot: the console's Investigate button files an internal ticket."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from echo.console.auth import require_agent
from echo.extensions import csrf, db
from echo.http import json_body
from echo.investigate.schemas import parse_report
from echo.investigate.service import create_from_snapshot
from echo.tickets.api import authenticate_bearer

bp = Blueprint("investigate", __name__, url_prefix="/tickets")


def _actor():
    """An agent token for integrations; otherwise the console session, which must carry its CSRF token."""
    if request.headers.get("Authorization"):
        return authenticate_bearer()
    actor = require_agent()
    csrf.protect()
    return actor


@bp.post("/from-snapshot")
def from_snapshot():
    actor = _actor()
    report = parse_report(json_body())
    ticket = create_from_snapshot(report, actor=actor)
    db.session.commit()
    return jsonify(id=str(ticket.id), number=ticket.number), 201
