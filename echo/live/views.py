"""Server-Sent Events streams: the console's and agent API's (every ticket change) and the portal's
(the customer's own tickets). A client that reconnects sends `Last-Event-ID` (browsers do by
themselves) or `?since=`, and gets exactly the events after it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from flask import Response, current_app, request

from echo.extensions import db
from echo.live.hub import hub
from echo.live.stream import Cursor, Row

KEEP_ALIVE = 15.0  # seconds between comments on a quiet stream (proxies close silent connections)
MAX_STREAM = 600.0  # a stream ends after this and the browser reconnects with its last id


def stream_response(view: Callable[[Row], dict[str, Any] | None], *, presence: bool) -> Response:
    """The SSE response for one audience; `view` turns a log row into its event, or None to skip it."""
    raw = request.headers.get("Last-Event-ID") or request.args.get("since")
    cursor = Cursor.parse(raw)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    db.session.commit()  # whatever the authentication stamped; then no connection is held while streaming
    db.session.remove()
    source = hub(app)
    source.start()

    def generate() -> Iterator[str]:
        yield "retry: 2000\n\n"
        ends = time.monotonic() + MAX_STREAM
        for item in source.follow(cursor, wait=KEEP_ALIVE):
            if item is None:
                yield ": keep-alive\n\n"
            elif isinstance(item, dict):
                if presence:
                    yield f"event: presence\ndata: {json.dumps(item)}\n\n"
            elif (event := view(item)) is not None:
                yield f"id: {event['id']}\ndata: {json.dumps(event)}\n\n"
            if time.monotonic() > ends:
                return

    response = Response(generate(), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-store"
    response.headers["X-Accel-Buffering"] = "no"  # proxies must pass each event on at once
    return response


def agent_stream() -> Response:
    from echo.live.events import for_agents

    return stream_response(for_agents, presence=True)


def customer_stream(customer_id: uuid.UUID) -> Response:
    from echo.live.events import for_customer

    return stream_response(lambda row: for_customer(row, customer_id), presence=False)


def empty_stream() -> Response:
    """A signed-in person with no tickets yet: a stream that says so and ends (the client retries later)."""
    response = Response("retry: 60000\n\n", mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache, no-store"
    return response
