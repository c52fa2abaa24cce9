"""Bulk status change: 500 tickets in one agent API request (issue 13's bar: under a second).

    .venv/bin/python bench/bulk_status.py [--tickets 500] [--rounds 5] [--background 20000]

A fresh database (BENCH_DATABASE_URL, default postgresql://postgres@127.0.0.1:5432/postgres) is created,
migrated and seeded with `--background` other tickets (so the bulk runs against a table of realistic
size) and the `--tickets` that are changed, each with an assignee (so a status change has work to do:
its audit row) and a customer. Echo runs in this process (its app, a Flask test client, the agent's
token), with Redis BENCH_REDIS_URL (default redis://127.0.0.1:6379/14). Each round sends one
`POST /api/v1/agent/tickets/bulk` naming every ticket, alternating resolved and open, and times the
request end to end (parse, lock, change, audit, commit). It prints each round, the median and max, and
the target (< 1 s) as met or NOT MET. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchdb import Database  # noqa: E402


def seed(dsn: str, background: int, tickets: int) -> list[str]:
    import psycopg

    total = background + tickets
    with psycopg.connect(dsn, autocommit=True) as conn:
        agent = conn.execute("INSERT INTO agents (id, email, display_name, role) VALUES (gen_random_uuid(), "
                             "'bench@raxx.app', 'Bench', 'superadmin') RETURNING id").fetchone()[0]
        conn.execute("""
            INSERT INTO customers (id, email, display_name, first_seen_at, last_seen_at, email_bounced)
            SELECT gen_random_uuid(), 'c' || i || '@example.com', 'Customer ' || i, now(), now(), false
            FROM generate_series(1, 2000) AS i""")
        conn.execute("""
            INSERT INTO tickets (id, customer_id, assigned_to, status, subject, source, created_at, updated_at,
                                 status_changed_at, last_customer_reply_at)
            SELECT gen_random_uuid(), (SELECT id FROM customers ORDER BY email OFFSET (i %% 2000) LIMIT 1), %s,
                   'open', 'Subject ' || i, 'email', now() - (i || ' minutes')::interval, now(), now(), now()
            FROM generate_series(1, %s) AS i""", (agent, total))
        conn.execute("VACUUM ANALYZE")
        rows = conn.execute("SELECT number FROM tickets ORDER BY seq DESC LIMIT %s", (tickets,)).fetchall()
    return [row[0] for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=500)
    parser.add_argument("--background", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    database = Database(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    try:
        database.create()
        database.migrate()
        started = time.perf_counter()
        numbers = seed(database.dsn, args.background, args.tickets)
        print(f"seeded {args.background + args.tickets:,} tickets in {time.perf_counter() - started:.1f} s")
        from echo import create_app
        from echo.agents.service import create_token
        from echo.extensions import db

        with tempfile.TemporaryDirectory() as tmp:
            app = create_app({
                "ECHO_ENV": "test", "DATABASE_URL": database.dsn,
                "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
                "ECHO_SECRET_KEY": secrets.token_hex(32), "SESSION_KEY": secrets.token_hex(32),
                "ECHO_SUPPORT_ADDRESS": "support@raxx.app", "ECHO_INSTANCE_PATH": tmp,
            })
            with app.app_context():
                _, raw = create_token("bench@raxx.app")
                db.session.commit()
                client = app.test_client()
                headers = {"Authorization": f"Bearer {raw}"}
                times = []
                for round_ in range(args.rounds + 1):  # the first round warms up
                    status = "resolved" if round_ % 2 == 0 else "open"
                    began = time.perf_counter()
                    response = client.post("/api/v1/agent/tickets/bulk", headers=headers,
                                           json={"tickets": numbers, "action": "status", "value": status})
                    elapsed = time.perf_counter() - began
                    body = response.get_json()
                    assert response.status_code == 200 and len(body["changed"]) == len(numbers), body
                    if round_:
                        times.append(elapsed)
                        print(f"round {round_}: {len(numbers)} tickets → {status} in {elapsed:.3f} s")
                db.session.remove()
                db.engine.dispose()
        median, worst = statistics.median(times), max(times)
        print(f"median {median:.3f} s, max {worst:.3f} s for {len(numbers)} tickets in one request")
        print(f"target < 1 s (median): {'met' if median < 1 else 'NOT MET'}")
        return 0
    finally:
        database.drop()


if __name__ == "__main__":
    sys.exit(main())
