"""One reader of the event log per web process, shared by every stream the process holds.

The hub reads new rows when Redis says something committed (`CHANNEL`, published after each
commit that wrote a ticket change) and, whatever Redis does, every POLL_SECONDS, so an event
committed while Redis was away is delivered all the same. It keeps the latest rows in memory;
each stream takes from there what comes after its own cursor, and a stream that is further behind
(a client reconnecting with an old id) reads its gap from the database first. Streams hold no
database connection while they wait.
"""

from __future__ import annotations

import logging
import threading
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Iterator

from flask import Flask
from redis import RedisError

from echo.extensions import db
from echo.live import stream
from echo.live.stream import Cursor, Row

log = logging.getLogger(__name__)

CHANNEL = "echo:events"
POLL_SECONDS = 2.0  # the fallback when no wake-up comes (Redis away, a lost publish)
HELD_RETRY = 0.05  # a row committed but not yet readable (an older transaction still runs): look again soon
KEEP = 5000  # rows kept in memory for the streams


class Hub:
    def __init__(self, app: Flask) -> None:
        self.app = app
        # Kept in order with their cursors beside them: a stream finds its place by bisection, not a scan.
        self.rows: list[Row] = []
        self.cursors: list[Cursor] = []
        self.changed = threading.Condition()
        self.cursor: Cursor | None = None  # the last row read
        self.floor: Cursor | None = None  # memory holds every row after this one, up to `cursor`
        self.wake = threading.Event()
        self.presence: deque[tuple[float, dict]] = deque(maxlen=500)  # ephemeral: who is viewing/replying
        self._thread = threading.Thread(target=self._run, name="echo-live-hub", daemon=True)
        self._listener = threading.Thread(target=self._listen, name="echo-live-listen", daemon=True)
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            with self.app.app_context(), db.engine.connect() as conn:
                self.cursor = self.floor = stream.head(conn)
            self._started = True
            self._thread.start()
            self._listener.start()

    # --- the reader -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            woken = self.wake.wait(POLL_SECONDS)
            self.wake.clear()
            try:
                if self.read() == 0 and woken:
                    # Woken, yet nothing readable: an older transaction still runs; look again shortly.
                    time.sleep(HELD_RETRY)
                    self.read()
            except Exception:  # the database away: keep trying, the streams keep their cursors
                log.exception("live hub: reading the event log failed")
                time.sleep(1)

    def read(self) -> int:
        """Take every readable new row into memory and tell the waiting streams; how many."""
        total = 0
        with self.app.app_context(), db.engine.connect() as conn:
            while True:
                assert self.cursor is not None
                batch = stream.read_after(conn, self.cursor)
                if not batch:
                    break
                with self.changed:
                    self.rows.extend(batch)
                    self.cursors.extend(row.cursor for row in batch)
                    self.cursor = batch[-1].cursor
                    if len(self.rows) > 2 * KEEP:  # trimmed now and then, not row by row
                        drop = len(self.rows) - KEEP
                        self.floor = self.cursors[drop - 1]
                        del self.rows[:drop], self.cursors[:drop]
                    self.changed.notify_all()
                total += len(batch)
                if len(batch) < stream.MAX_BATCH:
                    break
        return total

    def _listen(self) -> None:
        """Wake the reader whenever Redis says a ticket change committed; pass presence on."""
        import json

        from redis import Redis

        # A client of its own: the app's has 1 s time-outs, made for requests, not for a subscriber that
        # waits; a health check every 15 s finds a connection that died quietly.
        client = Redis.from_url(self.app.config["ECHO"].redis_url, socket_connect_timeout=2, socket_timeout=30,
                                health_check_interval=15)
        while True:
            try:
                pubsub = client.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(CHANNEL, PRESENCE_CHANNEL)
                while True:
                    message = pubsub.get_message(timeout=5)
                    if message is None:
                        continue
                    if message["channel"] in (PRESENCE_CHANNEL, PRESENCE_CHANNEL.encode()):
                        try:
                            seen = json.loads(message["data"])
                        except ValueError:
                            continue
                        with self.changed:
                            self.presence.append((time.monotonic(), seen))
                            self.changed.notify_all()
                    else:
                        self.wake.set()
            except (RedisError, OSError) as exc:
                try:
                    pubsub.close()
                except (RedisError, OSError, UnboundLocalError):
                    pass
                log.warning("live hub: Redis unavailable (%s); reading the log every %s s", type(exc).__name__,
                            POLL_SECONDS)
                time.sleep(POLL_SECONDS)

    # --- the streams ------------------------------------------------------------------------
    def follow(self, cursor: Cursor | None, *, wait: float) -> Iterator[Row | dict | None]:
        """Rows after `cursor`, forever: from the database while behind what memory holds, then from
        memory. Yields presence dicts as they come, and None after `wait` quiet seconds (a keep-alive)."""
        self.start()
        cursor = cursor or self.cursor
        assert cursor is not None
        presence_seen = time.monotonic()
        while True:
            with self.changed:
                floor, top = self.floor, self.cursor
            assert floor is not None and top is not None
            if cursor < floor:  # older than memory: the gap from the database (no session held)
                with self.app.app_context(), db.engine.connect() as conn:
                    gap = [row for row in stream.read_after(conn, cursor) if row.cursor <= top]
                for row in gap:
                    yield row
                    cursor = row.cursor
                if gap:
                    continue
                cursor = max(cursor, floor)
            with self.changed:
                fresh = self.rows[bisect_right(self.cursors, cursor):]
                recent = [seen for at, seen in self.presence if at > presence_seen]
                if not fresh and not recent:
                    self.changed.wait(wait)
                    fresh = self.rows[bisect_right(self.cursors, cursor):]
                    recent = [seen for at, seen in self.presence if at > presence_seen]
                presence_seen = time.monotonic()
            yield from recent
            for row in fresh:
                yield row
                cursor = row.cursor
            if not fresh and not recent:
                yield None


PRESENCE_CHANNEL = "echo:presence"
_hubs: dict[int, Hub] = {}
_hubs_lock = threading.Lock()


def hub(app: Flask) -> Hub:
    """This process's hub for `app` (one per app: tests run several)."""
    with _hubs_lock:
        found = _hubs.get(id(app))
        if found is None:
            found = _hubs[id(app)] = Hub(app)
        return found
