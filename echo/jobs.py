"""Background jobs: Redis connection, named queues, and enqueueing that waits for the commit."""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, current_app, has_app_context
from redis import Redis, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.job import Job
from sqlalchemy import event
from sqlalchemy.orm import Session

from echo.extensions import db

log = logging.getLogger(__name__)

# In the order a worker takes them: an agent's reply never waits behind acknowledgements and
# notifications, and the outbox sweep never waits behind the mail it sweeps.
QUEUES = ("replies", "sweep", "mail", "default", "maintenance")
_PENDING = "echo_pending_jobs"
_job_app: Flask | None = None

# A request never waits long on Redis: a frozen server costs one request at most a second or two,
# after which the process leaves Redis alone for REDIS_BACKOFF seconds where it can (`redis_unavailable`).
REDIS_TIMEOUT = 1.0
REDIS_BACKOFF = 5.0
_unavailable_until = 0.0


def init_app(app: Flask) -> None:
    app.extensions["echo_redis"] = Redis.from_url(
        app.config["ECHO"].redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT,
        health_check_interval=30)


def redis_connection() -> Redis:
    """The app's Redis client, with short time-outs: for requests and for what jobs write."""
    return current_app.extensions["echo_redis"]


def worker_connection() -> Redis:
    """A Redis client of its own for rq's worker loop, which blocks minutes waiting for a job (rq sets
    the time-out it needs on it); the app's short time-outs stay on the app's client."""
    return Redis.from_url(current_app.config["ECHO"].redis_url, socket_connect_timeout=5)


class PromptUnsubscribe:
    """Mixed into an rq worker: stopping it does not wait on its pub/sub thread.

    rq 3 unsubscribes and then joins that thread with no time-out; with redis-py 8 the thread,
    seeing no subscription any more, waits up to 60 s for one, so every worker stop (a burst run, a
    job process being replaced, a warm shutdown) took a minute. Here the thread is told to stop
    and given half a second; one still blocked in its read is a daemon that closes its pub/sub
    (and leaves the channel) itself when the read returns. Nothing else touches that connection
    meanwhile: closing it under the thread's read returned it to the pool twice."""

    pubsub_thread: Any

    def unsubscribe(self) -> None:
        thread = self.pubsub_thread
        if not thread:
            return
        try:
            thread.stop(timeout=0.5)
        except TypeError:  # redis-py before 8: stop() takes no time-out and does not join
            thread.stop()


def redis_unavailable() -> bool:
    """Whether Redis failed this process moments ago: what can do without it then skips it."""
    return time.monotonic() < _unavailable_until


def note_redis_failure(exc: RedisError) -> None:
    """Back off after a time-out (a frozen or unreachable server, which costs every caller its wait);
    a refused connection costs nothing to try again."""
    global _unavailable_until
    if isinstance(exc, RedisTimeoutError):
        _unavailable_until = time.monotonic() + REDIS_BACKOFF


def queue(name: str) -> Queue:
    return Queue(name, connection=redis_connection())


def enqueue_after_commit(func: Callable[..., Any], *args: Any, queue_name: str = "default", **options: Any) -> None:
    """Hold a job until the current transaction commits; drop it if the transaction rolls back.

    A worker that picks a job up before the row it names is committed would find nothing,
    so jobs never leave before the commit that makes them meaningful. The commit does not wait on
    an unavailable Redis: the job is then not enqueued, so a job enqueued this way must be one that
    a sweep recovers from its rows (deliveries are: the outbox sweeper finds them).
    """
    db.session.info.setdefault(_PENDING, []).append((queue_name, func, args, options))


def publish_after_commit(channel: str, message: str = "1") -> None:
    """Publish on a Redis channel once the transaction commits (once per transaction and channel), in
    the same round trip as its jobs. Best effort: a subscriber must not depend on every message (the
    live event hub reads the log on a timer too)."""
    pending = db.session.info.setdefault(_PENDING, [])
    if not any(queue_name is None and func == channel for queue_name, func, _a, _o in pending):
        pending.append((None, channel, (message,), {}))


@event.listens_for(Session, "after_commit")
def _send_pending_jobs(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    def names() -> str:  # for the log lines only: not built on the hot path of every commit
        return ", ".join(f"{getattr(func, '__name__', func)} on {queue_name or 'pub/sub'}"
                         for queue_name, func, _a, _o in pending)

    if redis_unavailable():
        log.warning("Redis unavailable: %s left to the sweeper", names())
        return
    # Every job of the transaction in one pipeline: one Redis round trip, whatever the count.
    try:
        with redis_connection().pipeline() as pipe:
            # Publishes last: rq's enqueue may WATCH keys, which must come before any other command.
            for queue_name, func, args, options in sorted(pending, key=lambda item: item[0] is None):
                if queue_name is None:  # a publish (`publish_after_commit`)
                    pipe.publish(func, *args)
                else:
                    queue(queue_name).enqueue(func, *args, pipeline=pipe, **options)
            pipe.execute()
    except RedisError as exc:  # the rows are committed; the sweeper enqueues them once Redis is back
        note_redis_failure(exc)
        log.error("could not enqueue %s (%s: %s); left to the sweeper", names(), type(exc).__name__, exc)
    except Exception:
        log.exception("could not enqueue %s", names())


def waiting_jobs(job_ids: Iterable[str]) -> set[str]:
    """Which of these jobs are waiting in a queue or running, in one round trip (rq's job status)."""
    ids = list(job_ids)
    if not ids:
        return set()
    with redis_connection().pipeline(transaction=False) as pipe:
        for job_id in ids:
            pipe.hget(Job.key_for(job_id), "status")
        statuses = pipe.execute()
    return {job_id for job_id, status in zip(ids, statuses, strict=True)
            if status in (b"queued", b"started", b"deferred", b"scheduled")}


def cancel_queued_jobs(queue_name: str, job_ids: list[str]) -> None:
    """Drop queued jobs that have nothing left to do, in one round trip.

    Each id is taken off the queue (the jobs a delivery batch made redundant are near its front,
    where LREM finds them at once) and its job deleted; rq skips an id whose job is gone. A job
    that a worker has already taken just runs, as it would have anyway."""
    if not job_ids:
        return
    key = queue(queue_name).key
    try:
        with redis_connection().pipeline(transaction=False) as pipe:
            for job_id in job_ids:
                pipe.lrem(key, 1, job_id)
                pipe.delete(Job.key_for(job_id))
            pipe.execute()
    except RedisError as exc:  # they run, find nothing due, and end
        log.warning("could not cancel %s redundant jobs (%s)", len(job_ids), type(exc).__name__)


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


def exclusive_key(func: Callable[..., Any]) -> str:
    return f"echo:running:{func.__module__}.{func.__name__}"


def exclusive(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a periodic job that runs one at a time: the clock does not enqueue it again while the last
    one is waiting or running (`workers.clock`), and the job clears the mark when it ends."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        finally:
            with contextlib.suppress(RedisError):
                redis_connection().delete(exclusive_key(func))

    wrapper.echo_exclusive = True  # type: ignore[attr-defined]
    return wrapper


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
