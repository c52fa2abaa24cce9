#!/usr/bin/env python
"""Delivery under faults: replies while Postmark leaves one answer in ten hanging, and the queue after a
Redis outage with a backlog.

    python bench/delivery_faults.py [--replies 200] [--pace 0.05] [--rounds 2] [--backlog 2000]
                                    [--outage-seconds 600] [--sweeps 60] [--skip latency|outage]
                                    [--echo-src DIR] [--json]

Everything is real but Postmark: PostgreSQL (BENCH_DATABASE_URL), a redis-server of the bench's own
(which it stops and restarts), `echo-desk worker` as the Procfile runs it (with its clock), and
the local Postmark stand-in of the tests (tests/fakes/postmark.py) reached through postmarker.

**Latency.** Each round: fresh tables, `--replies` customers write in (their acknowledgements are
sent first), then an agent answers each, `--pace` seconds apart, through `send_reply` as the
console does. A reply is delivered when Postmark has it (the stand-in records the time it accepted
the request, in this process's clock). `hanging` rounds hold Postmark's answer to every tenth
customer past the client's read time-out (the email is accepted, its answer never comes in time);
`healthy` rounds answer at once. Rounds alternate. Printed: p50/p95/max from reply to delivery,
the ratio of the hanging p95 to the healthy p95, and whether each reply went out exactly once.

**Outage.** `--backlog` new conversations are queued (each acknowledgement with its job), Redis
is stopped for `--outage-seconds` while `--backlog // 20` more arrive (their enqueue fails), then
restarted empty, as Redis without persistence comes back. The clock's sweeper then runs `--sweeps`
times with no worker taking jobs (a 10-second period: 60 sweeps are ten minutes of a worker stuck
elsewhere). Printed: jobs in the queues, rows with a job, the most jobs any row has (target:
at most one). Then the worker starts and drains the backlog while an agent's reply is sent:
how long the backlog took, whether every email went out exactly once, and how long the reply
waited (agents' replies never wait behind acknowledgements).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(ROOT))

from benchdb import Database  # noqa: E402
from worker_cpu import Tree, echo_env, reset, wait_quiet  # noqa: E402

TARGET_P95_RATIO = 2.0
SETTLE = 120  # seconds after the last reply by which every reply should have been delivered
HANG_EVERY = 10


def log(msg: str) -> None:
    print(f"[delivery_faults {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--pace", type=float, default=0.05, help="seconds between an agent's replies")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--outage-seconds", type=float, default=600)
    parser.add_argument("--sweeps", type=int, default=60)
    parser.add_argument("--skip", choices=("latency", "outage"), action="append", default=[])
    parser.add_argument("--echo-src", type=Path, default=ROOT,
                        help="the Echo tree to measure (e.g. an older commit from `git archive`)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from tests.fakes.postmark import FakePostmark
    from tests.fakes.redis_server import RedisServer

    src = args.echo_src.resolve()
    sys.path.insert(0, str(src))  # Echo itself from there; the stand-ins above stay this tree's
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    logging.getLogger("echo.jobs").setLevel(logging.CRITICAL)  # the outage's failed enqueues, expected
    tmp = Path(tempfile.mkdtemp(prefix="echo-delivery-faults-"))
    redis = RedisServer(tmp)
    redis.start()
    fake = FakePostmark()
    fake.start()
    db = Database(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@localhost/postgres"))
    user, password = "postmark-bench", secrets.token_urlsafe(24)
    result: dict = {}
    try:
        log(f"Echo from {src}; creating and migrating database {db.name}; Redis {redis.url}; logs in {tmp}")
        db.create()
        db.migrate()
        env = echo_env(src, db, redis.url, fake, user, password, tmp)
        os.environ.update(env)  # the app built here is the one the worker builds
        from echo import create_app

        app = create_app()
        auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        bench = Bench(app, env, db, redis, fake, tmp, auth)
        if "latency" not in args.skip:
            result["latency"] = bench.latency(args)
        if "outage" not in args.skip:
            result["outage"] = bench.outage(args)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        fake.stop()
        db.drop()
        redis.stop()
    report(result, args)
    return 0


class Bench:
    def __init__(self, app, env, db, redis, fake, tmp: Path, auth: str) -> None:
        self.app, self.env, self.db, self.redis, self.fake, self.tmp, self.auth = app, env, db, redis, fake, tmp, auth
        self.client = app.test_client()

    # -- helpers ---------------------------------------------------------------------------------
    def fresh(self) -> None:
        from redis import Redis

        reset(self.db)
        Redis.from_url(self.redis.url).flushdb()
        self.fake.reset()

    def start_worker(self, name: str) -> Tree:
        worker = Tree([sys.executable, "-m", "echo.cli", "worker"], self.env, self.tmp / f"worker-{name}.log")
        time.sleep(1.0)
        wait_quiet(worker.proc.pid)
        if worker.proc.poll() is not None:
            worker.stop()
            raise RuntimeError(f"the worker exited; see {self.tmp}/worker-{name}.log")
        return worker

    def new_conversations(self, count: int, start: int = 0) -> list[str]:
        # one domain each: acknowledgements are limited per recipient domain (backscatter)
        addresses = [f"customer{i}@customer{i}.example" for i in range(start, start + count)]
        for i, address in enumerate(addresses, start):
            payload = {"From": address, "FromFull": {"Email": address, "Name": f"Customer {i}"},
                       "To": "support@raxx.app", "Subject": f"Question number {i}",
                       "TextBody": f"Hello, I have question number {i}.", "MessageID": f"bench-{i}-{time.time_ns()}",
                       "Headers": [{"Name": "Message-ID", "Value": f"<bench-{i}-{time.time_ns()}@example.com>"}]}
            response = self.client.post("/tickets/inbound", json=payload, headers={"Authorization": self.auth})
            if response.status_code != 200:
                raise RuntimeError(f"the intake answered {response.status_code}: {response.get_data()[:200]!r}")
        return addresses

    def wait_sent(self, predicate, seconds: float, what: str) -> float:
        started = time.monotonic()
        while not predicate():
            if time.monotonic() - started > seconds:
                raise RuntimeError(f"timed out after {seconds:.0f} s waiting for {what}; logs in {self.tmp}")
            time.sleep(0.05)
        return time.monotonic() - started

    def reply(self, number: int) -> tuple[str, float]:
        """An agent answers ticket `number` as the console does; (outbox id, when it was committed)."""
        from echo.actors import Actor
        from echo.agents.models import Agent
        from echo.extensions import db
        from echo.outbound.service import send_reply
        from echo.tickets.service import get_ticket

        with self.app.app_context():
            agent = db.session.query(Agent).first()
            if agent is None:
                agent = Agent(email="ana@raxx.app", display_name="Ana", role="ops")
                db.session.add(agent)
                db.session.flush()
            result = send_reply(get_ticket(f"TKT-{number:04d}"), actor=Actor.agent(agent),
                                body_text=f"Here is the answer to question {number}.")
            outbox_id = str(result.outbox.id)
            db.session.commit()
            return outbox_id, time.monotonic()

    def accepted(self) -> dict[str, dict]:
        return {m["Metadata"]["echo_outbox_id"]: m for m in list(self.fake.sent)}

    # -- latency ---------------------------------------------------------------------------------
    def latency(self, args) -> dict:
        from echo.mail import postmark

        hang = getattr(postmark, "READ_TIMEOUT", 15) + 5  # older trees waited 15 s for an answer
        rounds = []
        for round_no in range(1, args.rounds + 1):
            for mode in ("healthy", "hanging"):
                self.fresh()
                worker = self.start_worker(f"{mode}-{round_no}")
                try:
                    addresses = self.new_conversations(args.replies)
                    self.wait_sent(lambda: len(self.fake.sent) >= args.replies, 120, "the acknowledgements")
                    if mode == "hanging":
                        for address in addresses[::HANG_EVERY]:
                            self.fake.slow_recipients[address] = hang
                    committed = {}
                    started = time.monotonic()
                    for number in range(1, args.replies + 1):
                        outbox_id, at = self.reply(number)
                        committed[outbox_id] = at
                        time.sleep(args.pace)
                    try:
                        replies = set(committed)
                        self.wait_sent(lambda: replies <= set(self.accepted()), SETTLE, "the replies")  # noqa: B023
                    except RuntimeError:
                        log(f"not every reply was delivered within {SETTLE} s; those count as never")
                    accepted = self.accepted()
                    waits = sorted(accepted[i]["received"] - committed[i] if i in accepted else float("inf")
                                   for i in committed)
                    ids = [r["Metadata"]["echo_outbox_id"] for r in list(self.fake.requests)]
                    delivered = [m["received"] for i, m in accepted.items() if i in committed]
                    row = {"round": round_no, "mode": mode, "replies": len(committed),
                           "undelivered": len(committed) - len(delivered),
                           "p50_s": round(statistics.median(waits), 3), "p95_s": round(quantile(waits, 0.95), 3),
                           "max_s": round(waits[-1], 3),
                           "per_second": round(len(delivered) / (max(delivered) - started), 1),
                           "postmark_requests": len([i for i in ids if i in committed]),
                           "exactly_once": len(ids) == len(set(ids))}
                    rounds.append(row)
                    log(f"round {round_no} {mode}: p50 {row['p50_s']} s, p95 {row['p95_s']} s, max {row['max_s']} s")
                finally:
                    worker.stop()
                    self.fake.slow_recipients.clear()
        healthy = statistics.median(r["p95_s"] for r in rounds if r["mode"] == "healthy")
        hanging = statistics.median(r["p95_s"] for r in rounds if r["mode"] == "hanging")
        return {"rounds": rounds, "healthy_p95_s": healthy, "hanging_p95_s": hanging,
                "ratio": round(hanging / healthy, 2) if healthy else None}

    # -- outage ----------------------------------------------------------------------------------
    def outage(self, args) -> dict:
        from redis import Redis
        from rq import Queue

        from echo.jobs import QUEUES
        from echo.mail.tasks import sweep_outbox

        self.fresh()
        log(f"queueing {args.backlog} acknowledgements (no worker running)")
        self.new_conversations(args.backlog)
        during = max(1, args.backlog // 20)
        self.redis.stop()
        log(f"Redis stopped for {args.outage_seconds:.0f} s; {during} more conversations arrive meanwhile")
        outage_started = time.monotonic()
        self.new_conversations(during, start=args.backlog)
        time.sleep(max(0.0, args.outage_seconds - (time.monotonic() - outage_started)))
        self.redis.start()
        rows = args.backlog + during
        log(f"Redis back, empty; {args.sweeps} sweeps with no worker taking jobs")
        with self.app.app_context():
            for _ in range(args.sweeps):
                sweep_outbox()
        connection = Redis.from_url(self.redis.url)
        job_ids = [job_id for name in QUEUES for job_id in Queue(name, connection=connection).job_ids
                   if job_id.startswith(("deliver-", "recover-"))]
        per_row: dict[str, int] = {}
        for job_id in job_ids:
            per_row[job_id.split("-", 1)[1]] = per_row.get(job_id.split("-", 1)[1], 0) + 1
        queued = {"rows": rows, "jobs": len(job_ids), "rows_with_a_job": len(per_row),
                  "most_jobs_for_one_row": max(per_row.values(), default=0)}
        log(f"after the sweeps: {queued}")

        started = time.monotonic()  # the worker's start-up counts: an operator restarts it, then waits
        worker = Tree([sys.executable, "-m", "echo.cli", "worker"], self.env, self.tmp / "worker-outage.log")
        try:
            self.wait_sent(lambda: len(self.fake.sent) >= 20, 120, "the worker to get into the backlog")
            outbox_id, at = self.reply(1)
            self.wait_sent(lambda: outbox_id in self.accepted(), 300, "the agent's reply")
            reply_wait = self.accepted()[outbox_id]["received"] - at
            self.wait_sent(lambda: len(self.fake.sent) >= rows + 1, 900, "the backlog")
            drained = time.monotonic() - started
        finally:
            worker.stop()
        ids = [r["Metadata"]["echo_outbox_id"] for r in list(self.fake.requests)]
        return {**queued, "drain_s": round(drained, 1),
                "reply_wait_s": round(reply_wait, 2), "sent": len(self.fake.sent),
                "exactly_once": len(ids) == len(set(ids)) == rows + 1}


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(result: dict, args) -> None:
    if args.json:
        print(json.dumps(result, indent=2))
        return
    if "latency" in result:
        lat = result["latency"]
        print(f"\nReply to delivery, {args.replies} replies per round, {args.pace}s apart; hanging: every "
              f"{HANG_EVERY}th customer's answer held past the read time-out; {os.cpu_count()} CPUs")
        print(f"{'round':>5} {'mode':>8} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'per s':>6} {'never':>6}"
              f" {'requests':>9}  exactly once")
        for r in lat["rounds"]:
            print(f"{r['round']:>5} {r['mode']:>8} {r['p50_s']:>7.3f} {r['p95_s']:>7.3f} {r['max_s']:>7.3f}"
                  f" {r['per_second']:>6.1f} {r['undelivered']:>6} {r['postmark_requests']:>9}  {r['exactly_once']}")
        verdict = "met" if lat["ratio"] is not None and lat["ratio"] <= TARGET_P95_RATIO else "NOT MET"
        print(f"median p95: healthy {lat['healthy_p95_s']:.3f} s, hanging {lat['hanging_p95_s']:.3f} s, "
              f"ratio {lat['ratio']} (target <= {TARGET_P95_RATIO}: {verdict})")
    if "outage" in result:
        out = result["outage"]
        verdict = "met" if out["most_jobs_for_one_row"] <= 1 else "NOT MET"
        print(f"\nAfter a {args.outage_seconds:.0f} s Redis outage and {args.sweeps} sweeps: {out['rows']} due rows, "
              f"{out['jobs']} jobs, {out['rows_with_a_job']} rows with a job, at most "
              f"{out['most_jobs_for_one_row']} per row (target <= 1: {verdict})")
        print(f"drained in {out['drain_s']} s; {out['sent']} sent, exactly once: {out['exactly_once']}; "
              f"an agent's reply sent during the drain waited {out['reply_wait_s']} s")


if __name__ == "__main__":
    sys.exit(main())
