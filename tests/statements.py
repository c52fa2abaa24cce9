"""Count the SQL statements an app runs: for tests that pin a request's round trips."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event


def statements_during(engine, action: Callable[[], object]) -> list[str]:
    """Every statement `engine` executes through SQLAlchemy while `action` runs.

    The intake's once-compiled statements (`echo.db.execute_compiled`) run on the raw driver
    cursor and are not seen here; tests of those paths check rows instead."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen
