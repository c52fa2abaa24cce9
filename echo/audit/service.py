"""Write audit rows. Payloads carry ids and facts, never message bodies or addresses."""

from __future__ import annotations

import uuid

from echo.actors import Actor
from echo.audit.models import AuditLog
from echo.extensions import db


def record(actor: Actor, action: str, target_type: str, target_id: uuid.UUID | str, **payload) -> None:
    """Add one audit row to the current transaction (a ticket's is also a live event: `echo.live`)."""
    db.session.add(AuditLog(
        actor=actor.audit_name, action=action, target_type=target_type, target_id=str(target_id), payload=payload,
    ))
    if target_type == "ticket":
        ticket_changed()


def ticket_changed() -> None:
    """Wake the live event hubs once this transaction commits (it wrote a ticket's audit row)."""
    from echo.jobs import publish_after_commit
    from echo.live.hub import CHANNEL

    publish_after_commit(CHANNEL)
