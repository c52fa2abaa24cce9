#!/usr/bin/env python
"""Echo's live event stream (SSE, GET /api/v1/agent/events): idle streams per web process, and latency.

    .venv/bin/python bench/live_events.py                       # 500 idle streams for 20 s, 100 clients x 50 events
    .venv/bin/python bench/live_events.py --idle 50 --clients 10 --events 10
    .venv/bin/python bench/live_events.py --json > live.json
    .venv/bin/python bench/live_events.py --backlog 5000        # the hub's memory full (5 000 rows), a busy day

One run: fresh database (migrated) + Redis db 12 (flushed) -> an agent token -> gunicorn started with the
Procfile's `web:` options (gevent worker, 1000 worker connections), `--workers 1`, no access log -> warm-up
(one stream, a few webhooks) -> the worker's RSS and CPU with 0 streams -> `--idle` SSE connections, held for
`--idle-seconds`: memory per connection, CPU while idle, every one still open -> `--clients` of them kept
(the rest closed and reaped) -> `--events` new-ticket webhooks, ~`--interval` s apart: latency from each
webhook's 200 to each client's `data:` line, every client getting every event exactly once -> report ->
everything stopped, the database dropped and Redis flushed (also after an error, Ctrl-C or SIGTERM).
See README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import resource
import secrets
import selectors
import shlex
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import payloads  # noqa: E402  (bench/payloads.py)
from benchdb import Database  # noqa: E402
from inbound import PROCS, Server, cpu_snapshot, gunicorn_bin  # noqa: E402  (process groups ended at exit)
from procs import children, cpu_seconds  # noqa: E402
from worker_cpu import echo_env  # noqa: E402

AGENT_EMAIL = "live-bench@raxx.app"
STREAM_PATH = "/api/v1/agent/events"
# Procfile options that the benchmark sets itself (bind, one worker) or leaves off (the access log).
DROPPED_OPTIONS = {"--bind", "-b", "--workers", "-w", "--access-logfile", "--access-logformat"}


def log(msg: str) -> None:
    print(f"[live_events {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# gunicorn as the Procfile starts it
# --------------------------------------------------------------------------------------------

def procfile_web() -> tuple[str, list[str]]:
    """The WSGI app and the options of the Procfile's `web:` line, minus bind, workers and the access log."""
    line = next(ln for ln in (ROOT / "Procfile").read_text().splitlines() if ln.startswith("web:"))
    tokens = shlex.split(line[len("web:"):])
    if tokens[0] != "gunicorn":
        raise RuntimeError(f"the Procfile's web line does not start gunicorn: {line}")
    app, rest, kept, i = tokens[1], tokens[2:], [], 0
    while i < len(rest):
        opt = rest[i]
        if "=" in opt and opt.startswith("--"):
            name, value, step = *opt.split("=", 1), 1
        elif i + 1 < len(rest) and not rest[i + 1].startswith("--"):  # a value, also "" or "-" (stdout)
            name, value, step = opt, rest[i + 1], 2
        else:
            name, value, step = opt, None, 1
        if name not in DROPPED_OPTIONS:
            kept += [name] if value is None else [name, value]
        i += step
    return app, kept


