"""Fault injection against real processes: a Redis server of the test's own, which it stops, freezes and
restarts, and a real `echo-desk worker` process beside the app under test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fakes.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def faulty_app(make_app, own_redis):
    """The app, on the test's own Redis."""
    from echo import jobs

    app = make_app(REDIS_URL=own_redis.url)
    with app.app_context():
        yield app
    jobs._unavailable_until = 0.0  # this process's back-off from the test's Redis is not the next test's


@pytest.fixture
def echo_worker(base_env, own_redis, tmp_path):
    """Start `echo-desk worker` (with its clock) on the test's own Redis; killed after the test."""
    started: list[subprocess.Popen] = []

    def start() -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(started)}.log", "w")  # noqa: SIM115 - the process writes it
        proc = subprocess.Popen([sys.executable, "-m", "echo.cli", "worker"], cwd=ROOT,
                                env={**os.environ, **base_env, "REDIS_URL": own_redis.url},
                                stdout=log, stderr=subprocess.STDOUT)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)


def wait_for(condition, seconds: float, what: str = "condition") -> float:
    """Wait until condition() is true; how long it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, f"timed out waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started
