#!/usr/bin/env python
"""CPU per email: the worker delivering outbound mail beside the web process taking mail in.

    python bench/worker_cpu.py [--emails 400] [--rounds 2] [--modes warm,fork] [--json]

One round per mode: fresh tables -> gunicorn (as in the Procfile, one sync worker) takes
`--emails` realistic Postmark webhooks (bench/payloads.py), each new ticket queueing its
acknowledgement -> gunicorn stops -> the worker delivers those acknowledgements through the real
postmarker client to a local Postmark stand-in (tests/fakes/postmark.py). CPU is read from /proc
for each whole process tree (user + system, with reaped children's, so a forking worker's work
horses count). Modes: `warm` is `echo-desk worker` as the Procfile runs it; `fork` is the worker
Echo had before (rq's forking `Worker`, one work horse per job). See README.md.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import payloads  # noqa: E402  (bench/payloads.py)
from benchdb import Database  # noqa: E402
from procs import free_port  # noqa: E402

TARGET_RATIO = 1.5
WARMUP_WEBHOOKS = 40
WARMUP_DELIVERIES = 20

# The worker Echo had before: rq's default Worker forks a work horse for every job.
FORKING_WORKER = """
from rq import Worker
from echo import create_app
from echo.jobs import QUEUES, redis_connection
app = create_app()
with app.app_context():
    Worker(list(QUEUES), connection=redis_connection()).work(logging_level="INFO")
"""


def log(msg: str) -> None:
    print(f"[worker_cpu {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tree_cpu(root: int) -> float:
    """CPU seconds used by `root` and its live descendants, including children they have reaped."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]))  # utime stime cutime cstime
    tree, grew = {root}, True
    while grew:
        kids = {pid for pid, (ppid, _) in stats.items() if ppid in tree} - tree
        tree |= kids
        grew = bool(kids)
    return sum(stats[pid][1] for pid in tree if pid in stats) / os.sysconf("SC_CLK_TCK")


def wait_quiet(pid: int, timeout: float = 60.0) -> None:
    """Wait until a freshly started process tree has finished loading (its CPU stops moving)."""
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        cpu = tree_cpu(pid)
        if last is not None and cpu - last < 0.01:
            return
        last = cpu
        time.sleep(0.5)


