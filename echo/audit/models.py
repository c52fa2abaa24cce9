"""Audit trails: agent/system changes (audit_log) and portal API access (support_audit_log)."""

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Identity, Index, String, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import UserDefinedType

from echo.db import created_at
from echo.extensions import Model


class XID8(UserDefinedType):
    """PostgreSQL's 64-bit transaction id (`pg_current_xact_id()`)."""

    cache_ok = True

    def get_col_spec(self, **kw) -> str:
        return "xid8"


class AuditLog(Model):
    """Every change, in the transaction that made it. Its ticket rows are also the live event stream
    (`echo.live`): read in (xid, id) order below the oldest running transaction, so a reader never
    passes over a row whose transaction has not committed yet."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_target", "target_type", "target_id"),
        Index("ix_audit_log_stream", "xid", "id", postgresql_where=text("target_type = 'ticket' AND xid IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(64), nullable=False)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    created_at: Mapped[datetime] = created_at()
    # The writing transaction (rows from before the event stream have none).
    xid = mapped_column(XID8, server_default=text("pg_current_xact_id()"))


class SupportAuditLog(Model):
    __tablename__ = "support_audit_log"
    __table_args__ = (Index("ix_support_audit_log_created", "created_at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    customer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    resource_id: Mapped[str | None] = mapped_column(String(64))
    ip_prefix: Mapped[str | None] = mapped_column(String(64))
    session_id_hash: Mapped[str | None] = mapped_column(String(64))
    success: Mapped[bool] = mapped_column(Boolean, nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = created_at()
