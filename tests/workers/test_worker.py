"""The worker runs jobs in one warm process, and still ends jobs that overrun or get stuck."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FailedJobRegistry, FinishedJobRegistry, StartedJobRegistry

ROOT = Path(__file__).resolve().parents[2]
JOBS = "tests.workers.jobs"


@pytest.fixture
def worker(base_env):
    """Start `workers.worker.run` in a child process, as `echo-desk worker` does; stopped after the test."""
    started = []

    def start(*, burst: bool = True, hang_grace: float = 60.0) -> subprocess.Popen:
        code = ("from echo import create_app; from workers.worker import run; "
                f"run(create_app(), burst={burst}, hang_grace={hang_grace})")
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **base_env},
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


@pytest.fixture
def jobs(redis_url):
    return Queue("default", connection=Redis.from_url(redis_url))


def noted(path: Path) -> list[tuple[int, int]]:
    """(pid, parent pid) of each job that ran, in order."""
    lines = path.read_text().split("\n") if path.exists() else []
    return [tuple(map(int, line.split())) for line in lines if line]


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_jobs_run_in_one_warm_process_not_a_fork_each(worker, jobs, tmp_path):
    log = tmp_path / "pids"
    for _ in range(3):
        jobs.enqueue(f"{JOBS}.note_pid", str(log))
    started = time.monotonic()
    supervisor = worker()
    assert supervisor.wait(60) == 0
    assert time.monotonic() - started < 20  # and it stops at once when they are done (rq's pub/sub took 60 s)
    runs = noted(log)
    assert len(runs) == 3
    assert len({pid for pid, _ in runs}) == 1  # the same process ran every job
    assert runs[0][0] != supervisor.pid and runs[0][1] == supervisor.pid  # a child of the worker, not the worker


def test_a_job_past_its_timeout_fails_and_a_fresh_process_runs_the_next(worker, jobs, tmp_path):
    log = tmp_path / "pids"
    slow = jobs.enqueue(f"{JOBS}.sleep", str(log), 60, job_timeout=1)
    after = jobs.enqueue(f"{JOBS}.note_pid", str(log))
    started = time.monotonic()
    assert worker().wait(60) == 0
    assert time.monotonic() - started < 30  # the alarm ended the sleep, not its 60 s
    slow = Job.fetch(slow.id, connection=jobs.connection)
    assert slow.get_status() == "failed" and "JobTimeoutException" in slow.latest_result().exc_string
    assert Job.fetch(after.id, connection=jobs.connection).get_status() == "finished"
    (timed_out, _), (next_one, _) = noted(log)
    assert timed_out != next_one  # what the interrupted job left behind went with its process


def test_a_job_stuck_where_the_alarm_cannot_reach_is_killed_and_work_goes_on(worker, jobs, tmp_path):
    log = tmp_path / "pids"
    stuck = jobs.enqueue(f"{JOBS}.ignore_alarm", str(log), 300, job_timeout=1)
    after = jobs.enqueue(f"{JOBS}.note_pid", str(log))
    started = time.monotonic()
    assert worker(hang_grace=1).wait(60) == 0
    assert time.monotonic() - started < 30
    assert Job.fetch(stuck.id, connection=jobs.connection).get_status() != "finished"
    assert Job.fetch(after.id, connection=jobs.connection).get_status() == "finished"
    (stuck_pid, _), (next_pid, _) = noted(log)
    assert stuck_pid != next_pid and not alive(stuck_pid)


def test_a_self_recording_job_runs_without_rq_records_and_its_failure_is_kept(worker, jobs, tmp_path):
    log = tmp_path / "pids"
    done = jobs.enqueue(f"{JOBS}.note_pid_self_recorded", str(log))
    broken = jobs.enqueue(f"{JOBS}.fail_self_recorded", str(log))
    assert worker().wait(60) == 0
    assert len(noted(log)) == 2
    assert not jobs.connection.exists(done.key)  # no status, result or execution left behind
    assert StartedJobRegistry("default", connection=jobs.connection).count == 0
    assert FinishedJobRegistry("default", connection=jobs.connection).count == 0
    broken = Job.fetch(broken.id, connection=jobs.connection)  # a failure is kept, as rq keeps any
    assert broken.get_status() == "failed" and "the job broke" in broken.latest_result().exc_string
    assert broken.id in FailedJobRegistry("default", connection=jobs.connection)


def test_a_self_recording_job_past_its_timeout_fails_and_a_fresh_process_runs_the_next(worker, jobs, tmp_path):
    log = tmp_path / "pids"
    slow = jobs.enqueue(f"{JOBS}.sleep_self_recorded", str(log), 60, job_timeout=1)
    jobs.enqueue(f"{JOBS}.note_pid_self_recorded", str(log))
    started = time.monotonic()
    assert worker().wait(60) == 0
    assert time.monotonic() - started < 30
    slow = Job.fetch(slow.id, connection=jobs.connection)
    assert slow.get_status() == "failed" and "JobTimeoutException" in slow.latest_result().exc_string
    (timed_out, _), (next_one, _) = noted(log)
    assert timed_out != next_one


def test_sigterm_lets_the_running_job_finish_then_stops(worker, jobs, tmp_path):
    log = tmp_path / "pids"
    job = jobs.enqueue(f"{JOBS}.sleep", str(log), 2)
    supervisor = worker(burst=False)
    wait_for(lambda: noted(log))
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(30) == 0
    assert Job.fetch(job.id, connection=jobs.connection).get_status() == "finished"


def test_a_killed_worker_takes_its_job_process_with_it(worker, jobs, tmp_path):
    log = tmp_path / "pids"
    jobs.enqueue(f"{JOBS}.sleep", str(log), 60)
    supervisor = worker(burst=False)
    wait_for(lambda: noted(log))
    (job_pid, _), = noted(log)
    supervisor.send_signal(signal.SIGKILL)
    supervisor.wait(10)
    wait_for(lambda: not alive(job_pid), 10)


def alive(pid: int) -> bool:
    """Still running (a zombie waiting to be reaped by whoever inherited it is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
