"""File an internal ticket from a report, with the snapshot laid out for people to read."""

from __future__ import annotations

import json

from markupsafe import escape

from echo.actors import Actor
from echo.audit import service as audit
from echo.extensions import db
from echo.investigate.schemas import AuditSnapshotReport
from echo.tickets import service as tickets
from echo.tickets.models import Ticket


def create_from_snapshot(report: AuditSnapshotReport, *, actor: Actor) -> Ticket:
    """An internal ticket (no customer) whose first note shows the snapshot readably."""
    subject = report.title or f"Investigate {report.surface_id} on deploy {report.deploy_id}"
    opened = tickets.open_ticket(None, subject, source="snapshot", tags=["investigate"])
    ticket = db.session.get_one(Ticket, opened.id)
    text, html = render_snapshot(report)
    tickets.add_note(ticket, actor=actor, body_text=text, body_html=html, source="snapshot", subject=subject)
    audit.record(actor, "tickets.from_snapshot", "ticket", ticket.id, kind=report.kind,
                 deploy_id=report.deploy_id, surface_id=report.surface_id)
    return ticket


def render_snapshot(report: AuditSnapshotReport) -> tuple[str, str]:
    """Plain text and escaped HTML: a header, the note, then the snapshot as indented key/value lines."""
    header = [("Deploy", report.deploy_id), ("Surface", report.surface_id)]
    lines = [f"{k}: {v}" for k, v in header]
    if report.note:
        lines += ["", report.note]
    lines += ["", "Snapshot:"] + list(_lines(report.snapshot, 1))
    text = "\n".join(lines)
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in header)
    note = f"<p>{escape(report.note)}</p>" if report.note else ""
    pretty = escape(json.dumps(report.snapshot, indent=2, ensure_ascii=False, sort_keys=True, default=str))
    html = f"<table>{rows}</table>{note}<pre><code>{pretty}</code></pre>"
    return text, html


def _lines(value, depth: int):
    pad = "  " * depth
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                yield f"{pad}{key}:"
                yield from _lines(item, depth + 1)
            else:
                yield f"{pad}{key}: {_scalar(item)}"
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, (dict, list)) and item:
                yield f"{pad}-"
                yield from _lines(item, depth + 1)
            else:
                yield f"{pad}- {_scalar(item)}"
    else:
        yield f"{pad}{_scalar(value)}"


def _scalar(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return "(empty)"
    return str(value)
