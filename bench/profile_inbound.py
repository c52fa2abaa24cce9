#!/usr/bin/env python
"""cProfile one process handling inbound emails, to see where Echo's CPU time goes per request.

    /work/venv/bin/python bench/profile_inbound.py [--requests 1500] [--target echo|baseline] [--top 30]
                                                   [--echo-src DIR] [--no-cprofile]

Same payloads as bench/inbound.py, sent one at a time through the WSGI app in this process (no
gunicorn, no network client), against a fresh database that is dropped afterwards. Prints the
wall time per request, a per-stage breakdown for Echo (timed by wrapping the stage functions)
and cProfile's top functions by own time and by cumulative time.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import io
import os
import pstats
import secrets
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import inbound as bench  # noqa: E402
import payloads  # noqa: E402


def wrap_stages(timings: dict) -> None:
    """Time Echo's request stages by wrapping the functions the view and service look up at call time."""
    from echo.inbound import service, views

    def timed(module, name, label):
        original = getattr(module, name)

        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return original(*a, **kw)
            finally:
                timings[label] += time.perf_counter() - t0

        setattr(module, name, wrapper)

    timed(views, "parse_inbound", "parse_inbound (pydantic)")
    timed(views, "ingest_email", "ingest_email (total)")
    timed(service.store, "lookup", "  store.lookup (earlier delivery + known ids)")
    timed(service.customers, "upsert_customer", "  customers.upsert_customer (+ recent ticket count)")
    timed(service.tickets.store, "insert_ticket", "  tickets.store.insert_ticket")
    timed(service.tickets.store, "write_message", "  tickets.store.write_message (thread, ids, outbox, audit)")
    timed(service.mail_threading, "find_ticket", "  mail_threading.find_ticket")
    timed(service.sanitize, "sanitize_html", "  sanitize_html (nh3)")
    timed(service.quotes, "strip_reply", "  quotes.strip_reply")
    timed(service.sanitize, "html_to_text", "  html_to_text")
    timed(service.tickets, "acknowledgement_params", "  acknowledgement_params")
    from sqlalchemy.orm import Session
    timed(Session, "commit", "session.commit (COMMIT round trip + rq enqueue in after_commit)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--target", choices=("echo", "baseline"), default="echo")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--echo-src", type=Path, default=None, metavar="DIR",
                        help="import Echo from this source tree (e.g. a `git archive HEAD` export)")
    parser.add_argument("--no-cprofile", action="store_true", help="only the stage timings (no profiler overhead)")
    parser.add_argument("--no-stages", action="store_true",
                        help="no stage timings either (CPU per request alone; works on older trees)")
    args = parser.parse_args()
    echo_src = args.echo_src.resolve() if args.echo_src else None
    if echo_src is not None:
        sys.path.insert(0, str(echo_src))

    pset = payloads.build(2000)
    encoded = pset.encoded()
    ids = payloads.RunIds()
    bodies = [ids.body(encoded[i % len(encoded)], i) for i in range(args.requests)]
    user, password = "postmark-bench", secrets.token_urlsafe(16)
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    redis = bench.redis_url()
    from redis import Redis
    Redis.from_url(redis).flushdb()
    db = bench.Database(bench.postgres_admin_url())
    db.create(echo_src)
    tmp = Path(tempfile.mkdtemp(prefix="echo-bench-profile-"))
    try:
        os.environ.update({
            "ECHO_ENV": "development", "ECHO_SECRET_KEY": secrets.token_hex(32), "ECHO_WEBHOOK_USER": user,
            "ECHO_WEBHOOK_PASSWORD": password, "ECHO_SUPPORT_ADDRESS": "support@raxx.app",
            "ECHO_INSTANCE_PATH": str(tmp), "ECHO_FLOOD_LIMIT": "1000000",
            "DATABASE_URL": db.dsn, "REDIS_URL": redis, "BASELINE_DATABASE_URL": db.dsn, "BASELINE_REDIS_URL": redis,
        })
        if args.target == "echo":
            from echo import create_app
            app = create_app()
        else:
            import baseline_app
            app = baseline_app.app
        timings: dict = defaultdict(float)
        if args.target == "echo" and not args.no_stages:
            wrap_stages(timings)
        statements = [0]
        cache = Counter()
        from sqlalchemy import event
        from sqlalchemy.engine import Engine
        from sqlalchemy.engine.interfaces import CacheStats as C
        cache_names = {C.CACHE_HIT: "hit", C.CACHE_MISS: "miss", C.CACHING_DISABLED: "caching disabled",
                       C.NO_CACHE_KEY: "no cache key (uncacheable construct)",
                       C.NO_DIALECT_SUPPORT: "no dialect support"}

        @event.listens_for(Engine, "before_cursor_execute")
        def _count(conn, cursor, statement, parameters, context, executemany):
            if context is not None and context.compiled is not None:
                cache[cache_names.get(getattr(context, "cache_hit", None), "plain SQL string")] += 1
            else:
                cache["plain SQL string"] += 1

        # Count at the driver: Echo's intake runs its statements on the psycopg connection directly.
        import psycopg

        execute = psycopg.Cursor.execute

        def counted(self, query, *args, **kwargs):
            statements[0] += 1
            return execute(self, query, *args, **kwargs)

        psycopg.Cursor.execute = counted

        def call(body: bytes) -> str:
            environ = {
                "REQUEST_METHOD": "POST", "PATH_INFO": "/tickets/inbound", "SERVER_NAME": "localhost",
                "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr, "wsgi.multithread": False,
                "wsgi.multiprocess": True, "wsgi.run_once": False, "wsgi.version": (1, 0),
                "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)), "HTTP_AUTHORIZATION": auth,
                "REMOTE_ADDR": "127.0.0.1",
            }
            status = []
            out = b"".join(app(environ, lambda s, h, e=None: status.append(s)))
            if not status[0].startswith("200"):
                raise RuntimeError(f"{status[0]}: {out[:500]!r}")
            return status[0]

        warm = min(200, args.requests // 5)
        for body in bodies[:warm]:
            call(body)
        timings.clear()
        statements[0] = 0
        cache.clear()
        profiler = None if args.no_cprofile else cProfile.Profile()
        cpu0, t0 = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        for body in bodies[warm:]:
            call(body)
        if profiler:
            profiler.disable()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        n = len(bodies) - warm
        print(f"{args.target}: {n} requests in one process: {wall / n * 1000:.2f} ms wall, {cpu / n * 1000:.2f} ms CPU "
              f"(this process) per request{' (under cProfile)' if profiler else ''}")
        print(f"SQL statements per request at the driver (excluding BEGIN/COMMIT): {statements[0] / n:.1f}; through "
              "SQLAlchemy: " + (", ".join(f"{k} {v / n:.1f}/req" for k, v in cache.most_common()) or "none"))
        if timings:
            print("\nStage timings, ms per request (wall, nested stages indented):")
            for label, total in timings.items():
                print(f"  {total / n * 1000:7.3f}  {label}")
            ingest = timings.get("ingest_email (total)", 0.0)
            nested = sum(v for k, v in timings.items() if k.startswith("  "))
            print(f"  {(ingest - nested) / n * 1000:7.3f}    rest of ingest_email "
                  "(Thread/outbox/message_ids/audit INSERTs through ORM flushes, header parsing, guards)")
            top = sum(v for k, v in timings.items() if not k.startswith("  "))
            print(f"  {(wall - top) / n * 1000:7.3f}  outside the stages (Flask dispatch, auth, JSON decode, response)")
        if profiler:
            for key in ("tottime", "cumulative"):
                s = io.StringIO()
                pstats.Stats(profiler, stream=s).strip_dirs().sort_stats(key).print_stats(args.top)
                print(f"\n--- top {args.top} by {key} ---")
                print("\n".join(s.getvalue().splitlines()[6:]))
    finally:
        try:
            from echo.extensions import db as echo_db  # release pooled connections before DROP
            echo_db.engine.dispose() if args.target == "echo" and "app" in locals() else None
        except Exception:  # noqa: BLE001
            pass
        db.drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
