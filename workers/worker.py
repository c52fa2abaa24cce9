"""Run background jobs: `echo-desk worker` (and the Procfile's worker process).

Jobs run in a warm, long-lived *job process*, not in a fresh fork per job. rq's default
`Worker` forks a work horse for every job, and each horse pays for a new process again:
copy-on-write faults over the parent's heap, a new PostgreSQL connection, a new connection
to Postmark, cold SQLAlchemy and Jinja caches. That came to 0.12-0.18 s of CPU per email
delivered; a warm process needs about 0.01 s (bench/worker_cpu.py).

So the worker process is a small *supervisor*. It builds the app once, loads what jobs need
(`warm`), and forks one job process. That process runs rq's `SimpleWorker`, with no fork per
job, for up to `MAX_JOBS` jobs. When it exits, the supervisor forks a fresh one from the same
warm image. The supervisor never runs a job itself. A fork per job gave us four things, and
each one is kept:

* **Job timeouts.** `SimpleWorker` runs each job under rq's SIGALRM death penalty, in the
  job process's main thread. A job that overruns its timeout (rq's default is 180 s; the
  Postmark client gives up after 15 s) raises `JobTimeoutException` and fails like any other
  job. Its process is then replaced, as the horse died before: the interrupted job may have
  left a connection in mid-protocol.
* **Stuck jobs.** A job can be stuck where the alarm cannot reach it: C code holding the GIL,
  or a handler that swallows the exception. The job process publishes each job's deadline in
  shared memory. The supervisor SIGKILLs the process `HANG_GRACE` seconds after that deadline
  (rq's forking worker also waited 60 s), and a new job process carries on with the queue.
  The killed job stays in rq's started registry until rq's registry cleanup fails it as
  abandoned. A delivery stuck like this is a stale `sending` row, and the outbox sweeper
  recovers it as it recovers a crash: it asks Postmark first and never sends twice.
* **Leaks.** A job process is replaced after `MAX_JOBS` jobs, or once its peak memory passes
  `MAX_RSS_MB`. Memory or state that a job leaks does not live for ever.
* **Crashes.** A job process that dies (a segfault, the OOM killer) is replaced. If the
  supervisor itself is killed, the kernel kills its job process too (Linux's
  PR_SET_PDEATHSIG), so no orphan goes on working unwatched.

SIGTERM and SIGINT are passed on to the job process: rq finishes the current job (a warm
shutdown), and a second signal more than a second later stops it at once. The clock (periodic
jobs) and the delivery jobs' sender threads (`echo.mail.tasks`) run in the job process, so the
supervisor stays single-threaded and safe to fork; a job process that stops waits up to
`SEND_GRACE` for the emails its sender threads still hold.

Redis going away does not end the worker. rq's loop waits for Redis with back-off while it is
waiting for a job; a Redis error anywhere else ends the job process, and the supervisor starts
another (at most `MAX_BACKOFF` apart while they keep failing), which waits for Redis in turn. rq
talks to Redis on a client of its own (`echo.jobs.worker_connection`), whose time-out suits its
blocking wait; what jobs write goes through the app's client, with its short time-outs.

rq's own bookkeeping is trimmed of writes that nothing reads (`JobProcessWorker`): coalesced
heartbeats, the suspension check at most once a second, no second "idle" state write per job, no
closing heartbeat on a finished job. That leaves eight Redis round trips per job, with rq's started
registry, execution records and results as rq keeps them. Jobs marked `echo.jobs.self_recording`
(deliveries: their outbox rows are the record) skip those records too, which leaves three round
trips: the pop, the fetch and the job's deletion. Outbound mail, the bulk of the jobs, is
also delivered in batches, so a backlog pays rq once per batch rather than per email
(`echo.mail.tasks`).
"""

from __future__ import annotations

import ctypes
import gc
import importlib
import logging
import mmap
import os
import resource
import signal
import sys
import threading
import time

from flask import Flask
from rq import SimpleWorker
from rq.logutils import setup_loghandlers
from rq.timeouts import JobTimeoutException
from rq.utils import now
from rq.worker import WorkerStatus

