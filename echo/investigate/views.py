"""POST /tickets/from-snapshot: the console's Investigate button files an internal ticket."""

from __future__ import annotations

from flask import Blueprint, jsonify

from echo.extensions import db
from echo.http import json_body
from echo.investigate.schemas import parse_report
from echo.investigate.service import create_from_snapshot
from echo.tickets.api import authenticate_bearer

bp = Blueprint("investigate", __name__, url_prefix="/tickets")


@bp.post("/from-snapshot")
def from_snapshot():
    actor = authenticate_bearer()
    report = parse_report(json_body())
    ticket = create_from_snapshot(report, actor=actor)
    db.session.commit()
    return jsonify(id=str(ticket.id), number=ticket.number), 201