def worker_pid(server: Server) -> int:
    pids = children(server.proc.pid)
    if len(pids) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {pids}")
    return pids[0]


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _tcp_table() -> dict[int, tuple[int, int, str]]:
    """inode -> (local port, remote port, state) of every TCP socket in this network namespace."""
    out = {}
    for name in ("tcp", "tcp6"):
        try:
            with open(f"/proc/net/{name}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            out[int(f[9])] = (int(f[1].rsplit(":", 1)[1], 16), int(f[2].rsplit(":", 1)[1], 16), f[3])
    return out


def _unix_inodes() -> set[int]:
    try:
        with open("/proc/net/unix") as f:
            return {int(line.split()[6]) for line in f.read().splitlines()[1:] if len(line.split()) > 6}
    except OSError:
        return set()


def worker_sockets(pid: int, port: int, pg_port: int, redis_port: int) -> Counter:
    """The sockets the worker holds open, by kind. `streams` are live connections on the web port,
    `close_wait` ones the client has closed and the worker has not noticed yet, and `dead` ones the
    kernel has already dropped (reset by the peer) that the worker still holds."""
    inodes = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.append(int(link[8:-1]))
    tcp, unix = _tcp_table(), _unix_inodes()
    kinds: Counter = Counter()
    for inode in inodes:
        if inode in tcp:
            local, remote, state = tcp[inode]
            if local == port:
                kinds[{"0A": "listen", "01": "streams", "08": "close_wait"}.get(state, "web_other")] += 1
            elif remote == pg_port:
                kinds["postgres"] += 1
            elif remote == redis_port:
                kinds["redis"] += 1
            else:
                kinds["tcp_other"] += 1
        elif inode in unix:
            kinds["unix"] += 1
        else:
            kinds["dead"] += 1
    return kinds


# --------------------------------------------------------------------------------------------
# SSE clients: plain sockets, read by one selectors loop in a thread
# --------------------------------------------------------------------------------------------

class Stream:
    """One SSE connection: HTTP/1.1 response headers, chunked decoding, events with arrival times."""

    def __init__(self, number: int, sock: socket.socket) -> None:
        self.number, self.sock = number, sock
        self.head: bytearray | None = bytearray()
        self.raw, self.text = bytearray(), bytearray()
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.headers_at: float | None = None
        self.chunked = False
        self.state, self.left = "size", 0
        self.closed_at: float | None = None  # the server closed it (EOF)
        self.ended = False  # the server ended the chunked body
        self.error: str | None = None
        self.keepalives = 0
        self.retry: str | None = None
        self.ids: set[str] = set()
        self.duplicate_ids = 0
        self.id_mismatch = 0
        self.bad_json = 0
        self.presence = 0
        self.kinds: Counter = Counter()
        self.created: dict[str, float] = {}  # ticket -> when the first "created" event naming it arrived
        self.created_count: Counter = Counter()
        self.bytes = 0

    @property
    def open(self) -> bool:
        return self.closed_at is None and not self.ended and self.error is None

    def feed(self, data: bytes, t: float) -> None:
        self.bytes += len(data)
        if self.head is not None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                if len(self.head) > 65536:
                    self.error = "no end of the response headers in 64 KB"
                return
            lines = bytes(self.head[:end]).decode("latin-1").split("\r\n")
            try:
                self.status = int(lines[0].split(" ", 2)[1])
            except (IndexError, ValueError):
                self.status = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                self.headers[name.strip().lower()] = value.strip()
            self.headers_at = t
            self.chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
            data = bytes(self.head[end + 4:])
            self.head = None
            ctype = self.headers.get("content-type", "")
            if self.status != 200 or not ctype.startswith("text/event-stream"):
                self.error = f"HTTP {self.status} {ctype}"
        if self.chunked:
            self._dechunk(data)
        else:
            self.text += data
        if self.error is None:
            self._events(t)

    def _dechunk(self, data: bytes) -> None:
        raw = self.raw
        raw += data
        while raw:
            if self.state == "size":
                j = raw.find(b"\r\n")
                if j < 0:
                    return
                size = int(bytes(raw[:j]).split(b";")[0].strip() or b"0", 16)
                del raw[:j + 2]
                if size == 0:
                    self.ended, self.state = True, "done"
                    return
                self.left, self.state = size, "data"
            elif self.state == "data":
                take = min(self.left, len(raw))
                self.text += raw[:take]
                del raw[:take]
                self.left -= take
                if self.left == 0:
                    self.state = "crlf"
            elif self.state == "crlf":
                if len(raw) < 2:
                    return
                del raw[:2]
                self.state = "size"
            else:
                return

    def _events(self, t: float) -> None:
        while True:
            j = self.text.find(b"\n\n")
            if j < 0:
                return
            block = bytes(self.text[:j]).decode("utf-8", "replace")
            del self.text[:j + 2]
            event_type, data_lines, event_id = None, [], None
            for line in block.split("\n"):
                line = line.rstrip("\r")
                if line.startswith(":"):
                    if "keep-alive" in line:
                        self.keepalives += 1
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data_lines.append(value)
                elif name == "id":
                    event_id = value
                elif name == "event":
                    event_type = value
                elif name == "retry":
                    self.retry = value
            if not data_lines:
                continue
            if event_type == "presence":
                self.presence += 1
                continue
            try:
                event = json.loads("\n".join(data_lines))
            except ValueError:
                self.bad_json += 1
                continue
            self.kinds[event.get("kind")] += 1
            key = event_id or str(event.get("id"))
            if key in self.ids:
                self.duplicate_ids += 1
            else:
                self.ids.add(key)
            if event_id is not None and str(event.get("id")) != event_id:
                self.id_mismatch += 1
            if event.get("kind") == "created":
                ticket = event.get("ticket")
                self.created_count[ticket] += 1
                self.created.setdefault(ticket, t)


class Reader:
    """One thread, one selector, every stream. Commands (register, close) run on the reader's thread."""

    def __init__(self) -> None:
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.commands: queue.Queue = queue.Queue()
        self.stopping = False
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="sse-reader", daemon=True)
        self.thread.start()

    def run(self, fn, timeout: float = 30.0) -> None:
        """Run `fn()` on the reader's thread and wait for it."""
        done = threading.Event()
        box: list = []

        def call() -> None:
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001
                box.append(exc)
            finally:
                done.set()

        self.commands.put(call)
        self.wake_w.send(b"x")
        if not done.wait(timeout):
            raise RuntimeError("the SSE reader thread did not answer")
        if box:
            raise box[0]

    def add(self, streams: list[Stream]) -> None:
        def register() -> None:
            for s in streams:
                s.sock.setblocking(False)
                self.sel.register(s.sock, selectors.EVENT_READ, s)

        self.run(register)

    def close(self, streams: list[Stream]) -> None:
        """Close from our side, as a browser tab that goes away (FIN; the reader has drained the socket)."""
        def close() -> None:
            for s in streams:
                self._drop(s)

        self.run(close)

    def _drop(self, s: Stream) -> None:
        try:
            self.sel.unregister(s.sock)
        except (KeyError, ValueError):
            pass
        try:
            s.sock.close()
        except OSError:
            pass

    def _run(self) -> None:
        try:
            while not self.stopping:
                for key, _ in self.sel.select(0.5):
                    if key.data is None:
                        try:
                            while self.wake_r.recv(4096):
                                pass
                        except BlockingIOError:
                            pass
                        while True:
                            try:
                                self.commands.get_nowait()()
                            except queue.Empty:
                                break
                        continue
                    s: Stream = key.data
                    try:
                        data = s.sock.recv(262144)
                    except BlockingIOError:
                        continue
                    except OSError as exc:
                        s.error = s.error or f"socket error: {exc!r}"
                        self._drop(s)
                        continue
                    t = time.monotonic()
                    if not data:
                        s.closed_at = t
                        self._drop(s)
                        continue
                    s.feed(data, t)
        except BaseException as exc:  # noqa: BLE001
            self.error = exc

    def stop(self) -> None:
        self.stopping = True
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass
        self.thread.join(5)
        for key in list(self.sel.get_map().values()):
            try:
                key.fileobj.close()
            except OSError:
                pass
        self.sel.close()
        self.wake_w.close()


