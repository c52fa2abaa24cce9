"""The live stream across real processes: two web servers started as the Procfile starts them (gevent
workers) and one Redis; an event committed through one reaches a client of the other, a client that
reconnects gets exactly what it missed, and a Redis restart loses nothing committed meanwhile."""

from __future__ import annotations

import http.client
import json
import os
import queue
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from tests.fakes.redis_server import RedisServer, free_port
from tests.live import take
from tests.mailbuilder import WEBHOOK_AUTH, inbound_payload

ROOT = Path(__file__).resolve().parents[2]


class Web:
    """The Procfile's `web` process on a port of its own."""

    def __init__(self, env: dict, log: Path) -> None:
        line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
        self.port = free_port()
        argv = shlex.split(line.removeprefix("web:").replace("$PORT", str(self.port))
                           .replace("${WEB_CONCURRENCY:-5}", "2"))
        self.log = log
        with log.open("w") as output:
            self.proc = subprocess.Popen(argv, cwd=ROOT, env={**env, "PORT": str(self.port)}, stdout=output,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"{self.url}/api/v1/support/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:  # open event streams would hold a graceful stop for gunicorn's 30 s: their clients reconnect
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class Stream:
    """A raw SSE client (as a browser's EventSource): events queued as they arrive."""

    def __init__(self, web: Web, token: str, last_id: str | None = None) -> None:
        self.events: queue.Queue = queue.Queue()
        self.conn = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        if last_id:
            headers["Last-Event-ID"] = last_id
        self.conn.request("GET", "/api/v1/agent/events", headers=headers)
        self.response = self.conn.getresponse()
        assert self.response.status == 200
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        data: list[str] = []
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\r\n")
                if line.startswith("data: "):
                    data.append(line[6:])
                elif not line and data:
                    self.events.put(json.loads("".join(data)))
                    data = []
        except (OSError, ValueError, AttributeError):  # closed by the test (http.client drops its socket)
            pass

    def take(self, count: int, timeout: float = 10.0) -> list[dict]:
        return [event for event in take(self.events, count, timeout) if event.get("kind") != "presence"]

    def close(self) -> None:
        """Drop the connection at once (a plain close would wait for the reading thread's next line)."""
        if self.conn.sock is not None:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        self.conn.close()


@pytest.fixture(scope="module")
def servers(base_env, tmp_path_factory):
    """One Redis of the tests' own and two web servers on it, for the whole module."""
    logs = tmp_path_factory.mktemp("live")
    redis = RedisServer(logs)
    redis.start()
    env = {**os.environ, **base_env, "REDIS_URL": redis.url,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    webs = [Web(env, logs / "web-a.log"), Web(env, logs / "web-b.log")]
    yield webs, redis
    for web in webs:
        web.stop()
    redis.stop()


@pytest.fixture
def cluster(servers, app, db):
    from echo.agents.service import create_token
    from tests.factories import AgentFactory

    webs, redis = servers
    if redis.process is None:
        redis.start()
    agent = AgentFactory(email="live@raxx.app")
    _, token = create_token(agent.email)
    db.session.commit()
    streams: list[Stream] = []

    def stream(web, last_id=None):
        opened = Stream(web, token, last_id)
        streams.append(opened)
        time.sleep(0.3)  # subscribed before the test writes
        return opened

    yield webs, redis, stream
    for opened in streams:
        opened.close()


def mail(web: Web, subject: str, sender: str) -> None:
    response = requests.post(f"{web.url}/tickets/inbound", json=inbound_payload(sender=sender, subject=subject),
                             auth=WEBHOOK_AUTH, timeout=15)
    assert response.status_code == 200, response.text


def test_an_event_from_one_server_reaches_a_client_of_the_other(cluster):
    (a, b), _redis, stream = cluster
    listener = stream(b)
    started = time.monotonic()
    mail(a, "Through A", "one@example.com")
    got = listener.take(1)
    assert [e["kind"] for e in got] == ["created"] and got[0]["ticket"] == "TKT-0001"
    assert time.monotonic() - started < 2.0  # woken by Redis, not by the timer


def test_a_client_that_drops_and_reconnects_gets_exactly_what_it_missed(cluster):
    (a, b), _redis, stream = cluster
    first = stream(b)
    mail(a, "Before", "one@example.com")
    last = first.take(1)[0]["id"]
    first.close()
    for i in range(3):
        mail(a, f"While away {i}", f"away{i}@example.com")
    again = stream(a, last_id=last)  # and to the other server, as a load balancer may
    assert [e["ticket"] for e in again.take(3)] == ["TKT-0002", "TKT-0003", "TKT-0004"]
    assert again.take(1, timeout=3) == []  # none twice


def test_a_redis_restart_loses_no_committed_event(cluster):
    (a, b), redis, stream = cluster
    listener = stream(b)
    redis.stop()
    mail(a, "While Redis is down", "down@example.com")  # committed; nobody is woken
    got = listener.take(1, timeout=10)
    assert [e["ticket"] for e in got] == ["TKT-0001"]  # read from the log on the hub's timer
    redis.start()
    time.sleep(1)
    mail(a, "After Redis came back", "back@example.com")
    assert [e["ticket"] for e in listener.take(1, timeout=10)] == ["TKT-0002"]