class Tree:
    """A child process in its own process group, ended with the whole group."""

    def __init__(self, cmd: list[str], env: dict, logfile: Path) -> None:
        self.out = open(logfile, "ab")
        self.proc = subprocess.Popen(cmd, env=env, cwd=env["PYTHONPATH"].split(os.pathsep)[0], stdout=self.out,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(5)
        self.out.close()


def intake(env: dict, emails: int, encoded: list, auth: str, tmp: Path, *, pace: float = 0.0,
           measuring=None) -> dict:
    """POST the webhooks to gunicorn one at a time; CPU of the gunicorn tree over the measured ones.

    `pace`: seconds between measured posts. `measuring`: called as the measured posts begin."""
    port = free_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    web = Tree([gunicorn, "echo.wsgi:app", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                "--forwarded-allow-ips", "*"], env, tmp / "gunicorn.log")
    try:
        ids = payloads.RunIds()
        headers = {"Content-Type": "application/json", "Authorization": auth}

        def post(i: int) -> None:
            for _ in range(600):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    conn.request("POST", "/tickets/inbound", body=ids.body(encoded[i % len(encoded)], i),
                                 headers=headers)
                    response = conn.getresponse()
                    body = response.read()
                    conn.close()
                    break
                except ConnectionRefusedError:
                    time.sleep(0.1)  # still starting
            else:
                raise RuntimeError(f"gunicorn never answered; see {tmp}/gunicorn.log")
            if response.status != 200:
                raise RuntimeError(f"webhook answered {response.status}: {body[:300]!r}")

        post(0)
        wait_quiet(web.proc.pid)
        for i in range(1, WARMUP_WEBHOOKS):
            post(i)
        if measuring is not None:
            measuring()
        before, started = tree_cpu(web.proc.pid), time.monotonic()
        for i in range(WARMUP_WEBHOOKS, WARMUP_WEBHOOKS + emails):
            post(i)
            if pace:
                time.sleep(pace)
        cpu, wall = tree_cpu(web.proc.pid) - before, time.monotonic() - started
    finally:
        web.stop()
    return {"emails": emails, "cpu_s": round(cpu, 3), "cpu_ms_per_email": round(1000 * cpu / emails, 2),
            "wall_s": round(wall, 2)}


def outbox_counts(db: Database) -> tuple[int, int]:
    """(sent rows, all rows) of the outbox."""
    import psycopg

    with psycopg.connect(db.dsn, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FILTER (WHERE state = 'sent'), count(*) FROM outbox").fetchone()


def start_worker(mode: str, env: dict, rconn, tmp: Path) -> Tree:
    """Start a worker and wait until it has loaded; the clock's periodic jobs are kept out (its sweeper
    would re-enqueue every due row)."""
    for name in ("echo.mail.tasks.sweep_outbox", "echo.tickets.tasks.auto_close", "echo.privacy.tasks.retention"):
        rconn.set(f"echo:clock:{name}", "1", ex=3600)
    cmd = [sys.executable, "-c", FORKING_WORKER] if mode == "fork" else [sys.executable, "-m", "echo.cli", "worker"]
    worker = Tree(cmd, env, tmp / f"worker-{mode}.log")
    time.sleep(1.0)
    wait_quiet(worker.proc.pid)
    if worker.proc.poll() is not None:
        worker.stop()
        raise RuntimeError(f"{mode} worker exited with {worker.proc.returncode}; see {tmp}/worker-{mode}.log")
    return worker


def exactly_once(db: Database, fake) -> dict:
    """Every `sent` row matches one Postmark request, and no outbox id was sent twice."""
    sent_rows, _ = outbox_counts(db)
    outbox_ids = [r.get("Metadata", {}).get("echo_outbox_id") for r in list(fake.requests)]
    duplicates = len(outbox_ids) - len(set(outbox_ids))
    return {"postmark_requests": len(outbox_ids), "sent_rows": sent_rows, "duplicates": duplicates,
            "exactly_once": duplicates == 0 and len(outbox_ids) == sent_rows}


def live(env: dict, db: Database, rconn, fake, emails: int, encoded: list, auth: str, tmp: Path,
         pace: float) -> tuple[dict, dict]:
    """The worker runs while mail arrives (`pace` seconds apart), so each email's job usually finds it
    alone: CPU of the worker tree from the first measured webhook until all their emails are sent."""
    worker = start_worker("live", env, rconn, tmp)
    try:
        start: dict = {}

        def measuring() -> None:
            deadline = time.monotonic() + 30
            while outbox_counts(db)[0] < outbox_counts(db)[1] and time.monotonic() < deadline:
                time.sleep(0.05)  # the warm-up's emails are out
            start.update(cpu=tree_cpu(worker.proc.pid), sent=outbox_counts(db)[0], at=time.monotonic())

        web = intake(env, emails, encoded, auth, tmp, pace=pace, measuring=measuring)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            sent, total = outbox_counts(db)
            if sent >= total:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"live worker delivered {sent} of {total} in time; see {tmp}/worker-live.log")
        cpu, wall = tree_cpu(worker.proc.pid) - start["cpu"], time.monotonic() - start["at"]
    finally:
        worker.stop()
    delivered = sent - start["sent"]
    work = {"mode": "live", "emails": delivered, "cpu_s": round(cpu, 3),
            "cpu_ms_per_email": round(1000 * cpu / delivered, 2), "wall_s": round(wall, 2), **exactly_once(db, fake)}
    return web, work


def deliver(mode: str, env: dict, db: Database, rconn, fake, limit: int | None, tmp: Path) -> dict:
    """Start a worker (held back by rq's suspension until it is loaded), then time its deliveries."""
    from rq.suspension import resume, suspend

    def counts() -> tuple[int, int]:
        return outbox_counts(db)

    _, total = counts()
    goal = total if limit is None else min(total, WARMUP_DELIVERIES + limit)
    suspend(rconn)
    try:
        worker = start_worker(mode, env, rconn, tmp)
    except BaseException:
        resume(rconn)
        raise
    try:
        resume(rconn)
        deadline = time.monotonic() + 60 + goal * (1.0 if mode == "fork" else 0.1)
        start = None
        while time.monotonic() < deadline:
            sent, _ = counts()
            if start is None and sent >= min(WARMUP_DELIVERIES, goal - 1):
                start = (tree_cpu(worker.proc.pid), sent, time.monotonic())
            if sent >= goal:
                end = (tree_cpu(worker.proc.pid), sent, time.monotonic())
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{mode} worker delivered {sent} of {goal} in time; see {tmp}/worker-{mode}.log")
    finally:
        worker.stop()
        resume(rconn)
    delivered = end[1] - start[1]
    cpu = end[0] - start[0]
    return {"mode": mode, "emails": delivered, "cpu_s": round(cpu, 3),
            "cpu_ms_per_email": round(1000 * cpu / delivered, 2), "wall_s": round(end[2] - start[2], 2),
            **exactly_once(db, fake)}  # after the worker stopped: the job it was finishing is in


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--emails", type=int, default=400, help="measured webhooks per round (default 400)")
    parser.add_argument("--fork-emails", type=int, default=60,
                        help="measured deliveries of the forking worker (slow: 0.1-0.2 s each; default 60)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds; the modes alternate within each (default 2)")
    parser.add_argument("--modes", default="warm,fork",
                        help="warm (echo-desk worker, after the intake), live (echo-desk worker during a paced "
                             "intake) and/or fork (the old worker, after the intake)")
    parser.add_argument("--pace", type=float, default=0.03,
                        help="live mode: seconds between measured webhooks, so the worker keeps up (default 0.03)")
    parser.add_argument("--echo-src", type=Path, default=ROOT, metavar="DIR",
                        help="run Echo from this source tree, e.g. a `git archive HEAD` export while the working "
                             "tree is mid-edit (default: this checkout)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    src = args.echo_src.resolve()
    if not (src / "echo" / "__init__.py").exists():
        parser.error(f"--echo-src {src} holds no echo/ package")
    sys.path.insert(1, str(src))  # echo (migrations) and tests.fakes.postmark from the tree under test
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not modes or set(modes) - {"warm", "live", "fork"}:
        parser.error("--modes takes warm, live and/or fork")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))

    import logging

    from redis import Redis

    from tests.fakes.postmark import FakePostmark

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the Postmark stand-in's request log

    pset = payloads.build(2000, 300, 1)
    encoded = pset.encoded()
    tmp = Path(tempfile.mkdtemp(prefix="echo-worker-cpu-"))
    user, password = "postmark-bench", secrets.token_urlsafe(24)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://localhost:6379/3")
    rconn = Redis.from_url(redis_url)
    fake = FakePostmark()
    fake.start()
    db = Database(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@localhost/postgres"))
    rows = []
    try:
        log(f"creating and migrating database {db.name}; Redis {redis_url} (flushed each round); logs in {tmp}")
        db.create()
        db.migrate()
        env = echo_env(src, db, redis_url, fake, user, password, tmp)
        for round_no in range(1, args.rounds + 1):
            for mode in modes:
                reset(db)
                rconn.flushdb()
                fake.reset()
                if mode == "live":
                    web, work = live(env, db, rconn, fake, args.emails, encoded, auth, tmp, args.pace)
                else:
                    web = intake(env, args.emails, encoded, auth, tmp)
                    work = deliver(mode, env, db, rconn, fake, args.fork_emails if mode == "fork" else None, tmp)
                row = {"round": round_no, "mode": mode, "intake": web, "worker": work,
                       "ratio": round(work["cpu_ms_per_email"] / web["cpu_ms_per_email"], 2)}
                rows.append(row)
                log(f"round {round_no} {mode}: intake {web['cpu_ms_per_email']} ms/email, worker "
                    f"{work['cpu_ms_per_email']} ms/email ({work['emails']} delivered), ratio {row['ratio']}")
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        fake.stop()
        db.drop()
        rconn.flushdb()  # the clock's slots and the jobs' keys would outlive the run by an hour
    report(rows, args)
    return 0


def echo_env(src: Path, db: Database, redis_url: str, fake, user: str, password: str, tmp: Path) -> dict:
    """The environment Echo's processes run with in a benchmark: Echo from `src`, fresh secrets."""
    env = dict(os.environ)
    for var in ("WEB_CONCURRENCY", "PORT"):
        env.pop(var, None)
    env.update({
        "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "ECHO_ENV": "development", "ECHO_SECRET_KEY": secrets.token_hex(32), "SESSION_KEY": secrets.token_hex(32),
        "DATABASE_URL": db.dsn, "REDIS_URL": redis_url,
        "ECHO_WEBHOOK_USER": user, "ECHO_WEBHOOK_PASSWORD": password, "ECHO_SUPPORT_ADDRESS": "support@raxx.app",
        "POSTMARK_SERVER_TOKEN": fake.token, "POSTMARK_API_URL": fake.url, "ECHO_FLOOD_LIMIT": "1000000",
        "ECHO_INSTANCE_PATH": str(tmp / "instance"), "PYTHONUNBUFFERED": "1",
    })
    return env


def reset(db: Database) -> None:
    import psycopg

    with psycopg.connect(db.dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        conn.execute("ALTER SEQUENCE ticket_number_seq RESTART")
        conn.execute("VACUUM ANALYZE")


def report(rows: list[dict], args) -> None:
    summary = {}
    for mode in dict.fromkeys(r["mode"] for r in rows):
        mine = [r for r in rows if r["mode"] == mode]
        summary[mode] = {
            "intake_ms": statistics.median(r["intake"]["cpu_ms_per_email"] for r in mine),
            "worker_ms": statistics.median(r["worker"]["cpu_ms_per_email"] for r in mine),
            "ratio": statistics.median(r["ratio"] for r in mine),
        }
    if args.json:
        print(json.dumps({"rounds": rows, "median": summary}, indent=2))
        return
    print(f"\nCPU per email (user + system, whole process trees), {args.emails} webhooks per round, "
          f"{os.cpu_count()} CPUs")
    print(f"{'round':>5} {'worker':>7} {'intake ms':>10} {'worker ms':>10} {'measured':>9} {'ratio':>6}"
          f"   sent rows / Postmark requests / duplicates")
    for r in rows:
        w = r["worker"]
        check = "exactly once" if w["exactly_once"] else "MISMATCH"
        print(f"{r['round']:>5} {r['mode']:>7} {r['intake']['cpu_ms_per_email']:>10.2f} {w['cpu_ms_per_email']:>10.2f}"
              f" {w['emails']:>9} {r['ratio']:>6.2f}   {w['sent_rows']} / {w['postmark_requests']} /"
              f" {w['duplicates']} ({check})")
    print()
    for mode, s in summary.items():
        verdict = "met" if s["ratio"] <= TARGET_RATIO else "NOT MET"
        print(f"median, {mode} worker: intake {s['intake_ms']:.2f} ms/email, worker {s['worker_ms']:.2f} ms/email, "
              f"ratio {s['ratio']:.2f} (target <= {TARGET_RATIO}: {verdict})")


if __name__ == "__main__":
    sys.exit(main())
