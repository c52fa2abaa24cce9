"""Jobs for the worker tests: each notes which process ran it, then behaves well or badly."""

import os
import signal
import time
from pathlib import Path

from echo.jobs import self_recording


def note_pid(path: str) -> int:
    with Path(path).open("a") as f:
        f.write(f"{os.getpid()} {os.getppid()}\n")
    return os.getpid()


def sleep(path: str, seconds: float) -> None:
    """A slow job: rq's alarm interrupts the sleep."""
    note_pid(path)
    time.sleep(seconds)


def ignore_alarm(path: str, seconds: float) -> None:
    """A stuck job the alarm cannot end (as if in C code holding the GIL)."""
    note_pid(path)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(seconds)


@self_recording
def note_pid_self_recorded(path: str) -> int:
    """A job whose outcome its own records keep (as a delivery's outbox row does)."""
    return note_pid(path)


@self_recording
def fail_self_recorded(path: str) -> None:
    note_pid(path)
    raise RuntimeError("the job broke")


@self_recording
def sleep_self_recorded(path: str, seconds: float) -> None:
    sleep(path, seconds)
