"""Column helpers shared by every feature's models, and the runner of once-compiled statements."""

import uuid
from datetime import UTC, datetime
from typing import Any, TypedDict, cast

import psycopg
from psycopg.rows import namedtuple_row
from sqlalchemy import ClauseElement, Connection, CursorResult, DateTime, Result, Uuid, func, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Mapped, mapped_column


class _Deferrable(TypedDict):
    deferrable: bool
    initially: str


# References between rows one transaction writes together (an outbox row and its thread, a message
# id and its thread): checked at COMMIT, so whatever order the rows are written in is safe.
DEFERRED: _Deferrable = {"deferrable": True, "initially": "DEFERRED"}


def utcnow() -> datetime:
    return datetime.now(UTC)


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
    return affected_rows(spent) == 1


def affected_rows(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE run through the session touched.

    `Session.execute` is typed to return a plain Result; for these statements it is a CursorResult."""
    return cast("CursorResult[Any]", result).rowcount


def created_at() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), default=utcnow, server_default=func.now(), nullable=False)


_compiled: dict[int, tuple[str, dict]] = {}


def execute_compiled(conn: Connection, statement: ClauseElement, params: dict) -> psycopg.Cursor[Any]:
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
    driver = conn.connection.driver_connection
    assert driver is not None, "a connection in use has its psycopg connection"
    cursor: psycopg.Cursor[Any] = driver.cursor(row_factory=namedtuple_row)
    try:
        return cursor.execute(sql, {**defaults, **params})
    except psycopg.Error as exc:
        # Raise what SQLAlchemy itself would (IntegrityError when a duplicate delivery raced us,
        # OperationalError when the server is away, with the connection invalidated), without the
        # parameters: they hold mail bodies.
        # SQLAlchemy types the error as its own DBAPIModule.Error class, which no driver's errors subclass.
        gone = conn.dialect.is_disconnect(exc, conn.connection, cursor)  # type: ignore[arg-type]
        if gone:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, None, exc, psycopg.Error, hide_parameters=True, connection_invalidated=gone,
                                  dialect=conn.dialect) from exc