from echo import jobs
from echo.jobs import QUEUES, PromptUnsubscribe, worker_connection
from echo.mail import postmark
from echo.mail.tasks import wait_for_sends
from workers import clock

log = logging.getLogger(__name__)

# Every module that defines jobs, imported before any thread starts or process forks.
JOB_MODULES = ("echo.mail.tasks", "echo.tickets.tasks", "echo.privacy.tasks", "echo.attachments.tasks")
MAX_JOBS = 1000
MAX_RSS_MB = 400
HANG_GRACE = 60.0  # seconds past a job's timeout before its process is killed
POLL = 0.25  # seconds between the supervisor's looks at its job process
SEND_GRACE = postmark.CONNECT_TIMEOUT + postmark.READ_TIMEOUT + 5  # seconds a stopping job process waits for its sends
MAX_BACKOFF = 10.0  # seconds, at most, between job processes that keep failing at once (Redis away)

_REPLACE = 3  # a job process's exit status: "fork another one" (recycled, or a job timed out)
_CRASHED = 70


class _Shared(ctypes.Structure):
    """What a job process tells its supervisor, in memory both of them see."""

    _fields_ = [("deadline", ctypes.c_double),  # time.monotonic() past which the job is stuck; 0 when idle
                ("jobs", ctypes.c_long),  # jobs run by all job processes so far
                ("job_id", ctypes.c_char * 64)]


def run(app: Flask, *, burst: bool = False, queues: tuple[str, ...] = QUEUES, max_jobs: int = MAX_JOBS,
        max_rss_mb: int = MAX_RSS_MB, hang_grace: float = HANG_GRACE) -> bool:
    """Work the queues until stopped (or until they are empty in burst mode); True if any job ran."""
    setup_loghandlers("INFO", name=__name__)
    jobs.install_app(app)
    warm(app)
    memory = mmap.mmap(-1, ctypes.sizeof(_Shared))
    shared = _Shared.from_buffer(memory)
    supervisor = _Supervisor(app, shared, burst=burst, queues=queues, max_jobs=max_jobs,
                             max_rss_mb=max_rss_mb, hang_grace=hang_grace)
    supervisor.loop()
    return shared.jobs > 0


def warm(app: Flask) -> None:
    """Load, once, what each job process would otherwise load for itself on its first jobs."""
    from sqlalchemy.orm import configure_mappers

    for name in JOB_MODULES:
        importlib.import_module(name)
    with app.app_context():
        configure_mappers()
        try:
            emails = app.jinja_env.list_templates(filter_func=lambda n: n.startswith("email/"))
        except TypeError:  # a loader that cannot list its templates: they compile on first use instead
            emails = []
        for name in emails:
            app.jinja_env.get_template(name)
    gc.collect()
    gc.freeze()  # the collector leaves the warm heap alone, so job processes share its pages