def open_streams(reader: Reader, port: int, token: str, count: int, first: int,
                 timeout: float) -> tuple[list[Stream], float]:
    """Connect `count` streams, send each its request, and wait until every one has its response headers;
    returns the streams and the seconds from the first connect to the last headers."""
    request = (f"GET {STREAM_PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
               "Accept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: echo-bench-live/1\r\n\r\n"
               ).encode()
    streams: list[Stream] = []
    started = time.monotonic()
    batch: list[Stream] = []
    for k in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(request)
        batch.append(Stream(first + k, sock))
        if len(batch) == 50:
            reader.add(batch)
            streams += batch
            batch = []
    if batch:
        reader.add(batch)
        streams += batch
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reader.error is not None:
            raise RuntimeError(f"the SSE reader failed: {reader.error!r}")
        if all(s.headers_at is not None or s.error or s.closed_at for s in streams):
            break
        time.sleep(0.02)
    failed = [s for s in streams if s.error or s.headers_at is None or s.closed_at]
    if failed:
        s = failed[0]
        raise RuntimeError(f"{len(failed)} of {count} streams did not open (first: #{s.number}: "
                           f"{s.error or ('closed' if s.closed_at else 'no headers in time')}; body "
                           f"{bytes(s.text[:300])!r})")
    return streams, max(s.headers_at for s in streams) - started


# --------------------------------------------------------------------------------------------
# Webhooks: new tickets, each from its own sender
# --------------------------------------------------------------------------------------------

class Webhooks:
    def __init__(self, port: int, auth: str) -> None:
        self.port, self.auth = port, auth
        pset = payloads.build(400, 300, 7)
        self.templates = [t for t in pset.encoded() if t[0] == 0]  # new conversations only
        self.ids = payloads.RunIds()
        self.sent = 0
        self.numbers: list[str] = []  # every ticket this run created

    def body(self, i: int) -> bytes:
        raw = self.ids.body(self.templates[i % len(self.templates)], i)
        sender = json.loads(raw)["FromFull"]["Email"]
        local, domain = sender.split("@")
        unique = f"{local}.live{i}@{domain}"  # a distinct sender per webhook (Return-Path, From, SPF line)
        raw = raw.replace(sender.encode(), unique.encode())
        assert json.loads(raw)["FromFull"]["Email"] == unique
        return raw

    def post(self) -> tuple[str, float, float]:
        """POST one new ticket; (ticket number, seconds the request took, time.monotonic() at the complete 200)."""
        i = self.sent
        self.sent += 1
        body = self.body(i)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            t0 = time.monotonic()
            conn.request("POST", "/tickets/inbound", body=body,
                         headers={"Content-Type": "application/json", "Authorization": self.auth})
            response = conn.getresponse()
            data = response.read()
            done = time.monotonic()
        finally:
            conn.close()
        if response.status != 200:
            raise RuntimeError(f"webhook {i} answered {response.status}: {data[:300]!r}")
        answer = json.loads(data)
        if answer.get("status") != "created":
            raise RuntimeError(f"webhook {i} did not create a ticket: {answer}")
        self.numbers.append(answer["ticket_number"])
        return answer["ticket_number"], done - t0, done


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] if ordered else float("nan")


