"""Background jobs: Redis connection, named queues, and enqueueing that waits for the commit."""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, has_app_context
from redis import Redis
from rq import Queue
from rq.job import Job
from sqlalchemy import event
from sqlalchemy.orm import Session

from echo.extensions import db

log = logging.getLogger(__name__)

QUEUES = ("mail", "default", "maintenance")
_PENDING = "echo_pending_jobs"
_job_app: Flask | None = None


def init_app(app: Flask) -> None:
    app.extensions["echo_redis"] = Redis.from_url(app.config["ECHO"].redis_url)


def redis_connection() -> Redis:
    return current_app.extensions["echo_redis"]


def queue(name: str) -> Queue:
    return Queue(name, connection=redis_connection())


def enqueue_after_commit(func: Callable[..., Any], *args: Any, queue_name: str = "default", **options: Any) -> None:
    """Hold a job until the current transaction commits; drop it if the transaction rolls back.

    A worker that picks a job up before the row it names is committed would find nothing,
    so jobs never leave before the commit that makes them meaningful.
    """
    db.session.info.setdefault(_PENDING, []).append((queue_name, func, args, options))


@event.listens_for(Session, "after_commit")
def _send_pending_jobs(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # Every job of the transaction in one pipeline: one Redis round trip, whatever the count.
    try:
        with redis_connection().pipeline() as pipe:
            for queue_name, func, args, options in pending:
                queue(queue_name).enqueue(func, *args, pipeline=pipe, **options)
            pipe.execute()
    except Exception:  # Redis down: the rows are committed; the outbox sweeper re-sends them.
        log.exception("could not enqueue %s", ", ".join(
            f"{getattr(func, '__name__', func)} on {queue_name}" for queue_name, func, _a, _o in pending))


def cancel_queued_jobs(queue_name: str, job_ids: list[str]) -> None:
    """Drop queued jobs that have nothing left to do, in one round trip.

    Each id is taken off the queue (the jobs a delivery batch made redundant are near its front,
    where LREM finds them at once) and its job deleted; rq skips an id whose job is gone. A job
    that a worker has already taken just runs, as it would have anyway."""
    if not job_ids:
        return
    key = queue(queue_name).key
    with redis_connection().pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.lrem(key, 1, job_id)
            pipe.delete(Job.key_for(job_id))
        pipe.execute()


@event.listens_for(Session, "after_rollback")
def _drop_pending_jobs(session: Session) -> None:
    session.info.pop(_PENDING, None)


def install_app(app: Flask) -> None:
    """Make `app` the one jobs run in when no app context is active (the worker calls this at start)."""
    global _job_app
    _job_app = app


def job_app() -> Flask:
    """The installed app, else one built on first use (a worker started by rq's own CLI)."""
    global _job_app
    if _job_app is None:
        from echo import create_app

        _job_app = create_app()
    return _job_app


def self_recording(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a job whose own rows record how it went, so the worker may skip rq's records of it.

    A delivery job is one: the outbox row holds its state, attempts and last error, and the outbox
    sweeper, not rq, recovers a delivery whose worker died. rq's execution record, started
    registry, status and result would be writes that nothing reads (`workers.worker`)."""
    func.echo_self_recording = True  # type: ignore[attr-defined]
    return func


def is_self_recording(func: Callable[..., Any] | None) -> bool:
    return getattr(func, "echo_self_recording", False) is True


def task(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a job inside the worker's app context and always hand the session back afterwards."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with contextlib.nullcontext() if has_app_context() else job_app().app_context():
            try:
                return func(*args, **kwargs)
            finally:
                db.session.remove()

    return wrapper
