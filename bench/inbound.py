#!/usr/bin/env python
"""Benchmark Echo's Postmark inbound webhook (POST /tickets/inbound) against a bare baseline.

    /work/venv/bin/python bench/inbound.py [--seconds 20] [--workers 5] [--json] [--profile 10]

One run: fresh database + Redis db -> Echo under gunicorn (as in the Procfile) -> load -> row
counts -> truncate -> baseline (bench/baseline_app.py, same gunicorn settings, same writes, no
logic) -> load -> row counts -> report against the targets -> drop the database. See README.md.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import http.client
import itertools
import json
import os
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import payloads  # noqa: E402  (bench/payloads.py)
from procs import children, cpu_seconds, free_port  # noqa: E402

TARGET_RPS = 600.0
TARGET_P99_MS = 40.0
TARGET_RATIO = 0.85
TABLES = ("customers", "tickets", "threads", "message_ids", "outbox", "audit_log")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Child processes: every one we start is recorded and its whole process group is ended on exit.
# --------------------------------------------------------------------------------------------

class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 20.0) -> None:
        """SIGTERM the process group (gunicorn finishes in-flight requests), then SIGKILL what is left."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # workers left behind by a master that died first
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc, timeout=10.0)


PROCS = Processes()
atexit.register(PROCS.stop_all)


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------------------------
# Services: PostgreSQL database and Redis
# --------------------------------------------------------------------------------------------

def admin_dsn_from(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def postgres_admin_url() -> str:
    import psycopg

    url = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url = "postgresql://" + url.split("://", 1)[1] if url.startswith(("postgres://", "postgresql+")) else url
    try:
        with psycopg.connect(admin_dsn_from(url), connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
        return admin_dsn_from(url)
    except Exception as exc:  # noqa: BLE001
        log(f"PostgreSQL at {url} unreachable ({str(exc).strip()[:120]}); starting Echo's embedded PostgreSQL")
    from echo import embedded

    return admin_dsn_from(embedded.start_postgres(BENCH / "instance-bench", "postgres"))


def redis_url() -> str:
    from redis import Redis

    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    try:
        Redis.from_url(url, socket_connect_timeout=2).ping()
        return url
    except Exception as exc:  # noqa: BLE001
        log(f"Redis at {url} unreachable ({exc}); starting Echo's embedded Redis")
    from echo import embedded

    return embedded.start_redis(BENCH / "instance-bench")


class Database:
    def __init__(self, admin_dsn: str) -> None:
        from sqlalchemy.engine import make_url

        self.admin = admin_dsn
        self.name = f"echo_bench_{uuid.uuid4().hex[:10]}"
        self.dsn = make_url(admin_dsn).set(database=self.name).render_as_string(hide_password=False)
        self.created = False

    def create(self, echo_src: Path | None = None) -> None:
        """Create the database and apply Echo's migrations (`echo.migrate.upgrade`).

        The migration runs in a child process so it uses the same Echo source tree as the
        server under test (--echo-src), not whatever this process imported.
        """
        import psycopg

        from echo.config import normalize_database_url

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.created = True
        code = "import sys; from echo import migrate; migrate.upgrade(sys.argv[1])"
        done = subprocess.run([sys.executable, "-c", code, normalize_database_url(self.dsn)], env=echo_env(echo_src),
                              cwd=str(echo_src or ROOT), capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"migration failed:\n{done.stderr[-3000:]}")

    def reset(self) -> None:
        """Empty every table Echo writes and restart the numbering, so both runs start alike."""
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE customers, tickets, threads, message_ids, outbox, audit_log, attachments, "
                         "agents, support_audit_log RESTART IDENTITY CASCADE")
            conn.execute("ALTER SEQUENCE ticket_number_seq RESTART")
            conn.execute("VACUUM ANALYZE")
            try:
                conn.execute("CHECKPOINT")  # don't let the previous run's WAL flush land in the next run
            except psycopg.Error:
                pass

    def counts(self) -> dict:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            out = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
            out["tickets_quarantined"] = conn.execute(
                "SELECT count(*) FROM tickets WHERE quarantined").fetchone()[0]
            out["threads_with_in_reply_to"] = conn.execute(
                "SELECT count(*) FROM threads WHERE in_reply_to IS NOT NULL").fetchone()[0]
        return out

    def drop(self) -> None:
        if not self.created:
            return
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.created = False


def echo_env(echo_src: Path | None, base: dict | None = None) -> dict:
    """The environment that makes `import echo` load from echo_src (default: the installed, editable tree)."""
    env = dict(os.environ if base is None else base)
    if echo_src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(echo_src), *filter(None, [env.get("PYTHONPATH")])])
    return env


