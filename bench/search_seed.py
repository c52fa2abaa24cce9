"""Create, migrate and bulk-seed the search benchmark's database (used by bench/search.py).

Seeding streams generated rows into `COPY ... FROM STDIN` (psycopg 3 `cursor.copy`) from several
forked worker processes at once (`jobs`, one PostgreSQL connection each), so that Python text
generation and PostgreSQL's work (parsing, the generated tsvector columns, TOAST compression)
overlap on all cores. The workers split the tickets into contiguous ranges and commit every
`CHUNK` tickets (tickets first, then their threads, in one transaction).

Index strategy (`index_mode`):
  * "after" (default): after migrating, record every index and constraint definition, drop the
    secondary indexes of customers/tickets/threads (those not backing a constraint: the GIN
    tsvector/trigram/tags indexes and the plain btrees), COPY, then recreate them from their
    recorded `pg_get_indexdef` text with a large `maintenance_work_mem`, two at a time (largest
    first), and check that the index and constraint definitions are exactly the migrated ones.
  * "during": keep the migrated indexes and COPY into them (the webhook's situation; slower).
Foreign-key triggers are skipped while copying (`session_replication_role = replica`) when the
role is a superuser; the rows are consistent by construction and are checked afterwards. So are
the triggers that keep `tickets.search_document`: the documents are then built in one pass by the
migration's `echo_rebuild_search_documents()`.
"""

from __future__ import annotations

import itertools
import multiprocessing as mp
import queue
import random
import sys
import threading
import time
import uuid
from bisect import bisect_right
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchdb  # noqa: E402
import search_corpus as corpus  # noqa: E402

CHUNK = 1000
DAY = 86400.0
SUPPORT_ADDRESS = "support@echo.local"
BRAND = "Raxx"
TAGS = ["billing", "refund", "bug", "feature-request", "vip", "shipping", "login", "urgent", "integration",
        "cancellation", "invoice", "chargeback", "onboarding", "mobile", "api", "tax", "returns", "security",
        "feedback", "enterprise"]
SEED_TABLES = ("customers", "tickets", "threads")


