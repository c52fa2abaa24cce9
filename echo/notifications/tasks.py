"""The notifier, run by the clock."""

from __future__ import annotations

from echo.extensions import db
from echo.jobs import exclusive, task
from echo.notifications.service import notify_from_events


@task
@exclusive
def notify() -> int:
    """Turn the latest ticket changes into notifications (and their emails); one run at a time."""
    total = 0
    while (read := notify_from_events()) > 0:
        db.session.commit()
        total += read
    db.session.commit()
    return total
