"""Count the SQL statements an app runs: for tests that pin a request's round trips."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import event


def statements_during(engine, action: Callable[[], object]) -> list[str]:
    """Every statement `engine` executes through SQLAlchemy while `action` runs.

    The intake's once-compiled statements (`echo.db.execute_compiled`) run on the raw driver
    cursor and are not seen here; tests of those paths check rows instead. Only this thread's statements
    count (the test client runs requests in it): a live-event hub reading the log in a thread of its own
    is not the request's doing."""
    seen: list[str] = []
    mine = threading.get_ident()

    def record(conn, cursor, statement, *args):
        if threading.get_ident() == mine:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return seen