class _Supervisor:
    def __init__(self, app: Flask, shared: _Shared, *, burst: bool, queues: tuple[str, ...], max_jobs: int,
                 max_rss_mb: int, hang_grace: float) -> None:
        self.app, self.shared, self.burst, self.queues = app, shared, burst, queues
        self.max_jobs, self.max_rss_mb, self.hang_grace = max_jobs, max_rss_mb, hang_grace
        self.child = 0
        self.stopping = False
        self.killed_stuck = False

    def loop(self) -> None:
        handlers = {sig: signal.signal(sig, self._pass_on) for sig in (signal.SIGTERM, signal.SIGINT)}
        quick_exits = 0
        try:
            while not self.stopping:
                started = time.monotonic()
                status = self._run_job_process()
                if self.stopping:
                    break
                if status == _REPLACE or self.killed_stuck:
                    quick_exits = 0
                    continue
                if self.burst:
                    if status != 0:
                        log.error("job process exited with status %s", status)
                    break  # done: the queues are empty (or a crash, which a retry would repeat)
                # It stopped by itself (Redis unreachable, killed from outside): start another,
                # backing off while they keep failing fast.
                quick_exits = quick_exits + 1 if time.monotonic() - started < 10 else 0
                log.warning("job process exited with status %s; starting another", status)
                self._sleep(min(MAX_BACKOFF, 2.0 ** quick_exits) if quick_exits else 0.0)
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)

    def _run_job_process(self) -> int:
        """Fork a job process and watch it until it exits; its exit status (negative: killed by a signal)."""
        self.shared.deadline, self.killed_stuck = 0.0, False
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _job_process_main(self, parent)  # never returns
        self.child = pid
        try:
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return os.waitstatus_to_exitcode(status)
                deadline = self.shared.deadline
                if deadline and time.monotonic() > deadline:
                    log.warning("job %s in job process %s is stuck %.0f s past its timeout; killing the process",
                                self.shared.job_id.decode(), pid, self.hang_grace)
                    os.kill(pid, signal.SIGKILL)
                    self.shared.deadline, self.killed_stuck = 0.0, True
                time.sleep(POLL)
        finally:
            self.child = 0

    def _pass_on(self, signum, frame) -> None:
        """SIGTERM/SIGINT: stop once the job process has finished (rq's warm, then cold, shutdown)."""
        self.stopping = True
        if self.child:
            try:
                os.kill(self.child, signum)
            except ProcessLookupError:
                pass

    def _sleep(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < until:
            time.sleep(POLL)


def _job_process_main(supervisor: _Supervisor, parent: int) -> None:
    """Entry point of a forked job process: work jobs, then leave with the status the supervisor reads."""
    status = _CRASHED
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)  # until rq installs its own shutdown handlers
        _die_with(parent)
        status = _work(supervisor)
    except SystemExit:  # rq's cold shutdown
        status = 0
    except BaseException:
        log.exception("job process failed")
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)


