"""Idle event streams and event latency, on one web process started as the Procfile starts it.

    .venv/bin/python bench/live_streams.py [--idle 500] [--idle-seconds 20] [--clients 100] [--events 50]

A fresh database (BENCH_DATABASE_URL) and Redis db (BENCH_REDIS_URL, default redis://127.0.0.1:6379/12,
flushed). Echo's web runs as the Procfile's `web:` line (gunicorn, gevent workers) with `--workers 1`,
so one process holds every stream. Then:

1. Idle: the worker's RSS and CPU time with no stream, then with `--idle` open `/api/v1/agent/events`
   streams sitting `--idle-seconds`: memory per stream, and the worker's CPU while they idle.
2. Latency: `--clients` streams; `--events` inbound webhooks one after another, ~100 ms apart; for each
   client and event, the time from the webhook's 200 to the event's arrival (p50, p95, max), and a check
   that every client got every event exactly once.
Everything it starts is stopped and the database dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import selectors
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchdb import Database  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds, RSS KB) of one process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, rss


class Streams:
    """Many raw SSE connections read by one selector thread; each event's arrival time per client."""

    def __init__(self, port: int, token: str, count: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.arrivals: list[dict[str, list[float]]] = [{} for _ in range(count)]
        self.headers_seen = 0
        self.open = count
        self.buffers = [b"" for _ in range(count)]
        self.answered = [False] * count
        self.socks = []
        request = (f"GET /api/v1/agent/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
                   "Accept: text/event-stream\r\n\r\n").encode()
        for index in range(count):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(request)
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ, index)
            self.socks.append(sock)
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop:
            for key, _ in self.selector.select(timeout=0.2):
                index = key.data
                try:
                    chunk = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                now = time.monotonic()
                if not chunk:
                    self.selector.unregister(key.fileobj)
                    self.open -= 1
                    continue
                data = self.buffers[index] + chunk
                if not self.answered[index]:
                    if b"\r\n\r\n" not in data:
                        self.buffers[index] = data
                        continue
                    self.answered[index] = True
                    self.headers_seen += 1
                    data = data.split(b"\r\n\r\n", 1)[1]
                *lines, self.buffers[index] = data.split(b"\n")
                for line in lines:
                    if line.startswith(b"data: "):
                        try:
                            event = json.loads(line[6:])
                        except ValueError:
                            continue
                        if event.get("kind") == "created":
                            self.arrivals[index].setdefault(event["ticket"], []).append(now)

    def close(self) -> None:
        self.stop = True
        self.thread.join(5)
        for sock in self.socks:
            try:
                sock.close()
            except OSError:
                pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    database = Database(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")
    web = None
    tmp = Path(tempfile.mkdtemp(prefix="echo-live-bench-"))
    try:
        import redis

        redis.Redis.from_url(redis_url).flushdb()
        database.create()
        database.migrate()
        user, password = "postmark", secrets.token_hex(16)
        env = {**os.environ, "ECHO_ENV": "development", "DATABASE_URL": database.dsn, "REDIS_URL": redis_url,
               "ECHO_SECRET_KEY": secrets.token_hex(32), "SESSION_KEY": secrets.token_hex(32),
               "ECHO_WEBHOOK_USER": user, "ECHO_WEBHOOK_PASSWORD": password,
               "ECHO_SUPPORT_ADDRESS": "support@raxx.app", "ECHO_INSTANCE_PATH": str(tmp / "instance"),
               "ECHO_FLOOD_LIMIT": "1000000", "PYTHONPATH": str(ROOT),
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        from echo import create_app
        from echo.agents.service import create_token, ensure_agent
        from echo.extensions import db

        app = create_app({k: v for k, v in env.items() if k.startswith(("ECHO_", "DATABASE", "REDIS", "SESSION"))})
        with app.app_context():
            ensure_agent("bench@raxx.app", "Bench", "ops")
            _, token = create_token("bench@raxx.app")
            db.session.commit()
            db.engine.dispose()
        port = free_port()
        line = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
        argv = shlex.split(line.removeprefix("web:").replace("$PORT", str(port)).replace("${WEB_CONCURRENCY:-5}", "1"))
        log = open(tmp / "web.log", "w")  # noqa: SIM115
        web = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if requests.get(f"{url}/api/v1/support/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        children = Path(f"/proc/{web.pid}/task/{web.pid}/children").read_text().split()
        worker = int(children[0])
        time.sleep(2)
        cpu0, rss0 = proc_stat(worker)

        idle = Streams(port, token, args.idle)
        deadline = time.monotonic() + 60
        while idle.headers_seen < args.idle and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        cpu1, rss1 = proc_stat(worker)
        time.sleep(args.idle_seconds)
        cpu2, rss2 = proc_stat(worker)
        still_open = idle.open
        idle.close()
        per_stream = (rss2 - rss0) / max(1, args.idle)
        idle_cpu = (cpu2 - cpu1) / args.idle_seconds * 100
        print(f"idle: {args.idle} streams ({idle.headers_seen} answered, {still_open} still open after "
              f"{args.idle_seconds:.0f} s); worker RSS {rss0 / 1024:.1f} MB -> {rss2 / 1024:.1f} MB, "
              f"{per_stream:.1f} KB per stream; CPU while idle {idle_cpu:.2f} % of one core")
        time.sleep(1)

        clients = Streams(port, token, args.clients)
        deadline = time.monotonic() + 60
        while clients.headers_seen < args.clients and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1)
        sys.path.insert(0, str(ROOT))
        from tests.mailbuilder import inbound_payload

        sent: dict[str, float] = {}
        session = requests.Session()
        for i in range(args.events):
            payload = inbound_payload(sender=f"live{i}@example.com", subject=f"Live {i}")
            response = session.post(f"{url}/tickets/inbound", json=payload, auth=(user, password), timeout=15)
            done = time.monotonic()
            assert response.status_code == 200, response.text
            sent[response.json()["ticket_number"]] = done
            time.sleep(0.1)
        time.sleep(3)
        clients.close()
        latencies, missing, doubled = [], 0, 0
        for arrivals in clients.arrivals:
            for number, at in sent.items():
                times = arrivals.get(number, [])
                if not times:
                    missing += 1
                    continue
                doubled += len(times) > 1
                latencies.append((times[0] - at) * 1000)
        latencies.sort()
        p95 = latencies[int(len(latencies) * 0.95) - 1] if latencies else float("nan")
        print(f"latency: {args.events} webhooks x {args.clients} clients: p50 {statistics.median(latencies):.1f} ms, "
              f"p95 {p95:.1f} ms, max {latencies[-1]:.1f} ms; missing {missing}, repeated {doubled}")
        return 0 if missing == 0 and doubled == 0 else 1
    finally:
        if web is not None and web.poll() is None:
            os.killpg(web.pid, signal.SIGKILL)
            web.wait(10)
        database.drop()


if __name__ == "__main__":
    sys.exit(main())