def wait_for(predicate, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def make_token(env: dict) -> str:
    from echo import create_app
    from echo.agents.service import create_token, ensure_agent
    from echo.extensions import db

    app = create_app({k: env[k] for k in env if k.startswith(("ECHO_", "DATABASE_URL", "REDIS_URL", "SESSION_KEY",
                                                               "POSTMARK_"))})
    with app.app_context():
        ensure_agent(AGENT_EMAIL, "Live Bench", "ops")
        _, raw = create_token(AGENT_EMAIL, "bench/live_events.py")
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return raw


class Run:
    def __init__(self, args, db: Database, redis_url: str, tmp: Path) -> None:
        from sqlalchemy.engine import make_url

        self.args, self.db, self.redis_url, self.tmp = args, db, redis_url, tmp
        self.pg_port = make_url(db.dsn).port or 5432
        self.redis_port = make_url(redis_url.replace("redis://", "postgresql://", 1)).port or 6379
        self.server: Server | None = None
        self.reader: Reader | None = None
        self.clients: list[Stream] = []
        self.result: dict = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpus": os.cpu_count(),
                             "args": {k: v for k, v in vars(args).items()}, "problems": []}

    def problem(self, text: str) -> None:
        log(f"PROBLEM: {text}")
        self.result["problems"].append(text)

    def sockets(self) -> Counter:
        return worker_sockets(self.worker, self.server.port, self.pg_port, self.redis_port)

    def drain(self, hooks: Webhooks, streams_left: int, dead_before: int) -> int:
        """After closing streams client-side: send webhooks (their tickets are not measured) until the worker
        has noticed every closed stream (it only does when a write to it fails). Returns how many it took."""
        sent = 0
        for _ in range(12):
            hooks.post()
            sent += 1
            time.sleep(0.4)
            kinds = self.sockets()
            if kinds["close_wait"] == 0 and kinds["dead"] <= dead_before and kinds["streams"] <= streams_left:
                return sent
        self.problem(f"the worker still holds closed streams after {sent} events: {dict(self.sockets())}")
        return sent

    def execute(self) -> None:
        args = self.args
        user, password = "postmark-live-bench", secrets.token_urlsafe(24)
        import base64

        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        postmark = SimpleNamespace(token="POSTMARK_API_TEST", url="http://127.0.0.1:9")  # no worker: nothing is sent
        env = echo_env(ROOT, self.db, self.redis_url, postmark, user, password, self.tmp)
        token = make_token(env)

        app, options = procfile_web()
        self.server = Server("echo-live", app, [], env, 1, self.tmp)
        self.server.cmd = gunicorn_bin() + [app, *options, "--bind", f"127.0.0.1:{self.server.port}", "--workers", "1"]
        self.result["gunicorn"] = " ".join(shlex.quote(c) for c in self.server.cmd[len(gunicorn_bin()):])
        self.server.start()
        self.worker = worker_pid(self.server)
        port = self.server.port
        dead_at_start = self.sockets()["dead"]
        self.reader = Reader()
        hooks = Webhooks(port, auth)

        # Warm-up: the hub starts with the first stream; the intake path loads on the first webhooks.
        log("warm-up: one stream, 3 webhooks")
        warm, _ = open_streams(self.reader, port, token, 1, -1, 30)
        warm_tickets = []
        for _ in range(3):
            warm_tickets.append(hooks.post()[0])
            time.sleep(0.1)
        if not wait_for(lambda: all(t in warm[0].created for t in warm_tickets), 15):
            self.problem(f"warm-up stream got {sorted(warm[0].created)} of {warm_tickets}")
        self.reader.close(warm)
        self.drain(hooks, 0, dead_at_start)
        if args.backlog:
            self.fill_backlog(args.backlog)
        time.sleep(2.0)

        # 0 streams.
        worker = self.worker
        base_sockets = self.sockets()
        rss0 = rss_kb(worker)
        c0, w0 = cpu_seconds([worker]), time.monotonic()
        time.sleep(args.base_seconds)
        base_cpu = cpu_seconds([worker]) - c0
        base_wall = time.monotonic() - w0
        rss0_end = rss_kb(worker)
        log(f"0 streams: RSS {rss0} KB, CPU {100 * base_cpu / base_wall:.2f} % of a core over {base_wall:.1f} s")

        idle_result: dict = {"streams": args.idle, "rss0_kb": rss0_end, "rss0_start_kb": rss0,
                             "cpu0_pct": round(100 * base_cpu / base_wall, 2), "cpu0_window_s": round(base_wall, 1),
                             "worker_sockets_0": dict(base_sockets)}
        idle: list[Stream] = []
        if args.idle:
            log(f"opening {args.idle} streams")
            idle, open_s = open_streams(self.reader, port, token, args.idle, 0, 60 + args.idle * 0.2)
            idle_result["open_s"] = round(open_s, 2)
            log(f"{args.idle} streams answered within {open_s:.2f} s; settling 1 s, then {args.idle_seconds} s idle")
            time.sleep(1.0)
            rss_start = rss_kb(worker)
            keep0 = sum(s.keepalives for s in idle)
            me0 = resource.getrusage(resource.RUSAGE_SELF)
            snap0 = cpu_snapshot()
            c0, w0 = cpu_seconds([worker]), time.monotonic()
            master0 = cpu_seconds([self.server.proc.pid])
            time.sleep(args.idle_seconds)
            cpu = cpu_seconds([worker]) - c0
            wall = time.monotonic() - w0
            master = cpu_seconds([self.server.proc.pid]) - master0
            snap1 = cpu_snapshot()
            me1 = resource.getrusage(resource.RUSAGE_SELF)
            busy = 100 * (snap1["busy"] - snap0["busy"]) / max(1, snap1["total"] - snap0["total"])
            client = (me1.ru_utime + me1.ru_stime) - (me0.ru_utime + me0.ru_stime)
            rss_n = rss_kb(worker)
            kinds = self.sockets()
            still_open = sum(1 for s in idle if s.open)
            idle_result.update({
                "rss_kb": rss_n, "rss_start_kb": rss_start,
                "kb_per_stream": round((rss_n - rss0_end) / args.idle, 1),
                "kb_per_stream_at_start": round((rss_start - rss0_end) / args.idle, 1),
                "cpu_s": round(cpu, 3), "window_s": round(wall, 2), "cpu_pct": round(100 * cpu / wall, 2),
                "master_cpu_pct": round(100 * master / wall, 2),
                "machine_busy_pct": round(busy, 1), "client_cpu_pct": round(100 * client / wall, 2),
                "keepalives": sum(s.keepalives for s in idle) - keep0,
                "still_open": still_open, "server_streams": kinds["streams"], "worker_sockets": dict(kinds),
            })
            if still_open != args.idle:
                bad = [s for s in idle if not s.open]
                self.problem(f"{args.idle - still_open} of {args.idle} idle streams closed (first: #{bad[0].number} "
                             f"{bad[0].error or ('server ended it' if bad[0].ended else 'EOF')})")
            if kinds["streams"] != args.idle:
                self.problem(f"the worker holds {kinds['streams']} established streams, not {args.idle}: {dict(kinds)}")
            log(f"idle: RSS {rss0_end} -> {rss_n} KB ({idle_result['kb_per_stream']} KB per stream), worker CPU "
                f"{idle_result['cpu_pct']} % of a core, {still_open}/{args.idle} open")
        self.result["idle"] = idle_result

        # Latency: `clients` streams (reusing idle ones), `events` webhooks.
        clients = idle[:args.clients]
        extra = idle[args.clients:]
        if extra:
            log(f"closing {len(extra)} streams, keeping {len(clients)}")
            self.reader.close(extra)
        if len(clients) < args.clients:
            more, _ = open_streams(self.reader, port, token, args.clients - len(clients), len(idle),
                                   60 + args.clients * 0.2)
            clients += more
            time.sleep(1.0)
        self.clients = clients
        flushed = self.drain(hooks, args.clients, dead_at_start)
        kinds = self.sockets()
        if kinds["streams"] != args.clients:
            self.problem(f"before the events the worker holds {kinds['streams']} streams, not {args.clients}")
        log(f"{flushed} unmeasured webhooks sent while the worker reaped the closed streams; now "
            f"{args.events} events to {len(clients)} clients, {args.interval * 1000:.0f} ms apart")
        sent: list[tuple[str, float, float]] = []
        c0, w0 = cpu_seconds([worker]), time.monotonic()
        start = time.monotonic()
        for i in range(args.events):
            delay = start + i * args.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent.append(hooks.post())
        numbers = [n for n, _, _ in sent]
        all_in = wait_for(lambda: all(n in s.created for s in clients for n in numbers), args.wait)
        delivered_at = time.monotonic()
        time.sleep(args.settle)  # time for duplicates to show up (longer than the hub's 2 s poll)
        cpu = cpu_seconds([worker]) - c0
        wall = time.monotonic() - w0
        if not all_in:
            log(f"not every event arrived within {args.wait} s")

        latencies, missing, duplicates = [], 0, 0
        per_event = []
        for number, _took, done in sent:
            arrivals = [s.created[number] - done for s in clients if number in s.created]
            missing += len(clients) - len(arrivals)
            duplicates += sum(max(0, s.created_count[number] - 1) for s in clients)
            latencies += arrivals
            if arrivals:
                per_event.append((min(arrivals), max(arrivals)))
        ours = set(hooks.numbers)  # measured, warm-up and unmeasured webhooks
        unexpected = sum(1 for s in clients for n in s.created_count if n not in ours)
        dup_ids = sum(s.duplicate_ids for s in clients)
        closed = [s for s in clients if not s.open]
        ms = [1000 * x for x in latencies]
        latency = {
            "clients": len(clients), "events": args.events, "pairs": len(clients) * args.events,
            "received": len(latencies), "missing": missing, "duplicates": duplicates, "duplicate_ids": dup_ids,
            "id_mismatch": sum(s.id_mismatch for s in clients), "bad_json": sum(s.bad_json for s in clients),
            "unexpected_created": unexpected, "closed_streams": len(closed), "unmeasured_webhooks": flushed,
            "p50_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1), "p99_ms": round(pct(ms, 99), 1),
            "max_ms": round(max(ms), 1) if ms else None, "min_ms": round(min(ms), 1) if ms else None,
            "mean_ms": round(statistics.fmean(ms), 1) if ms else None,
            "first_client_p50_ms": round(pct([1000 * a for a, _ in per_event], 50), 1),
            "last_client_p50_ms": round(pct([1000 * b for _, b in per_event], 50), 1),
            "last_client_max_ms": round(max(1000 * b for _, b in per_event), 1) if per_event else None,
            "webhook_p50_ms": round(pct([1000 * t for _, t, _ in sent], 50), 1),
            "webhook_max_ms": round(max(1000 * t for _, t, _ in sent), 1),
            "events_s": round(sent[-1][2] - sent[0][2], 2) if sent else 0.0,
            "worker_cpu_s": round(cpu, 3), "worker_cpu_ms_per_event": round(1000 * cpu / max(1, args.events), 1),
            "window_s": round(wall, 2), "delivered_after_last_s": round(delivered_at - sent[-1][2], 2) if sent else 0.0,
            "kinds": dict(sum((s.kinds for s in clients), Counter())),
            "exactly_once": missing == 0 and duplicates == 0 and dup_ids == 0 and not closed,
        }
        self.result["latency"] = latency
        if missing:
            self.problem(f"{missing} of {len(clients) * args.events} client x event pairs never arrived")
        if duplicates or dup_ids:
            self.problem(f"duplicates: {duplicates} repeated 'created' events, {dup_ids} repeated event ids")
        if closed:
            self.problem(f"{len(closed)} client streams closed during the latency phase")
        if worker_pid(self.server) != self.worker:
            self.problem("the gunicorn worker was replaced during the run (crash or timeout)")
        log(f"latency p50 {latency['p50_ms']} ms, p95 {latency['p95_ms']} ms, max {latency['max_ms']} ms; "
            f"{latency['received']}/{latency['pairs']} received, {duplicates} duplicates")

    def fill_backlog(self, rows: int) -> None:
        """`rows` ticket rows in the event log that no stream shows (an action no audience has), read by the hub
        into its memory (it keeps the last 5 000): each stream then scans them, as in a process that has run a while."""
        import psycopg
        from redis import Redis

        with psycopg.connect(self.db.dsn, autocommit=True) as conn:
            ticket = conn.execute("SELECT id::text FROM tickets ORDER BY created_at LIMIT 1").fetchone()[0]
            conn.execute("INSERT INTO audit_log (actor, action, target_type, target_id, payload) "
                         "SELECT 'system', 'bench.backlog', 'ticket', %s, '{}'::jsonb FROM generate_series(1, %s)",
                         (ticket, rows))
        Redis.from_url(self.redis_url).publish("echo:events", "1")
        log(f"backlog: {rows} event-log rows no audience sees, read by the hub")
        time.sleep(3.0)

    def close(self, observe: bool) -> None:
        """Stop gunicorn as a deploy does (SIGTERM) while the client streams are still connected; with
        `observe`, wait up to --stop-wait s and record when the streams ended and the master exited."""
        if self.server is not None and self.server.proc is not None:
            proc = self.server.proc
            live = [s for s in self.clients if s.open] if observe and self.reader is not None else []
            wait = self.args.stop_wait if live else 5.0
            term = time.monotonic()
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(wait)
                exited = round(time.monotonic() - term, 2)
            except Exception:  # noqa: BLE001  (TimeoutExpired)
                exited = None
            PROCS.stop(proc, timeout=1.0)  # SIGKILL to whatever is left of the group
            self.server.proc = None
            self.server.log_file.close()
            self.result["log"] = scan_log(self.server)
            if live:
                time.sleep(0.2)
                ended = sorted(s.closed_at - term for s in live if s.closed_at is not None)
                self.result["shutdown"] = {
                    "streams": len(live), "stop_wait_s": wait, "master_exited_s": exited,
                    "streams_ended": len(ended), "ended_first_s": round(ended[0], 2) if ended else None,
                    "ended_last_s": round(ended[-1], 2) if ended else None,
                    "clean_end": sum(1 for s in live if s.ended),  # the last chunk, not just a closed socket
                }
        if self.reader is not None:
            self.reader.stop()
            self.reader = None


