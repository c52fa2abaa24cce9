"""Write audit rows. Payloads carry ids and facts, never message bodies or addresses."""

from __future__ import annotations

import uuid

from echo.audit.models import AuditLog
from echo.extensions import db


def actor_for_agent(agent_id: uuid.UUID) -> str:
    return f"agent:{agent_id}"


def actor_for_customer(customer_id: uuid.UUID) -> str:
    return f"customer:{customer_id}"


SYSTEM = "system"


def record(actor: str, action: str, target_type: str, target_id: uuid.UUID | str, **payload) -> None:
    """Add one audit row to the current transaction."""
    db.session.add(AuditLog(actor=actor, action=action, target_type=target_type, target_id=str(target_id), payload=payload))
