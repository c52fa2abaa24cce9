"""Report payloads for internal tickets, a union discriminated by `kind` so new report kinds slot in."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

from echo.errors import InvalidPayload, PayloadTooLarge
from echo.validation import validate

MAX_SNAPSHOT_BYTES = 256 * 1024
Short = Annotated[str, Field(min_length=1, max_length=200)]


class AuditSnapshotReport(BaseModel):
    """The console's Investigate button: a degraded surface on a deploy, with its audit-log snapshot."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["audit_snapshot"] = "audit_snapshot"
    deploy_id: Short
    surface_id: Short
    snapshot: dict[str, Any] | list[Any]
    title: Annotated[str, Field(max_length=200)] | None = None
    note: Annotated[str, Field(max_length=5000)] | None = None

    @field_validator("deploy_id", "surface_id")
    @classmethod
    def _printable(cls, value: str) -> str:
        if not value.isprintable():
            raise ValueError("must be printable text")
        return value.strip()


Report = Annotated[AuditSnapshotReport, Field(discriminator="kind")]
_adapter = TypeAdapter(Report)


def parse_report(data: object) -> AuditSnapshotReport:
    if not isinstance(data, dict):
        raise InvalidPayload("The body must be a JSON object.")
    data = {"kind": "audit_snapshot", **data}
    if len(json.dumps(data.get("snapshot"), default=str)) > MAX_SNAPSHOT_BYTES:
        raise PayloadTooLarge("The snapshot is larger than 256 KB.")
    return validate(_adapter, data, "The report is not valid.")