def _die_with(parent: int) -> None:
    """Have the kernel SIGKILL this process when the supervisor dies (Linux; elsewhere best effort)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(_CRASHED)


def _work(supervisor: _Supervisor) -> int:
    from echo.extensions import db

    app, stop = supervisor.app, threading.Event()
    with app.app_context():
        db.engine.dispose(close=False)  # never share a pooled connection with another process
        connection = worker_connection()
    if not supervisor.burst:
        clock.start(app, stop)
    try:
        worker = JobProcessWorker(list(supervisor.queues), connection=connection, supervisor=supervisor)
        worker.work(burst=supervisor.burst, logging_level="INFO")
    finally:
        stop.set()
        # Emails handed to the sender threads are sent and recorded before the process goes; one
        # whose answer does not come by then stays `sending`, and the sweeper asks Postmark.
        if not wait_for_sends(SEND_GRACE):
            log.warning("sends still unanswered after %.0f s; left for the sweeper to confirm", SEND_GRACE)
    return _REPLACE if worker.replace else 0


class JobProcessWorker(PromptUnsubscribe, SimpleWorker):
    """rq's in-process worker that reports each job's deadline and asks to be replaced when it should be."""

    _beat_at, _beat_ttl = 0.0, 0  # when the last heartbeat went out, and for how long
    _running_since_check = -1.0  # time.monotonic() when the workers were last seen not suspended

    def __init__(self, *args, supervisor: _Supervisor, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.supervisor = supervisor
        self.jobs_done = 0
        self.timed_out = False
        self.replace = False

    def execute_job(self, job, queue) -> None:
        shared = self.supervisor.shared
        timeout = job.timeout or self.queue_class.DEFAULT_TIMEOUT
        shared.job_id = job.id.encode()[:63]
        shared.deadline = time.monotonic() + timeout + self.supervisor.hang_grace if timeout > 0 else 0.0
        try:
            with self.supervisor.app.app_context():  # each job its own context (a fresh `g`) and session
                if _self_recording(job):
                    self._perform_self_recording(job, queue, timeout)
                else:
                    super().execute_job(job, queue)
        finally:
            shared.deadline = 0.0
            shared.jobs += 1
            self.jobs_done += 1
        if self.timed_out or self.jobs_done >= self.supervisor.max_jobs or _peak_rss_mb() > self.supervisor.max_rss_mb:
            self.replace = True
            self._stop_requested = True  # rq's loop stops before taking another job

    def _perform_self_recording(self, job, queue, timeout: int) -> None:
        """Run a job that records its own outcome (`echo.jobs.self_recording`) without rq's records of it.

        rq would write the job's execution record, started registry entry, status, heartbeat and
        result, and the worker's busy state, before and after it: five round trips to Redis that
        nothing reads for a delivery, whose outbox row says what happened (and whose sweeper, not
        rq's registries, recovers it if this process dies). So the job is deleted as it starts and
        run under the same timeout. Only a failure goes to rq, as rq records any failure: the job
        is saved back, failed and kept in the failed registry with its traceback."""
        self.connection.delete(job.key)
        self.heartbeat(timeout + 60 if timeout > 0 else None)  # skipped when the last beat covers the job
        job.started_at = now()
        try:
            with self.death_penalty_class(timeout, JobTimeoutException, job_id=job.id):
                job.perform()
        except BaseException:  # as rq's perform_job: whatever ended the job, the job failed
            exc_info = sys.exc_info()
            job.save()
            self._finalize_failure(job, queue, self.prepare_execution(job), exc_info)
            self.set_state(WorkerStatus.IDLE)
            return
        job.ended_at = now()
        self.log.info("Worker %s: %s: job OK (%s) in %.0f ms", self.name, queue.name, job.id,
                      (job.ended_at - job.started_at).total_seconds() * 1000)

    def check_for_suspension(self, burst: bool) -> None:
        """rq's, asked at most once a second while the workers are not suspended.

        rq asks Redis before every job, so one more round trip per job. A worker already waits
        for its next job up to minutes after checking, so a suspension (`rq suspend`) is never
        seen sooner than that by a waiting worker; a busy one now sees it within a second."""
        if time.monotonic() - self._running_since_check < 1.0:
            return
        super().check_for_suspension(burst)
        self._running_since_check = time.monotonic()

    def heartbeat(self, timeout: int | None = None, pipeline=None) -> None:
        """rq's heartbeat, skipped when one at least as long went out under a second ago.

        rq beats three times around every job, each time with three unpipelined commands: that
        was a quarter of its own CPU per job. A skipped beat would have moved the worker key's
        expiry (minutes away) by under a second. Every beat asks for at least the idle worker's
        TTL, so the one rq sends as a job starts (the job's timeout + 60 s) covers the next ones.
        """
        ttl = max(timeout or 0, self.worker_ttl + 60)
        if pipeline is not None:
            super().heartbeat(ttl, pipeline)
        elif ttl <= self._beat_ttl and time.monotonic() - self._beat_at < 1.0:
            return
        else:
            with self.connection.pipeline(transaction=False) as pipe:
                super().heartbeat(ttl, pipe)
                pipe.execute()
        self._beat_at, self._beat_ttl = time.monotonic(), ttl

    def set_state(self, state: str, pipeline=None) -> None:
        """rq's, without the write when nothing changes: rq marks the worker idle twice per job."""
        if pipeline is None and state == self.get_state():
            return
        super().set_state(state, pipeline)

    def handle_execution_ended(self, job, queue, heartbeat_ttl: int) -> None:
        """rq's, without the job's closing heartbeat: one unpipelined write per job of a timestamp
        that nothing reads once the job is over (the started registry's expiry is the execution's)."""
        job.ended_at = now()

    def handle_exception(self, job, *exc_info) -> None:
        if isinstance(exc_info[1], JobTimeoutException):
            self.timed_out = True
        super().handle_exception(job, *exc_info)


def _self_recording(job) -> bool:
    try:
        return jobs.is_self_recording(job.func)
    except Exception:  # a function that cannot be imported: rq's own path fails the job, and says why
        return False


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform.startswith("linux") else peak / 1024 / 1024  # KiB on Linux, bytes on macOS
