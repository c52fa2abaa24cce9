"""Periodic jobs, enqueued by whichever worker holds the slot in Redis (so N workers enqueue once)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask

from echo.jobs import exclusive_key, queue, redis_connection

log = logging.getLogger(__name__)


# How long a one-at-a-time job's mark outlives a job that never cleared it (its worker was killed).
EXCLUSIVE_TTL = 300


@dataclass(frozen=True)
class Every:
    seconds: int
    func: Callable
    queue_name: str


def schedule() -> list[Every]:
    from echo.attachments.tasks import sweep_orphans
    from echo.mail.tasks import sweep_outbox
    from echo.notifications.tasks import notify
    from echo.privacy.tasks import retention
    from echo.tickets.tasks import auto_close, wake_snoozed

    return [
        # Retries, and replies whose undo window ended, leave within seconds of their time.
        Every(5, sweep_outbox, "sweep"),
        Every(5, notify, "default"),  # new tickets, replies, assignments and @mentions, within seconds
        Every(60, wake_snoozed, "default"),  # a snoozed ticket is back within a minute of its time
        Every(3600, auto_close, "maintenance"),
        Every(24 * 3600, retention, "maintenance"),
        Every(6 * 3600, sweep_orphans, "maintenance"),
    ]


def tick(app: Flask, jobs: list[Every] | None = None) -> list[str]:
    """Enqueue each periodic job whose slot is free; the slot lasts one period, cluster-wide.

    A job marked `echo.jobs.exclusive` is skipped while the last one is still waiting or running
    (a busy worker would otherwise find a pile of them), and is marked until it ends."""
    fired = []
    with app.app_context():
        redis = redis_connection()
        for job in jobs or schedule():
            name = f"{job.func.__module__}.{job.func.__name__}"
            if not redis.set(f"echo:clock:{name}", "1", nx=True, ex=job.seconds):
                continue
            if getattr(job.func, "echo_exclusive", False) and not redis.set(
                    exclusive_key(job.func), "1", nx=True, ex=max(EXCLUSIVE_TTL, job.seconds)):
                continue
            queue(job.queue_name).enqueue(job.func)
            fired.append(name)
    return fired


def start(app: Flask, stop: threading.Event, interval: float = 1.0) -> threading.Thread:
    """Run the clock in a daemon thread beside the worker until `stop` is set."""

    def loop() -> None:
        while not stop.is_set():
            try:
                tick(app)
            except Exception:
                log.exception("clock tick failed")
            stop.wait(interval)

    thread = threading.Thread(target=loop, name="echo-clock", daemon=True)
    thread.start()
    return thread