# --------------------------------------------------------------------------------------------
# gunicorn
# --------------------------------------------------------------------------------------------

def gunicorn_bin() -> list[str]:
    script = Path(sys.executable).with_name("gunicorn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]


class Server:
    def __init__(self, name: str, app: str, extra: list[str], env: dict, workers: int, logdir: Path,
                 cwd: Path = ROOT) -> None:
        self.name, self.port, self.workers, self.cwd = name, free_port(), workers, cwd
        self.log_path = logdir / f"{name}-gunicorn.log"
        # As the Procfile starts it, minus the access log (off for the benchmark).
        self.cmd = gunicorn_bin() + [app, *extra, "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                                     "--forwarded-allow-ips", "*"]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log(f"starting {self.name}: {' '.join(self.cmd)}")
        self.log_file = open(self.log_path, "wb")
        self.proc = PROCS.start(self.cmd, env=self.env, cwd=str(self.cwd), stdout=self.log_file,
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer within 90 s:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/tickets/inbound")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                time.sleep(0.1)
        # The first answer comes from the first worker that finished importing; wait for all of them
        # (the whole process tree going quiet) so the warm-up doesn't overlap with app loading.
        pids, last = [self.proc.pid], None
        for _ in range(100):
            pids = [self.proc.pid] + children(self.proc.pid)
            cpu = cpu_seconds(pids)
            if last is not None and len(pids) > self.workers and cpu - last < 0.02:
                break
            last = cpu
            time.sleep(0.25)
        log(f"{self.name} answers on port {self.port} ({len(pids) - 1} workers)")

    def worker_pids(self) -> list[int]:
        return children(self.proc.pid) if self.proc else []

    def first_error(self, lines: int = 40) -> str:
        """The first logged error with its traceback (what a non-200 left in gunicorn's log), else ''."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        for at, line in enumerate(text):
            if "Traceback (most recent call last)" in line or " ERROR " in line or "[ERROR]" in line or \
                    line.startswith("ERROR"):
                end = at + 1
                while end < len(text) and end - at < lines and not text[end].startswith("["):
                    end += 1  # the traceback, up to the next log record
                return "\n".join(text[at:end])
        return ""

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            PROCS.stop(self.proc)
            self.proc = None
            self.log_file.close()


# --------------------------------------------------------------------------------------------
# CPU accounting: who used the two cores during the measured window
# --------------------------------------------------------------------------------------------

def cpu_snapshot() -> dict:
    """pid -> (command, parent pid, CPU ticks) for every process, plus the machine's busy/total ticks."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                raw = f.read()
        except OSError:
            continue
        comm = raw[raw.find("(") + 1:raw.rfind(")")]
        fields = raw.rsplit(")", 1)[1].split()
        procs[int(entry)] = (comm, int(fields[1]), int(fields[11]) + int(fields[12]))
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    idle = cpu[3] + cpu[4]
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"procs": procs, "busy": sum(cpu[:8]) - idle, "total": sum(cpu[:8]), "t": time.monotonic(),
            # the load client: this process (Python client) and reaped children (wrk, gone from /proc at the end)
            "client_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime}


def cpu_breakdown(before: dict, after: dict, server_pid: int) -> dict:
    """Share of the machine's CPU capacity used in the window, by role (in % of all cores)."""
    procs = after["procs"]

    def in_tree(pid: int) -> bool:
        for _ in range(20):
            if pid == server_pid:
                return True
            parent = procs.get(pid, ("", 0, 0))[1]
            if parent in (0, 1, pid):
                return False
            pid = parent
        return False

    hz = os.sysconf("SC_CLK_TCK")
    roles: Counter = Counter()
    roles["load client"] = round((after["client_s"] - before["client_s"]) * hz)
    for pid, (comm, _ppid, ticks) in procs.items():
        if pid == os.getpid():
            continue
        delta = ticks - before["procs"].get(pid, (comm, 0, 0))[2] if pid in before["procs"] else ticks
        if delta <= 0:
            continue
        if in_tree(pid):
            role = "app (gunicorn)"
        elif comm.startswith("postgres") or comm.startswith("postmaster"):
            role = "postgres"
        elif comm.startswith("redis"):
            role = "redis"
        else:
            role = "other processes"
        roles[role] += delta
    total = after["total"] - before["total"]
    busy = after["busy"] - before["busy"]
    out = {role: round(100.0 * ticks / total, 1) for role, ticks in roles.most_common()} if total else {}
    out["kernel/irq/unattributed"] = round(max(0.0, 100.0 * busy / total - sum(out.values())), 1) if total else 0.0
    out["idle"] = round(100.0 - 100.0 * busy / total, 1) if total else 0.0
    out["_cpu_seconds"] = {role: round(ticks / hz, 2) for role, ticks in roles.items()}
    return out


def busy_share(seconds: float = 1.0) -> float:
    """Percent of all cores busy right now (before a run: is something else loading the machine?)."""
    a = cpu_snapshot()
    time.sleep(seconds)
    b = cpu_snapshot()
    return round(100.0 * (b["busy"] - a["busy"]) / max(1, b["total"] - a["total"]), 1)


# --------------------------------------------------------------------------------------------
# Load generators: wrk (preferred, C, little CPU) or a Python thread pool
# --------------------------------------------------------------------------------------------

def find_wrk(allow_install: bool) -> str | None:
    path = shutil.which("wrk")
    if path or not allow_install:
        return path
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk not found; installing it with apt-get (Debian package 'wrk')")
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        ok = subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, **quiet).returncode == 0
        if not ok:
            subprocess.run(["apt-get", "update", "-q"], env=env, **quiet)
            subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, **quiet)
        path = shutil.which("wrk")
    if not path:
        log("wrk unavailable; falling back to the Python client")
    return path


class LoadResult(dict):
    pass


def run_wrk(wrk: str, port: int, template_file: Path, ids: payloads.RunIds, auth: str, offset: int,
            clients: int, threads: int, seconds: float, snapshots: list | None = None) -> LoadResult:
    cmd = [wrk, "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(BENCH / "inbound.lua"), f"http://127.0.0.1:{port}/tickets/inbound",
           "--", str(template_file), ids.tag, ids.pm_prefix, str(offset), auth, str(threads)]
    if snapshots is not None:
        snapshots.append(cpu_snapshot())
    proc = PROCS.start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
        if snapshots is not None:
            snapshots.append(cpu_snapshot())
    finally:
        PROCS.stop(proc)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
    data = json.loads(line[len("BENCH_JSON "):])
    seconds_measured = data["duration_us"] / 1e6
    socket_errors = data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"]
    return LoadResult(
        requests=data["requests"], non200=data["non200"], socket_errors=socket_errors,
        ok=data["requests"] - data["non200"], seconds=seconds_measured,
        rps=(data["requests"] - data["non200"]) / seconds_measured if seconds_measured else 0.0,
        p50_ms=data["p50_us"] / 1000, p95_ms=data["p95_us"] / 1000, p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000, mean_ms=data["mean_us"] / 1000,
        error_bodies=data["error_bodies"], next_offset=data["max_counter"] + threads,
    )


def run_python_client(port: int, encoded: list, ids: payloads.RunIds, auth: str, offset: int, clients: int,
                      warmup: float, seconds: float, snapshots: list | None = None) -> tuple[LoadResult, LoadResult]:
    """Keep-alive http.client connections in threads; one continuous run split into warm-up and window."""
    counter = itertools.count(offset)
    n = len(encoded)
    stop = threading.Event()
    headers = {"Content-Type": "application/json", "Authorization": auth}
    records: list[list] = [[] for _ in range(clients)]
    errors: list[str] = []

    def client(slot: int) -> None:
        out = records[slot]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            i = next(counter)
            body = ids.body(encoded[i % n], i)
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/tickets/inbound", body, headers)
                resp = conn.getresponse()
                data = resp.read()
                status = resp.status
                if resp.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException) as exc:
                status, data = 0, repr(exc).encode()
                conn.close()
            t1 = time.perf_counter()
            out.append((t1, t1 - t0, status))
            if status != 200 and len(errors) < 5:
                errors.append(f"{status} {data[:600].decode(errors='replace')}")
        conn.close()

    start = time.perf_counter()
    pool = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(clients)]
    for t in pool:
        t.start()
    try:
        time.sleep(warmup)
        if snapshots is not None:
            snapshots.append(cpu_snapshot())
        time.sleep(seconds)
        if snapshots is not None:
            snapshots.append(cpu_snapshot())
    finally:
        stop.set()
        for t in pool:
            t.join(30)
    window_start = start + warmup
    window_end = window_start + seconds

    def summarise(rows: list, span: float) -> LoadResult:
        lat = sorted(r[1] for r in rows)
        bad = sum(1 for r in rows if r[2] != 200)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else 0.0

        return LoadResult(
            requests=len(rows), non200=bad, socket_errors=sum(1 for r in rows if r[2] == 0), ok=len(rows) - bad,
            seconds=span, rps=(len(rows) - bad) / span if span else 0.0, p50_ms=pct(50), p95_ms=pct(95),
            p99_ms=pct(99), max_ms=lat[-1] * 1000 if lat else 0.0, mean_ms=sum(lat) / len(lat) * 1000 if lat else 0.0,
            error_bodies=list(errors), next_offset=next(counter),
        )

    every = [r for rs in records for r in rs]
    warm = summarise([r for r in every if r[0] < window_start], warmup)
    main = summarise([r for r in every if window_start <= r[0] < window_end], seconds)
    tail = [r for r in every if r[0] >= window_end]  # finished after the window: rows written, not counted
    main["after_window_ok"] = sum(1 for r in tail if r[2] == 200)
    return warm, main


