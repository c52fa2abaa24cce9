"""Run background jobs: `echo-desk worker` (and the Procfile's worker process)."""

from __future__ import annotations

import functools
import threading

from flask import Flask
from rq import Worker

from echo.jobs import QUEUES, redis_connection
from workers import clock


@functools.cache
def worker_app() -> Flask:
    """The one app a worker process builds; jobs run inside its context."""
    from echo import create_app

    return create_app()


def run(app: Flask, *, burst: bool = False, queues: tuple[str, ...] = QUEUES) -> bool:
    """Work the queues until stopped (or until empty in burst mode), with the periodic-job clock beside."""
    stop = threading.Event()
    if not burst:
        clock.start(app, stop)
    try:
        with app.app_context():
            worker = Worker(list(queues), connection=redis_connection())
            return worker.work(burst=burst, logging_level="INFO")
    finally:
        stop.set()
