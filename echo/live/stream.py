"""Reading the event log: the ticket rows of `audit_log`, in (xid, id) order, below the oldest running
transaction.

Ids are handed out when rows are written, not when they commit: a transaction that began earlier
can commit a smaller id after a reader has passed it. The transaction id (`xid8`) closes that gap.
A row is read only once its transaction and every older one has ended (`xid <
pg_snapshot_xmin(pg_current_snapshot())`), and rows are read in (xid, id) order, so a cursor (the
last row's xid and id) never skips a row that commits later: every row after it in that order
belongs to a transaction that had not ended when the cursor was taken. A reconnecting client that
sends its last event id gets exactly the rows after it, none twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

MAX_BATCH = 500


@dataclass(frozen=True, order=True)
class Cursor:
    xid: int
    id: int

    def __str__(self) -> str:
        return f"{self.xid}-{self.id}"

    @classmethod
    def parse(cls, raw: str | None) -> Cursor | None:
        """A cursor from a client's `Last-Event-ID` (or `since`); None when it is not one of ours."""
        xid, _, row = (raw or "").strip()[:60].partition("-")
        if not (xid.isdigit() and row.isdigit()) or max(int(xid), int(row)) >= 2**63:
            return None  # bigint and xid8 stop there
        return cls(int(xid), int(row))


@dataclass(frozen=True)
class Row:
    cursor: Cursor
    action: str
    actor: str
    payload: dict[str, Any]
    at: datetime
    ticket_id: uuid.UUID | None  # None: the ticket was purged since
    number: str | None
    customer_id: uuid.UUID | None


_HEAD = text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text")

_AFTER = text("""
    SELECT a.id, a.xid::text AS xid, a.action, a.actor, a.payload, a.created_at, t.id AS ticket_id, t.number,
           t.customer_id
    FROM audit_log a LEFT JOIN tickets t ON t.id = a.target_id::uuid
    WHERE a.target_type = 'ticket' AND a.xid IS NOT NULL
      AND (a.xid, a.id) > (CAST(:xid AS text)::xid8, :id)
      AND a.xid < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY a.xid, a.id
    LIMIT :limit
""")


def head(conn: Connection) -> Cursor:
    """Where a client that asks for nothing old starts: after every row whose transaction has ended."""
    xmin = int(conn.execute(_HEAD).scalar_one())
    return Cursor(xmin - 1, 2**62)


def read_after(conn: Connection, cursor: Cursor, limit: int = MAX_BATCH) -> list[Row]:
    """The rows after `cursor` that can be read safely now, oldest first."""
    rows = conn.execute(_AFTER, {"xid": str(cursor.xid), "id": cursor.id, "limit": limit}).all()
    return [Row(Cursor(int(r.xid), r.id), r.action, r.actor, r.payload or {}, r.created_at, r.ticket_id, r.number,
                r.customer_id) for r in rows]
