"""Run background jobs: `echo-desk worker` (and the Procfile's worker process)."""

from __future__ import annotations

import functools

from flask import Flask
from rq import Worker

from echo.jobs import QUEUES, redis_connection


@functools.cache
def worker_app() -> Flask:
    """The one app a worker process builds; jobs run inside its context."""
    from echo import create_app

    return create_app()


def run(app: Flask, *, burst: bool = False, queues: tuple[str, ...] = QUEUES) -> bool:
    """Work the queues (with rq's scheduler for delayed retries) until stopped, or until empty in burst mode."""
    with app.app_context():
        worker = Worker(list(queues), connection=redis_connection())
        return worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
