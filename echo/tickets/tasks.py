"""Scheduled ticket maintenance."""

from __future__ import annotations

from flask import current_app

from echo.extensions import db
from echo.jobs import task
from echo.tickets.service import close_stale_pending


@task
def auto_close() -> int:
    """Close tickets left pending past the configured number of days (idempotent)."""
    closed = close_stale_pending(current_app.config["ECHO"].auto_close_days)
    db.session.commit()
    return len(closed)
