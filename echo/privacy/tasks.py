"""Scheduled privacy maintenance."""

from echo.extensions import db
from echo.jobs import task
from echo.privacy.service import purge_support_audit_log


@task
def retention() -> int:
    """Apply the portal access log's retention windows (idempotent)."""
    removed = purge_support_audit_log()
    db.session.commit()
    return removed
