"""Scheduled ticket maintenance."""

from __future__ import annotations

from flask import current_app

from echo.extensions import db
from echo.jobs import task
from echo.tickets import service
from echo.tickets.service import close_stale_pending


@task
def auto_close() -> int:
    """Close tickets left pending past the configured number of days (idempotent)."""
    closed = close_stale_pending(current_app.config["ECHO"].auto_close_days)
    db.session.commit()
    return len(closed)


@task
def wake_snoozed() -> int:
    """Reopen the tickets whose snooze ended, and tell their assignees."""
    woken = service.wake_snoozed()
    db.session.commit()
    return len(woken)