def scan_log(server: Server) -> dict:
    try:
        lines = server.log_path.read_text(errors="replace").splitlines()
    except OSError:
        return {}
    markers = ("[ERROR]", "[CRITICAL]", "Traceback", " ERROR ", "ERROR:", "[WARNING]", " WARNING ", "WARNING:")
    flagged = [ln for ln in lines if any(m in ln for m in markers)]
    return {"lines": len(lines), "errors": sum(1 for ln in lines if any(m in ln for m in markers[:5])),
            "warnings": sum(1 for ln in lines if any(m in ln for m in markers[5:])),
            "tracebacks": sum(1 for ln in lines if "Traceback" in ln), "flagged": flagged[:12],
            "first_error": server.first_error(30)}


def report(result: dict) -> None:
    idle, lat = result.get("idle", {}), result.get("latency", {})
    print(f"\nEcho live events, {result['date']}, {result['cpus']} CPUs")
    print(f"gunicorn {result.get('gunicorn', '')}")
    print(f"\nIdle streams ({idle.get('streams', 0)} SSE connections to {STREAM_PATH}, "
          f"held {result['args']['idle_seconds']} s)")
    print(f"  worker RSS with 0 streams   {idle.get('rss0_kb', 0) / 1024:8.1f} MB  "
          f"(CPU {idle.get('cpu0_pct', 0):.2f} % of a core over {idle.get('cpu0_window_s', 0)} s)")
    if idle.get("streams"):
        print(f"  worker RSS with {idle['streams']:>4} streams {idle['rss_kb'] / 1024:8.1f} MB  "
              f"(right after they opened: {idle['rss_start_kb'] / 1024:.1f} MB)")
        print(f"  memory per idle connection  {idle['kb_per_stream']:8.1f} KB  "
              f"(right after opening: {idle['kb_per_stream_at_start']} KB)")
        print(f"  worker CPU while idle       {idle['cpu_pct']:8.2f} % of one core  "
              f"({idle['cpu_s']} s over {idle['window_s']} s; master {idle['master_cpu_pct']} %; "
              f"{idle['keepalives']} keep-alives received)")
        print(f"  opened in {idle['open_s']} s; still open at the end: {idle['still_open']}/{idle['streams']} "
              f"(client side), {idle['server_streams']} established on the worker; machine busy "
              f"{idle['machine_busy_pct']} % of all cores, this client {idle['client_cpu_pct']} % of a core")
    if lat:
        print(f"\nEvent latency ({lat['clients']} clients x {lat['events']} new-ticket webhooks, "
              f"{result['args']['interval'] * 1000:.0f} ms apart; webhook 200 -> the client's data: line)")
        print(f"  p50 {lat['p50_ms']} ms   p95 {lat['p95_ms']} ms   p99 {lat['p99_ms']} ms   max {lat['max_ms']} ms   "
              f"(min {lat['min_ms']}, mean {lat['mean_ms']})")
        print(f"  per event, median: first client {lat['first_client_p50_ms']} ms, "
              f"last client {lat['last_client_p50_ms']} ms (worst last client {lat['last_client_max_ms']} ms)")
        print(f"  webhooks: p50 {lat['webhook_p50_ms']} ms, max {lat['webhook_max_ms']} ms; worker CPU "
              f"{lat['worker_cpu_ms_per_event']} ms per event (intake + fan-out); "
              f"{lat['unmeasured_webhooks']} unmeasured webhooks before, while closed streams were reaped")
        verdict = "yes" if lat["exactly_once"] else "NO"
        print(f"  every client got every event exactly once: {verdict}  ({lat['received']}/{lat['pairs']} received, "
              f"{lat['missing']} missing, {lat['duplicates']} duplicated, {lat['duplicate_ids']} repeated ids, "
              f"{lat['closed_streams']} streams closed; kinds seen {lat['kinds']})")
    down = result.get("shutdown")
    if down:
        master = f"after {down['master_exited_s']} s" if down["master_exited_s"] is not None else \
            f"not within {down['stop_wait_s']} s (killed)"
        print(f"\nShutdown (SIGTERM with {down['streams']} streams connected): master exited {master}; "
              f"{down['streams_ended']} streams ended"
              + (f" after {down['ended_first_s']}-{down['ended_last_s']} s, {down['clean_end']} with the last chunk"
                 if down["streams_ended"] else ""))
    logsum = result.get("log", {})
    if logsum:
        print(f"\ngunicorn log: {logsum['lines']} lines, {logsum['errors']} errors, {logsum['warnings']} warnings, "
              f"{logsum['tracebacks']} tracebacks")
        for line in logsum["flagged"][:6]:
            print(f"  {line[:200]}")
    print(f"\nTargets: p95 latency {lat.get('p95_ms')} ms, memory per idle connection {idle.get('kb_per_stream')} KB, "
          f"idle CPU {idle.get('cpu_pct')} % of a core")
    if result["problems"]:
        print("\nProblems:")
        for p in result["problems"]:
            print(f"  * {p}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=500, help="idle SSE connections (default 500)")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="how long they sit idle (default 20)")
    parser.add_argument("--base-seconds", type=float, default=5.0, help="CPU window with 0 streams (default 5)")
    parser.add_argument("--clients", type=int, default=100, help="streams during the latency phase (default 100)")
    parser.add_argument("--events", type=int, default=50, help="new-ticket webhooks, one at a time (default 50)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between webhook starts (default 0.1)")
    parser.add_argument("--wait", type=float, default=15.0, help="seconds to wait for the last events (default 15)")
    parser.add_argument("--settle", type=float, default=2.5,
                        help="seconds to keep reading after everything arrived, for duplicates (default 2.5)")
    parser.add_argument("--backlog", type=int, default=0,
                        help="event-log rows for the hub's memory before measuring (it keeps 5000; default 0)")
    parser.add_argument("--stop-wait", type=float, default=35.0,
                        help="at the end, SIGTERM gunicorn with the clients connected and wait this long for it to "
                             "exit, reporting when the streams ended (gunicorn's graceful timeout is 30 s); 0: "
                             "don't observe, kill after 5 s (default 35)")
    parser.add_argument("--keep-logs", action="store_true", help="keep the temporary directory with gunicorn's log")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if args.events < 1 or args.clients < 1 or args.idle < 0:
        parser.error("--events and --clients must be at least 1, --idle at least 0")
    if max(args.idle, args.clients) > 990:
        parser.error("the Procfile's --worker-connections 1000 caps one worker at 1000 connections")

    from redis import Redis

    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://localhost:6379/12")
    rconn = Redis.from_url(redis_url)
    rconn.flushdb()
    db = Database(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@localhost/postgres"))
    tmp = Path(tempfile.mkdtemp(prefix="echo-live-events-"))
    run = Run(args, db, redis_url, tmp)
    status = 0
    try:
        log(f"creating and migrating {db.name}; Redis {redis_url} (flushed); logs in {tmp}")
        db.create()
        db.migrate()
        run.execute()
    except KeyboardInterrupt:
        log("interrupted")
        status = 130
    except Exception as exc:  # noqa: BLE001
        run.problem(f"the run failed: {exc!r}")
        status = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # let the cleanup finish
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            if status == 0 and args.stop_wait:
                log(f"SIGTERM to gunicorn with {len(run.clients)} streams connected; waiting up to {args.stop_wait} s")
            run.close(observe=status == 0 and args.stop_wait > 0)
        finally:
            db.drop()
            rconn.flushdb()
            if args.keep_logs:
                log(f"logs kept in {tmp}")
            else:
                shutil.rmtree(tmp, ignore_errors=True)
    if status == 130:
        return status
    if args.json:
        print(json.dumps(run.result, indent=2))
    else:
        report(run.result)
    if status == 0 and run.result["problems"]:
        status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
