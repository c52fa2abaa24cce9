"""Column helpers shared by every feature's models, and the runner of once-compiled statements."""

import uuid
from datetime import datetime, timezone
from typing import Any

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, DateTime, Executable, Uuid, func, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column


# References between rows one transaction writes together (an outbox row and its thread, a message
# id and its thread): checked at COMMIT, so whatever order the rows are written in is safe.
DEFERRED = {"deferrable": True, "initially": "DEFERRED"}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def uuid_pk() -> Mapped[uuid.UUID]:
    """Primary key generated in Python (ids are needed before flush) with a database default too."""
    return mapped_column(Uuid, primary_key=True, default=uuid.uuid4, server_default=text("gen_random_uuid()"))


def spend_once(model: Any, row_id: Any) -> bool:
    """Mark a one-time link (a row with `used_at`) used; False when it already was, even if the
    other use is racing this one in another transaction (the UPDATE decides)."""
    from sqlalchemy import update

    from echo.extensions import db

    spent = db.session.execute(
        update(model).where(model.id == row_id, model.used_at.is_(None)).values(used_at=utcnow())
    )
    return spent.rowcount == 1


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False)


_compiled: dict[int, tuple[str, dict]] = {}


def execute_compiled(conn: Connection, statement: Executable, params: dict) -> psycopg.Cursor:
    """Execute a module-level statement by its once-compiled SQL on the connection's own psycopg
    connection (inside the session's transaction); rows come back as named tuples.

    For the hottest writes only (the intake's): it skips re-deriving cache keys and building
    SQLAlchemy result objects on every call. Literal values are folded into the defaults."""
    entry = _compiled.get(id(statement))
    if entry is None:
        compiled = statement.compile(dialect=conn.dialect)
        entry = _compiled[id(statement)] = (str(compiled), dict(compiled.params))
    sql, defaults = entry
    missing = [name for name, value in defaults.items() if value is None and name not in params]
    if missing:  # a column whose Python-side default the driver would not run
        raise ValueError(f"no value for {missing}")
    cursor = conn.connection.driver_connection.cursor(row_factory=namedtuple_row)
    try:
        return cursor.execute(sql, {**defaults, **params})
    except psycopg.Error as exc:
        # Raise what SQLAlchemy itself would (IntegrityError when a duplicate delivery raced us,
        # OperationalError when the server is away, with the connection invalidated), without the
        # parameters: they hold mail bodies.
        gone = conn.dialect.is_disconnect(exc, conn.connection, cursor)
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, psycopg.Error, hide_parameters=True, connection_invalidated=gone,
                                  dialect=conn.dialect) from exc