def log(msg: str) -> None:
    print(f"[search-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# Database lifecycle
# ----------------------------------------------------------------------------------------------

class Database(benchdb.Database):
    PREFIX = "echo_search_bench_"


def schema_snapshot(conn) -> dict:
    """Every index and constraint definition in the public schema (to prove a rebuild is exact)."""
    indexes = conn.execute(
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1, 2").fetchall()
    constraints = conn.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2").fetchall()
    return {"indexes": [tuple(r) for r in indexes], "constraints": [tuple(r) for r in constraints]}


def secondary_indexes(conn, tables=SEED_TABLES) -> list[tuple[str, str, str]]:
    """(table, index name, CREATE INDEX text) of indexes that back no constraint."""
    return [tuple(r) for r in conn.execute(
        """SELECT c.relname, ic.relname, pg_get_indexdef(i.indexrelid)
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid
            WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
            ORDER BY 1, 2""", (list(tables),)).fetchall()]


def rebuild_indexes(dsn: str, indexes: list[tuple[str, str, str]], connections: int = 2,
                    maintenance_work_mem: str = "2GB") -> dict[str, float]:
    """CREATE each index on `connections` sessions at once, largest estimated first. Returns seconds per index."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        pages = dict(conn.execute(
            "SELECT relname, relpages FROM pg_class WHERE relname = ANY(%s)", ([t for t, _n, _d in indexes],)))

    def cost(item):
        table, _name, ddl = item
        return pages.get(table, 1) * (6 if " USING gin " in ddl else 1)

    work: queue.Queue = queue.Queue()
    for item in sorted(indexes, key=cost, reverse=True):
        work.put(item)
    timings: dict[str, float] = {}
    errors: list[BaseException] = []

    def run():
        try:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(f"SET maintenance_work_mem = '{maintenance_work_mem}'")
                conn.execute("SET max_parallel_maintenance_workers = 0")  # the other session uses the other core
                while True:
                    try:
                        _table, name, ddl = work.get_nowait()
                    except queue.Empty:
                        return
                    t0 = time.perf_counter()
                    conn.execute(ddl)
                    timings[name] = time.perf_counter() - t0
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, daemon=True) for _ in range(max(1, connections))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return timings


# ----------------------------------------------------------------------------------------------
# COPY formatting
# ----------------------------------------------------------------------------------------------

NULL = "\\N"


def esc(value: str) -> str:
    """COPY text-format escaping (str.replace is far faster than str.translate here)."""
    if "\\" in value:
        value = value.replace("\\", "\\\\")
    return value.replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def ts(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1e6):06d}+00"


# ----------------------------------------------------------------------------------------------
# The plan shared with the forked workers (module globals, inherited by fork)
# ----------------------------------------------------------------------------------------------

class Plan:
    def __init__(self, tickets: int, threads_per_ticket: float, customers: int, seed: int, now: float):
        rng = random.Random(seed)
        self.tickets, self.seed, self.now = tickets, seed, now
        # Threads per ticket: 1 + a geometric-ish tail, adjusted to an exact total.
        target = int(round(tickets * threads_per_ticket))
        extra_mean = max(threads_per_ticket - 1.0, 0.0)
        counts = [1 + (min(39, int(rng.expovariate(1.0 / (extra_mean + 0.5)))) if extra_mean > 0 else 0)
                  for _ in range(tickets)]
        diff = target - sum(counts)
        while diff != 0:
            i = rng.randrange(tickets)
            if diff > 0 and counts[i] < 40:
                counts[i] += 1
                diff -= 1
            elif diff < 0 and counts[i] > 1:
                counts[i] -= 1
                diff += 1
        self.counts = counts
        self.offsets = list(itertools.accumulate(counts, initial=0))  # first global thread index of ticket i
        self.total_threads = self.offsets[-1]
        # Planted rare words: word k goes into 3..12 random threads.
        self.planted: dict[int, str] = {}
        self.planted_tickets: dict[str, set[int]] = {}
        for k, word in enumerate(corpus.PLANTED):
            n = min(self.total_threads, 3 + (k * 7) % 10)
            for g in rng.sample(range(self.total_threads), n):
                self.planted[g] = word
                seq = bisect_right(self.offsets, g)  # ticket index + 1 == seq
                self.planted_tickets.setdefault(word, set()).add(seq)
        # Customers and agents.
        self.customers = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), email, name, first)
                          for email, name, first in corpus.make_customers(customers, rng)]
        self.agents = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), first, full, email)
                       for first, full, email in corpus.AGENT_NAMES]


PLAN: Plan | None = None


def copy_customers_and_agents(conn, plan: Plan) -> None:
    rng = random.Random(plan.seed + 7)
    with conn.cursor() as cur:
        with cur.copy("COPY agents (id, email, display_name, role, active, created_at) FROM STDIN") as cp:
            for i, (aid, _first, full, email) in enumerate(plan.agents):
                role = "superadmin" if i == 0 else "ops"
                cp.write(f"{aid}\t{email}\t{esc(full)}\t{role}\tt\t{ts(plan.now - 800 * DAY)}\n")
        with cur.copy("COPY customers (id, email, display_name, first_seen_at, last_seen_at, email_bounced) "
                      "FROM STDIN") as cp:
            buf = []
            for cid, email, name, _first in plan.customers:
                first_seen = plan.now - 760 * DAY * rng.random() ** 1.2
                last_seen = first_seen + (plan.now - first_seen) * rng.random()
                buf.append(f"{cid}\t{esc(email)}\t{esc(name)}\t{ts(first_seen)}\t{ts(last_seen)}\t"
                           f"{'t' if rng.random() < 0.01 else 'f'}\n")
                if len(buf) >= 5000:
                    cp.write("".join(buf))
                    buf.clear()
            cp.write("".join(buf))


def _worker(index: int, start: int, stop: int, dsn: str, superuser: bool, progress, errors) -> None:
    """Generate and COPY tickets [start, stop) (0-based; seq = i + 1) and their threads."""
    try:
        import psycopg

        plan = PLAN
        assert plan is not None
        rng = random.Random(plan.seed * 1000 + index)
        gen = corpus.TextGenerator(plan.seed * 1000 + index, [(a[1], a[2]) for a in plan.agents])
        customer_pick = corpus.Zipf(range(len(plan.customers)), rng, s=0.75, q=20.0)
        tag_pick = corpus.Zipf(TAGS, rng, s=1.0, q=2.0)
        agents = plan.agents
        now = plan.now
        rand, randint, expo = rng.random, rng.randint, rng.expovariate
        with psycopg.connect(dsn) as conn:
            conn.execute("SET synchronous_commit = off")
            if superuser:
                conn.execute("SET session_replication_role = replica")
            conn.commit()
            for chunk_start in range(start, stop, CHUNK):
                chunk_stop = min(stop, chunk_start + CHUNK)
                ticket_rows, thread_rows = [], []
                previous_ticket_id = None
                for i in range(chunk_start, chunk_stop):
                    seq = i + 1
                    tid = str(uuid.uuid4())
                    cid, cemail, cname, cfirst = plan.customers[customer_pick()]
                    agent = agents[randint(0, len(agents) - 1)] if rand() < 0.85 else None
                    helper = agent or agents[randint(1, len(agents) - 1)]
                    n = plan.counts[i]
                    created = now - 730 * DAY * rand() ** 1.35
                    subject = gen.subject()
                    # The conversation's timeline and directions.
                    times, dirs, t, last_public = [], [], created, "outbound"
                    for j in range(n):
                        if j == 0:
                            d = "inbound"
                        elif rand() < 0.08:
                            d = "internal"
                        else:
                            d = "outbound" if last_public == "inbound" else "inbound"
                        if j:
                            t += 60 + expo(1.0 / (4 * 3600 if d != "inbound" else 22 * 3600))
                        times.append(t)
                        dirs.append(d)
                        if d != "internal":
                            last_public = d
                    if times[-1] > now:  # squeeze a conversation that would run into the future
                        span = times[-1] - created
                        room = max(now - created - 60, 1.0)
                        times = [created + (x - created) * room / span for x in times]
                    updated = times[-1] + (rand() * 600 if rand() < 0.3 else 0.0)
                    age = now - updated
                    if last_public == "inbound":
                        status = ("open" if age < 5 * DAY or rand() < 0.06
                                  else ("closed" if rand() < 0.8 else "resolved"))
                    else:
                        status = (("pending" if rand() < 0.7 else "resolved") if age < 7 * DAY
                                  else ("closed" if rand() < 0.8 else "resolved"))
                    closed_at = ts(updated) if status == "closed" else NULL
                    last_in = max((x for x, d in zip(times, dirs, strict=True) if d == "inbound"), default=None)
                    last_out = max((x for x, d in zip(times, dirs, strict=True) if d == "outbound"), default=None)
                    tags = "{}"
                    if rand() < 0.35:
                        tags = "{" + ",".join(sorted({tag_pick() for _ in range(randint(1, 3))})) + "}"
                    category = (("account", "billing", "bug_report", "feature_request")[randint(0, 3)]
                                if rand() < 0.6 else NULL)
                    quarantined = rand() < 0.005
                    merged = previous_ticket_id if (previous_ticket_id and rand() < 0.01) else NULL
                    ticket_rows.append(
                        f"{tid}\t{seq}\t{cid}\t{agent[0] if agent else NULL}\t{status}\t{esc(subject)}\t{tags}\t"
                        f"{category}\temail\t{'t' if quarantined else 'f'}\t{'spam' if quarantined else NULL}\t"
                        f"{merged}\t{ts(created)}\t{ts(updated)}\t{closed_at}\t{ts(updated)}\t"
                        f"{ts(last_in) if last_in else NULL}\t{ts(last_out) if last_out else NULL}\n")
                    previous_ticket_id = tid
                    # The threads.
                    base = plan.offsets[i]
                    prev_text, prev_who, refs = "", "", []
                    for j in range(n):
                        d, when = dirs[j], times[j]
                        extra = ""
                        if base + j in plan.planted:
                            extra = corpus.planted_sentence(plan.planted[base + j], rng)
                        if d == "inbound":
                            text = gen.customer_message(cfirst, cname, helper[1], extra)
                            sender_email, sender_name, author, source = esc(cemail), esc(cname), NULL, "email"
                            msgid = f"<CA+{uuid.uuid4().hex[:20]}@mail.gmail.com>"
                            pmid, thread_customer = str(uuid.uuid4()), cid
                            spam = f"{rand() * 2.5:.2f}"
                        elif d == "outbound":
                            text = gen.agent_message(cfirst, helper[2], BRAND, extra)
                            sender_email, sender_name = SUPPORT_ADDRESS, esc(helper[2])
                            author, source = helper[0], "console"
                            msgid = f"<{uuid.uuid4().hex}@echo.local>"
                            pmid, thread_customer, spam = NULL, NULL, NULL
                        else:
                            text = gen.note(helper[1], extra)
                            sender_email, sender_name, author, source = NULL, NULL, helper[0], "console"
                            msgid, pmid, thread_customer, spam = None, NULL, NULL, NULL
                        body_text, body_html = text, corpus.html(text)
                        if d != "internal" and prev_text:
                            when_str = time.strftime("%a, %d %b %Y at %H:%M", time.gmtime(when))
                            body_text = text + "\n\n" + corpus.quote(prev_text, prev_who, when_str)
                            body_html += "<blockquote>" + corpus.html(prev_text[:700]) + "</blockquote>"
                        in_reply_to = refs[-1] if (refs and d != "internal") else NULL
                        references = " ".join(refs[-3:]) if (refs and d != "internal") else NULL
                        thread_rows.append(
                            f"{uuid.uuid4()}\t{tid}\t{d}\t{source}\t{thread_customer}\t{sender_email}\t{sender_name}\t"
                            f"{author}\t{esc(('Re: ' if j else '') + subject)}\t{esc(body_html)}\t{esc(body_text)}\t"
                            f"{esc(text)}\t{msgid or NULL}\t{pmid}\t{in_reply_to}\t{references}\tf\t{spam}\t"
                            f"{'t' if quarantined and d == 'inbound' else 'f'}\t{ts(when)}\n")
                        if d != "internal":
                            prev_text, prev_who = text, (cname if d == "inbound" else helper[2])
                            refs.append(msgid)
                with conn.cursor() as cur:
                    with cur.copy(
                        "COPY tickets (id, seq, customer_id, assigned_to, status, subject, tags, category, source, "
                        "quarantined, quarantine_reason, merged_into_id, created_at, updated_at, closed_at, "
                        "status_changed_at, last_customer_reply_at, last_agent_reply_at) FROM STDIN"
                    ) as cp:
                        cp.write("".join(ticket_rows))
                    with cur.copy(
                        'COPY threads (id, ticket_id, direction, source, customer_id, sender_email, sender_name, '
                        'authored_by, subject, body_html, body_text, stripped_text, rfc_message_id, '
                        'postmark_message_id, in_reply_to, "references", is_auto_reply, spam_score, quarantined, '
                        'created_at) FROM STDIN'
                    ) as cp:
                        for k in range(0, len(thread_rows), 500):
                            cp.write("".join(thread_rows[k:k + 500]))
                conn.commit()
                with progress.get_lock():
                    progress.value += chunk_stop - chunk_start
    except BaseException as exc:  # noqa: BLE001
        import traceback

        errors.put(f"worker {index}: {exc!r}\n{traceback.format_exc()}")
        raise SystemExit(1) from None


def seed(db: Database, *, tickets: int, threads_per_ticket: float, customers: int, jobs: int, seed_value: int,
         index_mode: str = "after") -> dict:
    """Fill `db` (already migrated). Returns timings and facts the benchmark needs."""
    import psycopg

    global PLAN
    stats: dict = {"tickets": tickets, "customers": customers, "jobs": jobs, "index_mode": index_mode}
    t_all = time.perf_counter()
    now = time.time()
    t0 = time.perf_counter()
    PLAN = plan = Plan(tickets, threads_per_ticket, customers, seed_value, now)
    stats["threads"] = plan.total_threads
    stats["plan_s"] = time.perf_counter() - t0

    with psycopg.connect(db.dsn, autocommit=True) as conn:
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        before = schema_snapshot(conn)
        dropped = []
        if index_mode == "after":
            dropped = secondary_indexes(conn)
            for _table, name, _ddl in dropped:
                conn.execute(f'DROP INDEX "{name}"')
        stats["dropped_indexes"] = [name for _t, name, _d in dropped]
        t0 = time.perf_counter()
        copy_customers_and_agents(conn, plan)
        conn.execute(f"SELECT setval('ticket_number_seq', {tickets})")
        stats["copy_customers_s"] = time.perf_counter() - t0

    # Tickets and threads from forked workers (fork: they inherit PLAN without pickling it).
    t0 = time.perf_counter()
    ctx = mp.get_context("fork")
    progress, errors = ctx.Value("q", 0), ctx.Queue()
    jobs = max(1, min(jobs, tickets // CHUNK + 1))
    bounds = [round(tickets * k / jobs) for k in range(jobs + 1)]
    procs = [ctx.Process(target=_worker, args=(k, bounds[k], bounds[k + 1], db.dsn, superuser, progress, errors),
                         daemon=True) for k in range(jobs)]
    try:
        for p in procs:
            p.start()
        last_log = time.perf_counter()
        while any(p.is_alive() for p in procs):
            for p in procs:
                p.join(timeout=0.5)
            if any(p.exitcode not in (None, 0) for p in procs):
                break
            if time.perf_counter() - last_log > 15:
                done = progress.value
                rate = done / (time.perf_counter() - t0)
                left = (tickets - done) / max(rate, 1)
                log(f"  copied {done:,}/{tickets:,} tickets ({rate:,.0f}/s, ~{left:.0f} s left)")
                last_log = time.perf_counter()
        failed = [p for p in procs if p.exitcode not in (0,)]
        if failed:
            message = errors.get(timeout=2) if not errors.empty() else f"exit codes {[p.exitcode for p in procs]}"
            raise RuntimeError(f"seeding worker failed: {message}")
    finally:
        for p in procs:  # only our own workers, by handle
            if p.is_alive():
                p.terminate()
                p.join(5)
    stats["copy_tickets_threads_s"] = time.perf_counter() - t0

    # Per-ticket search documents: the triggers that keep them were skipped with the FK triggers
    # (replica role), so build them all at once with the migration's own function.
    t0 = time.perf_counter()
    if superuser:
        with psycopg.connect(db.dsn, autocommit=True) as conn:
            conn.execute("SET work_mem = '1GB'")
            conn.execute("SELECT echo_rebuild_search_documents()")
    stats["search_documents_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if dropped:
        stats["index_build_s_each"] = rebuild_indexes(db.dsn, dropped)
    stats["index_build_s"] = time.perf_counter() - t0
    with psycopg.connect(db.dsn, autocommit=True) as conn:
        after = schema_snapshot(conn)
        if after != before:
            missing = set(before["indexes"]) ^ set(after["indexes"])
            raise RuntimeError(f"schema after seeding differs from the migrated one: {sorted(missing)[:5]}")
        stats["schema_equal_to_migrated"] = True
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("VACUUM ANALYZE")
        stats["vacuum_analyze_s"] = time.perf_counter() - t0
        if superuser:  # the FK triggers were skipped: check the references the benchmark relies on
            orphans = conn.execute(
                "SELECT (SELECT count(*) FROM threads th"
                "        WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = th.ticket_id))"
                " + (SELECT count(*) FROM tickets t WHERE t.customer_id IS NOT NULL AND NOT EXISTS"
                "    (SELECT 1 FROM customers c WHERE c.id = t.customer_id))").fetchone()[0]
            if orphans:
                raise RuntimeError(f"{orphans} rows reference missing tickets/customers")
        sizes = conn.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relname = ANY(%s)",
            (list(SEED_TABLES),)).fetchall()
        stats["sizes_mb"] = {name: round(size / 2**20) for name, size in sizes}
        stats["database_mb"] = round(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20)
        stats["status_counts"] = dict(conn.execute("SELECT status, count(*) FROM tickets GROUP BY 1 ORDER BY 1"))
    stats["seed_s"] = time.perf_counter() - t_all
    stats["planted_tickets"] = {w: sorted(s) for w, s in plan.planted_tickets.items()}
    stats["customer_emails"] = [c[1] for c in plan.customers[:2000]]
    return stats
