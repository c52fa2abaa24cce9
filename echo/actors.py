"""Who is acting: an agent, a customer or the system. Services take one; audit rows name it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    kind: str  # "agent" | "customer" | "system"
    id: uuid.UUID | None = None
    role: str | None = None

    @property
    def audit_name(self) -> str:
        return "system" if self.kind == "system" else f"{self.kind}:{self.id}"

    @classmethod
    def agent(cls, agent) -> Actor:
        return cls("agent", agent.id, agent.role)

    @classmethod
    def customer(cls, customer_id: uuid.UUID) -> Actor:
        return cls("customer", customer_id)


SYSTEM = Actor("system")