# --------------------------------------------------------------------------------------------
# py-spy profile of the Echo workers (optional, separate from the measured window)
# --------------------------------------------------------------------------------------------

def ensure_py_spy() -> str | None:
    path = shutil.which("py-spy") or (str(Path(sys.executable).with_name("py-spy"))
                                       if Path(sys.executable).with_name("py-spy").exists() else None)
    if path:
        return path
    log("py-spy not found; installing it with pip")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], stdout=subprocess.DEVNULL)
    cand = Path(sys.executable).with_name("py-spy")
    return str(cand) if cand.exists() else None


def summarise_profile(raw_file: Path, top: int = 25) -> dict:
    """Self and inclusive sample shares per function from py-spy's collapsed-stack output."""
    self_c, incl_c, total = Counter(), Counter(), 0
    for line in raw_file.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [f for f in stack.split(";") if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += n
        names = []
        for frame in frames:
            # "func (path/to/file.py:123)" -> "func (file.py)", trimming site-packages prefixes
            name, _, where = frame.partition(" (")
            path = where.rstrip(")").rsplit(":", 1)[0]
            short = path.split("site-packages/")[-1].replace(str(ROOT) + "/", "")
            names.append(f"{name} ({short})")
        self_c[names[-1]] += n
        for name in set(names):
            incl_c[name] += n
    pct = (lambda c: round(100.0 * c / total, 1)) if total else (lambda c: 0.0)
    return {
        "samples": total,
        "self": [(name, pct(c)) for name, c in self_c.most_common(top)],
        "inclusive_echo": [(name, pct(c)) for name, c in incl_c.most_common()
                           if "echo/" in name and "(bench/" not in name][:top],
        "inclusive_all": [(name, pct(c)) for name, c in incl_c.most_common(top * 2)],
    }


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured duration per target (default 20)")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up before measuring (default 2)")
    parser.add_argument("--workers", type=int, default=5,
                        help="gunicorn workers (default 5, as the Procfile)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections (default 8)")
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto",
                        help="load generator: wrk (installed with apt-get if missing) or Python threads")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (default 1: leave CPU to the server)")
    parser.add_argument("--targets", default="echo,baseline", help="which to run, in order (default echo,baseline)")
    parser.add_argument("--templates", type=int, default=2000, help="distinct pre-built payloads (default 2000)")
    parser.add_argument("--customers", type=int, default=300, help="sender pool size (default 300)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--flood-limit", type=int, default=1_000_000,
                        help="ECHO_FLOOD_LIMIT for the run (default 1000000 so every new ticket takes the full "
                             "acknowledge path; 0 = Echo's own default of 10 per customer per 24 h)")
    parser.add_argument("--profile", type=float, default=0.0, metavar="SECONDS",
                        help="after Echo's measured window, load it SECONDS more under py-spy and list hot spots")
    parser.add_argument("--echo-src", type=Path, default=None, metavar="DIR",
                        help="run Echo (server and migrations) from this source tree instead of the installed one, "
                             "e.g. a `git archive HEAD` export while the working tree is mid-edit")
    parser.add_argument("--worker-class", default="sync",
                        help="Echo's gunicorn worker class (the Procfile's is gevent since the live event streams)")
    parser.add_argument("--baseline-worker-class", default="sync",
                        help="the baseline's (for the same gunicorn settings as Echo, pass the same class)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run the targets alternately this many times; the report takes each target's median "
                             "round and the median of the per-round ratios (this machine drifts; default 1)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    if not targets or set(targets) - {"echo", "baseline"}:
        parser.error("--targets takes echo and/or baseline")
    echo_src = args.echo_src.resolve() if args.echo_src else None
    if echo_src is not None and not (echo_src / "echo" / "__init__.py").exists():
        parser.error(f"--echo-src {echo_src} holds no echo/ package")

    signal.signal(signal.SIGTERM, _on_sigterm)

    log(f"building {args.templates} payload templates")
    pset = payloads.build(args.templates, args.customers, args.seed)
    encoded = pset.encoded()
    tmp = Path(tempfile.mkdtemp(prefix="echo-bench-"))
    template_file = tmp / "templates.txt"
    template_file.write_text(pset.to_wrk_lines(), encoding="utf-8")
    html_kb = sum(len(json.loads(payloads.RunIds().body(e, 0))["HtmlBody"].encode())
                  for e in encoded[:200]) / 200 / 1024

    wrk = find_wrk(allow_install=True) if args.client in ("auto", "wrk") else None
    if args.client == "wrk" and not wrk:
        log("--client wrk requested but wrk is unavailable")
        return 1
    client_name = "wrk" if wrk else "python"

    user, password = "postmark-bench", secrets.token_urlsafe(24)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    db: Database | None = None
    results: dict = {}
    profile: dict | None = None
    try:
        admin = postgres_admin_url()
        redis = redis_url()
        from redis import Redis
        from rq import Queue

        rconn = Redis.from_url(redis)
        rconn.flushdb()
        db = Database(admin)
        log(f"creating and migrating database {db.name}")
        db.create(echo_src)

        common = dict(os.environ)
        for var in ("WEB_CONCURRENCY", "PORT", "DATABASE_URL", "REDIS_URL"):
            common.pop(var, None)
        common.update({
            "ECHO_ENV": "development", "ECHO_SECRET_KEY": secrets.token_hex(32), "SESSION_KEY": secrets.token_hex(32),
            "ECHO_WEBHOOK_USER": user, "ECHO_WEBHOOK_PASSWORD": password, "ECHO_SUPPORT_ADDRESS": "support@raxx.app",
            "ECHO_INSTANCE_PATH": str(tmp / "instance"), "PYTHONUNBUFFERED": "1",
        })
        if args.flood_limit:
            common["ECHO_FLOOD_LIMIT"] = str(args.flood_limit)

        rounds: dict[str, list] = {name: [] for name in targets}
        for round_no, name in enumerate(targets * max(1, args.rounds)):
            db.reset()
            rconn.flushdb()
            ids = payloads.RunIds()
            if name == "echo":
                env = echo_env(echo_src, dict(common, DATABASE_URL=db.dsn, REDIS_URL=redis))
                worker_class = ["--worker-class", args.worker_class] if args.worker_class != "sync" else []
                server = Server("echo", "echo.wsgi:app", worker_class, env, args.workers, tmp, echo_src or ROOT)
            else:
                env = dict(common, BASELINE_DATABASE_URL=db.dsn, BASELINE_REDIS_URL=redis)
                base_class = (["--worker-class", args.baseline_worker_class]
                              if args.baseline_worker_class != "sync" else [])
                server = Server("baseline", "baseline_app:app", ["--pythonpath", str(BENCH), *base_class], env,
                                args.workers, tmp)
            busy = busy_share(1.0)
            if busy > 15:
                log(f"warning: {busy}% of the CPUs were busy before starting {name} (other processes?); "
                    "numbers will be noisy")
            server.start()
            snaps: list = []
            try:
                log(f"{name}: warm-up {args.warmup:g} s, then {args.seconds:g} s measured, "
                    f"{args.clients} clients ({client_name})")
                if wrk:
                    warm = run_wrk(wrk, server.port, template_file, ids, auth, 0, args.clients, args.wrk_threads,
                                   args.warmup)
                    main_r = run_wrk(wrk, server.port, template_file, ids, auth, warm["next_offset"], args.clients,
                                     args.wrk_threads, args.seconds, snaps)
                else:
                    warm, main_r = run_python_client(server.port, encoded, ids, auth, 0, args.clients, args.warmup,
                                                     args.seconds, snaps)
                cpu = cpu_breakdown(snaps[0], snaps[1], server.proc.pid)
                ok_total = warm["ok"] + main_r["ok"] + main_r.get("after_window_ok", 0)
                phases = 2
                if name == "echo" and args.profile > 0:
                    profile = run_profile(server, wrk, template_file, encoded, ids, auth, main_r["next_offset"],
                                          args, tmp)
                    ok_total += profile.pop("ok", 0)
                    phases += 1
            finally:
                server.stop()
            log_excerpt = server.first_error() or server.log_tail(15)
            counts = db.counts()
            counts["rq_jobs_mail"] = Queue("mail", connection=rconn).count
            result = dict(main_r)
            result.pop("next_offset", None)
            window = snaps[1]["t"] - snaps[0]["t"]
            per_request = {role: round(1000.0 * sec / max(1, main_r["requests"]), 2)
                           for role, sec in cpu.pop("_cpu_seconds").items()}
            result.update(cpu_busy_before_pct=busy, cpu_pct_of_machine=cpu, cpu_ms_per_request=per_request,
                          cpu_window_s=round(window, 1))
            result.update(warmup_requests=warm["requests"], warmup_non200=warm["non200"], ok_total=ok_total,
                          rows=counts, row_check=check_rows(name, counts, ok_total, args.clients * phases))
            if result["non200"] or warm["non200"]:
                result["error_bodies"] = (result.get("error_bodies") or []) + (warm.get("error_bodies") or [])
                result["gunicorn_log_excerpt"] = log_excerpt
            rounds[name].append(result)
            log(f"{name} (round {round_no // len(targets) + 1}): {result['rps']:.1f} req/s, "
                f"p99 {result['p99_ms']:.1f} ms, non-200 {result['non200']}")
        results.update(median_rounds(rounds))
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        PROCS.stop_all()
        if db is not None:
            try:
                db.drop()
                log(f"dropped database {db.name}")
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop database {db.name}: {exc}")
        shutil.rmtree(tmp, ignore_errors=True)

    report = build_report(args, results, client_name, pset, html_kb, profile)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def median_rounds(rounds: dict[str, list]) -> dict:
    """Each target's median round by throughput (all rounds' req/s kept alongside), and the
    per-round Echo/baseline ratios: rounds run alternately, so each pair shares the machine's state."""
    out = {}
    for name, runs in rounds.items():
        if not runs:
            continue
        ordered = sorted(runs, key=lambda r: r["rps"])
        median = dict(ordered[(len(ordered) - 1) // 2])
        median["rounds_rps"] = [round(r["rps"], 1) for r in runs]
        out[name] = median
    if rounds.get("echo") and rounds.get("baseline"):
        out["echo"]["rounds_ratio"] = [round(e["rps"] / b["rps"], 3)
                                       for e, b in zip(rounds["echo"], rounds["baseline"], strict=False) if b["rps"]]
    return out


def run_profile(server: Server, wrk, template_file, encoded, ids, auth, offset, args, tmp: Path) -> dict:
    spy = ensure_py_spy()
    if not spy:
        log("py-spy unavailable; skipping the profile")
        return {"error": "py-spy unavailable"}
    out = tmp / "profile.txt"
    seconds = max(1, round(args.profile))
    log(f"echo: profiling all workers with py-spy for {seconds} s (not part of the measured numbers)")
    cmd = [spy, "record", "--pid", str(server.proc.pid), "--subprocesses", "--rate", "250", "--duration",
           str(seconds + 1), "--format", "raw", "--output", str(out), "--nonblocking"]
    spy_proc = PROCS.start(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.0)
    if wrk:
        load = run_wrk(wrk, server.port, template_file, ids, auth, offset, args.clients, args.wrk_threads, seconds)
    else:
        _, load = run_python_client(server.port, encoded, ids, auth, offset, args.clients, 0.0, seconds)
        load["ok"] += load.get("after_window_ok", 0)
    try:
        spy_proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    PROCS.stop(spy_proc)
    if not out.exists():
        err = spy_proc.stderr.read().decode(errors="replace") if spy_proc.stderr else ""
        return {"error": f"py-spy produced no output: {err[-500:]}", "ok": load["ok"]}
    summary = summarise_profile(out)
    summary.update(ok=load["ok"], rps_while_profiled=round(load["rps"], 1))
    return summary


def check_rows(name: str, rows: dict, ok_total: int, slack: int) -> dict:
    """Did every 200 really write its rows? (Requests still in flight when a load phase stopped may add a few.)"""
    threads = rows["threads"]
    problems = []
    if not (ok_total <= threads <= ok_total + slack):
        problems.append(f"threads={threads} but {ok_total} responses were 200 (allowed in-flight slack {slack})")
    if rows["audit_log"] != threads:
        problems.append(f"audit_log={rows['audit_log']} != threads={threads}")
    if rows["outbox"] != rows["rq_jobs_mail"]:
        problems.append(f"outbox={rows['outbox']} != rq jobs on 'mail'={rows['rq_jobs_mail']}")
    if rows["message_ids"] != threads + rows["outbox"]:
        problems.append(f"message_ids={rows['message_ids']} != threads + outbox={threads + rows['outbox']}")
    if name == "baseline":
        if not (rows["tickets"] == rows["outbox"] == threads):
            problems.append(f"baseline: tickets={rows['tickets']} outbox={rows['outbox']} threads={threads} differ")
    else:
        acknowledged = rows["tickets"] - rows["tickets_quarantined"]
        if rows["outbox"] != acknowledged:
            problems.append(f"echo: outbox={rows['outbox']} but {acknowledged} unquarantined new tickets")
    return {"ok": not problems, "problems": problems, "in_flight_extra_rows": threads - ok_total}


def build_report(args, results: dict, client_name: str, pset, html_kb: float, profile) -> dict:
    report = {
        "config": {
            "seconds": args.seconds, "warmup": args.warmup, "workers": args.workers, "clients": args.clients,
            "client": client_name, "templates": len(pset.templates), "customers": args.customers,
            "reply_share": round(pset.replies / len(pset.templates), 3),
            "mean_payload_kb": round(pset.mean_bytes / 1024, 1), "mean_html_kb": round(html_kb, 1),
            "flood_limit": args.flood_limit or "echo default", "cpus": os.cpu_count(),
            "echo_src": str(args.echo_src.resolve()) if args.echo_src else str(ROOT),
        },
        "results": results,
    }
    echo, base = results.get("echo"), results.get("baseline")
    if echo:
        ratio = echo["rps"] / base["rps"] if base and base["rps"] else None
        if len(echo.get("rounds_ratio") or []) > 1:
            ratio = statistics.median(echo["rounds_ratio"])
        report["ratio_echo_to_baseline"] = round(ratio, 3) if ratio is not None else None
        report["targets"] = {
            "throughput_rps": {"target": f">= {TARGET_RPS:g}", "value": round(echo["rps"], 1),
                               "met": echo["rps"] >= TARGET_RPS},
            "p99_ms": {"target": f"< {TARGET_P99_MS:g}", "value": round(echo["p99_ms"], 1),
                       "met": echo["p99_ms"] < TARGET_P99_MS},
            "vs_baseline": {"target": f">= {TARGET_RATIO}", "value": round(ratio, 3) if ratio is not None else None,
                            "met": (ratio >= TARGET_RATIO) if ratio is not None else None},
            "no_errors": {"target": "0 non-200", "value": echo["non200"] + echo["warmup_non200"],
                          "met": echo["non200"] + echo["warmup_non200"] == 0},
        }
    if profile is not None:
        report["profile"] = profile
    return report


def print_report(report: dict) -> None:
    c = report["config"]
    print()
    print(f"Echo inbound webhook benchmark: gunicorn sync x{c['workers']} workers, {c['clients']} clients "
          f"({c['client']}),"
          f" {c['seconds']:g} s measured after {c['warmup']:g} s warm-up, {c['cpus']} CPUs")
    print(f"Payloads: {c['templates']} templates, mean {c['mean_payload_kb']} KB JSON "
          f"(HtmlBody {c['mean_html_kb']} KB),"
          f" {c['reply_share']:.0%} replies via In-Reply-To, {c['customers']} customers,"
          f" ECHO_FLOOD_LIMIT={c['flood_limit']}")
    print(f"Echo source: {c['echo_src']}")
    print()
    print(f"{'':10} {'requests':>9} {'non-200':>8} {'sock.err':>8} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8}"
          f" {'p99 ms':>8} {'max ms':>8}")
    for name, r in report["results"].items():
        print(f"{name:10} {r['requests']:>9} {r['non200']:>8} {r['socket_errors']:>8} {r['rps']:>8.1f}"
              f" {r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f}")
    print()
    print("CPU during the measured window, % of all cores (and CPU ms per request):")
    for name, r in report["results"].items():
        shares = ", ".join(
            f"{role} {pct:.0f}%"
            + (f" ({r['cpu_ms_per_request'][role]:.1f} ms)" if role in r["cpu_ms_per_request"] else "")
            for role, pct in r["cpu_pct_of_machine"].items())
        note = f"  [busy before start: {r['cpu_busy_before_pct']:.0f}%]" if r["cpu_busy_before_pct"] > 15 else ""
        print(f"  {name:9} {shares}{note}")
    print()
    for name, r in report["results"].items():
        rows = r["rows"]
        print(f"Rows written by {name} (warm-up + measured): " + ", ".join(
            f"{t}={rows[t]}" for t in (*TABLES, "rq_jobs_mail")))
        extra = f"; tickets quarantined={rows['tickets_quarantined']}, threads with In-Reply-To=" \
                f"{rows['threads_with_in_reply_to']}, replies threaded onto an earlier ticket=" \
                f"{rows['threads'] - rows['tickets']}" if name == "echo" else ""
        check = r["row_check"]
        verdict = "OK" if check["ok"] else "MISMATCH: " + "; ".join(check["problems"])
        print(f"  check: {r['ok_total']} responses were 200, rows match ({verdict}; "
              f"+{check['in_flight_extra_rows']} rows from requests in flight at a phase end){extra}")
        if r["non200"] or r["warmup_non200"]:
            print(f"  {name} returned {r['non200']} non-200 responses in the window ({r['warmup_non200']} in warm-up);"
                  " first error bodies:")
            for body in (r.get("error_bodies") or [])[:5]:
                print(f"    {body.strip()[:400]}")
            if r.get("gunicorn_log_excerpt"):
                print(f"  {name}'s gunicorn log (first error, else the tail):\n    "
                      + r["gunicorn_log_excerpt"].replace("\n", "\n    "))
    print()
    if "targets" in report:
        ratio = report["ratio_echo_to_baseline"]
        if ratio is not None:
            print(f"Echo / baseline throughput: {ratio:.3f}")
        echo = report["results"].get("echo") or {}
        if len(echo.get("rounds_rps") or []) > 1:
            base = report["results"].get("baseline") or {}
            print(f"  rounds (run alternately; the table shows each target's median round): echo req/s "
                  f"{echo['rounds_rps']}, baseline req/s {base.get('rounds_rps')}, ratios {echo.get('rounds_ratio')}"
                  f" (median {ratio:.3f})")
        t = report["targets"]

        def mark(m):
            return "n/a (baseline not run)" if m is None else ("met" if m else "NOT MET")

        vs = t["vs_baseline"]["value"]
        print(f"Targets: >= {TARGET_RPS:g} emails/s: {t['throughput_rps']['value']:.1f} "
              f"{mark(t['throughput_rps']['met'])}"
              f" | p99 < {TARGET_P99_MS:g} ms: {t['p99_ms']['value']:.1f} ms {mark(t['p99_ms']['met'])}"
              f" | >= {TARGET_RATIO} x baseline: {'-' if vs is None else f'{vs:.3f}'} {mark(t['vs_baseline']['met'])}"
              f" | errors: {t['no_errors']['value']} {mark(t['no_errors']['met'])}")
    prof = report.get("profile")
    if prof and "self" in prof:
        print()
        print(f"py-spy profile of Echo's workers ({prof['samples']} samples; {prof['rps_while_profiled']} req/s while"
              " profiled, not comparable)")
        print("  (wall-clock samples of busy workers: on a saturated machine, time spent waiting for a CPU after a"
              " socket\n   send lands on psycopg send/wait; bench/profile_inbound.py gives a cleaner CPU split)")
        print("  top self time:")
        for name, pct in prof["self"][:15]:
            print(f"    {pct:5.1f}%  {name}")
        print("  top inclusive time in echo/:")
        for name, pct in prof["inclusive_echo"][:15]:
            print(f"    {pct:5.1f}%  {name}")
    elif prof:
        print(f"\nprofile: {prof.get('error')}")


if __name__ == "__main__":
    sys.exit(main())
