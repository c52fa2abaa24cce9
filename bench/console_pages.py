#!/usr/bin/env python
"""The agent console's server time: the inbox and the ticket page at 200 k tickets / 1 M threads.

    python bench/console_pages.py                                  # full size, 3 alternating rounds
    python bench/console_pages.py --tickets 20000 --threads 100000 # a quick run
    python bench/console_pages.py --echo-src /tmp/echo-new --base-src /tmp/echo-old --json > run.json
    python bench/console_pages.py --render run.json                # that run's report again
    python bench/console_pages.py --explain                        # plus EXPLAIN ANALYZE (custom and generic plans)
    python bench/console_pages.py --keep --rounds 0                # seed only; then --use-db DSN to time it

One run (see README.md, "console_pages.py"):

1. A fresh database `echo_console_bench_<random>` on BENCH_DATABASE_URL, migrated by the *candidate*
   tree's migrations (a subprocess with PYTHONPATH=<candidate>), seeded once with set-based SQL
   (INSERT ... SELECT over generate_series; no Python row loops): customers, agents, tickets,
   threads, outbox rows, attachment rows, ticket reads and, when the candidate has the table,
   `ticket_drafts`. Then VACUUM ANALYZE. The database is dropped at the end, also after an error,
   Ctrl-C or SIGTERM.
2. For each tree (baseline, candidate), alternately for `--rounds`: a subprocess with
   PYTHONPATH=<tree> builds `echo.create_app`, signs in the demo agent through the development
   sign-in (as tests/console/conftest.py does), and times Flask test-client GETs with
   time.perf_counter: the default inbox, `assignee=mine`, `page=3`, `status=pending&sort=waiting`,
   and ticket pages with 5-20 threads. Every response must be 200, every inbox page must list ticket
   rows and every ticket page its messages.
3. Per round and as medians: p50/p95/max per page and overall, candidate/baseline p95 ratios, and
   the targets: p95 < 30 ms, ratio <= 1.2. Exit status 0 only when every target is met.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

TARGET_P95_MS = 30.0
TARGET_RATIO = 1.2
BASE_REV = "b2564ce"
DEMO_AGENT = "demo@echo.local"  # echo/console/auth_views.py: the development sign-in's agent
PER_PAGE = 25  # echo/console/views.py
PAGES = ("inbox", "mine", "page3", "pending_waiting", "ticket")
PAGE_URLS = {
    "inbox": "/tickets",
    "mine": "/tickets?assignee=mine",
    "page3": "/tickets?page=3",
    "pending_waiting": "/tickets?status=pending&sort=waiting",
}


def log(msg: str) -> None:
    print(f"[console-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), int(-(-pct * len(ordered) // 100))))
    return ordered[rank - 1]


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50": round(percentile(ms, 50), 2), "p95": round(percentile(ms, 95), 2),
            "max": round(max(ms), 2) if ms else float("nan"), "mean": round(statistics.fmean(ms), 2) if ms else 0}


# ================================================================================================
# The child: one tree's app, timed in-process. Runs as `console_pages.py --child CONFIG` with
# PYTHONPATH=<tree>; imports nothing from bench/ so that only that tree's `echo` is loaded.
# ================================================================================================

ROW = re.compile(rb'data-number="TKT-')
THREAD_ID = re.compile(rb'id="thread-([0-9a-f-]{36})"')
CSRF = re.compile(rb'name="csrf-token" content="([^"]+)"')


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def child(config_path: str) -> int:
    import random

    cfg = json.loads(Path(config_path).read_text())
    import echo

    src = Path(cfg["src"]).resolve()
    loaded = Path(echo.__file__).resolve()
    if src not in loaded.parents:
        raise SystemExit(f"echo was imported from {loaded}, not from {src}")
    from echo import create_app
    from echo.extensions import db

    app = create_app(cfg["env"])
    client = app.test_client()

    # Sign in as the demo agent, the way tests/console/conftest.py::signed_in does.
    login = client.get("/tickets/login")
    match = CSRF.search(login.data)
    if login.status_code != 200 or not match:
        raise SystemExit(f"/tickets/login answered {login.status_code} without a CSRF token")
    signed = client.post("/tickets/login/dev", data={"csrf_token": match.group(1).decode(), "next": ""})
    if signed.status_code not in (302, 303):
        raise SystemExit(f"the development sign-in answered {signed.status_code}: {signed.data[:300]!r}")

    tickets = cfg["tickets"]  # [[number, thread count], ...]
    expected_rows = cfg["expected_rows"]
    notes: list[str] = []
    rows_seen: dict[str, set[int]] = {name: set() for name in PAGE_URLS}
    threads_seen: list[tuple[str, int, int]] = []
    position = {"ticket": 0}

    def next_url(page: str) -> tuple[str, int | None]:
        if page == "ticket":
            number, count = tickets[position["ticket"] % len(tickets)]
            position["ticket"] += 1
            return f"/tickets/{number}", count
        return PAGE_URLS[page], None

    def check(page: str, url: str, response, count: int | None) -> None:
        if response.status_code != 200:
            raise SystemExit(f"GET {url} answered {response.status_code}: {response.data[:400]!r}")
        body = response.data
        if page == "ticket":
            shown = len(set(THREAD_ID.findall(body)))
            if shown == 0:
                raise SystemExit(f"GET {url} shows no message (expected {count})")
            if shown != count and len(threads_seen) < 5:
                threads_seen.append((url, shown, count))
        else:
            rows = len(ROW.findall(body))
            if rows == 0 and expected_rows[page] > 0:
                raise SystemExit(f"GET {url} lists no ticket rows (expected {expected_rows[page]})")
            rows_seen[page].add(rows)

    def get(page: str) -> float:
        url, count = next_url(page)
        t0 = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - t0) * 1000
        check(page, url, response, count)
        return elapsed

    for _ in range(cfg["warmup"]):
        for page in PAGES:
            get(page)

    rng = random.Random(cfg["seed"])
    order = list(PAGES)
    times: dict[str, list[float]] = {page: [] for page in PAGES}
    cpu0, busy0, wall0 = time.process_time(), machine_busy(), time.perf_counter()
    for _ in range(cfg["requests"]):
        rng.shuffle(order)  # one request of each page in turn, in a new order each time
        for page in order:
            times[page].append(get(page))
    cpu1, busy1, wall1 = time.process_time(), machine_busy(), time.perf_counter()
    jiffies = os.sysconf("SC_CLK_TCK")
    load = {"wall_s": round(wall1 - wall0, 2), "own_cpu_s": round(cpu1 - cpu0, 2),
            "machine_busy_cores": round((busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1]) * (os.cpu_count() or 1), 2),
            "machine_busy_s": round((busy1[0] - busy0[0]) / jiffies, 2)}

    for page, seen in rows_seen.items():
        if seen and seen != {expected_rows[page]}:
            notes.append(f"{page}: {sorted(seen)} rows per page, the seed expects {expected_rows[page]}")
    for url, shown, count in threads_seen:
        notes.append(f"{url}: {shown} messages shown of {count}")

    breakdown = sql_breakdown(app, db, get, cfg) if cfg["breakdown"] else {}
    Path(cfg["out"]).write_text(json.dumps({"times": times, "load": load, "notes": notes, "breakdown": breakdown}))
    return 0


def explain(engine, statement: str, params, mode: str) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of a statement PREPAREd as psycopg prepares it after 5 runs, planned with
    the values (`custom`) or without them (`generic`, what PostgreSQL's plan cache may switch to after 5
    more runs when the generic plan's estimate looks no worse)."""
    from psycopg import sql

    names: list[str] = []

    def placeholder(match: re.Match) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    text = re.sub(r"%\((\w+)\)s", placeholder, statement).replace("%%", "%")
    values = sql.SQL("({})").format(sql.SQL(", ").join(sql.Literal(params[n]) for n in names)) if names else sql.SQL("")
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        try:
            with raw.cursor() as cur:
                cur.execute(f"SET LOCAL plan_cache_mode = force_{mode}_plan")
                cur.execute("PREPARE bench_explain AS " + text)
                cur.execute(sql.SQL("EXPLAIN (ANALYZE, BUFFERS) EXECUTE bench_explain ") + values)
                plan = "\n".join(r[0] for r in cur.fetchall())
        except Exception as exc:  # noqa: BLE001
            plan = f"(could not explain: {exc})"
        finally:
            raw.rollback()
            with raw.cursor() as cur:  # prepared statements outlive transactions
                cur.execute("SELECT 1 FROM pg_prepared_statements WHERE name = 'bench_explain'")
                if cur.fetchone():
                    cur.execute("DEALLOCATE bench_explain")
            raw.rollback()
    return plan


def sql_breakdown(app, db, get, cfg) -> dict:
    """A few more requests per page (not part of the timed ones) with every SQL statement timed at the
    driver cursor: statements per request, SQL time per request, the slowest statements and, with
    --explain, EXPLAIN (ANALYZE, BUFFERS) of the slowest SELECTs."""
    from sqlalchemy import event

    with app.app_context():
        engine = db.engine
    current: list[list] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    def after(conn, cursor, statement, parameters, context, executemany):
        t0 = conn.info["bench_t0"].pop()
        if current:
            current[-1].append((statement, parameters, (time.perf_counter() - t0) * 1000))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    out: dict = {}
    try:
        # Interleaved in a shuffled order, as the timed requests were: which statements psycopg keeps
        # prepared (and so may plan generically) depends on the mix of pages.
        import random

        rng = random.Random(cfg["seed"] + 1)
        order = list(PAGES)
        per_request: dict[str, list] = {page: [] for page in PAGES}
        slowest: dict[str, dict] = {page: {} for page in PAGES}
        texts: set[str] = set()
        for _ in range(cfg["breakdown"]):
            rng.shuffle(order)
            for page in order:
                current.append([])
                total = get(page)
                statements = current.pop()
                per_request[page].append((total, len(statements), sum(ms for _s, _p, ms in statements)))
                for statement, params, ms in statements:
                    texts.add(statement)
                    key = " ".join(statement.split())[:160]
                    best = slowest[page].get(key)
                    if best is None or ms > best[2]:
                        slowest[page][key] = (statement, params, ms)
        out["distinct_statements"] = len(texts)
        for page in PAGES:
            rows = per_request[page]
            top = sorted(slowest[page].values(), key=lambda item: -item[2])[:4]
            out[page] = {
                "requests": len(rows),
                "ms_p50": round(statistics.median(t for t, _n, _s in rows), 2),
                "statements_p50": statistics.median(n for _t, n, _s in rows),
                "sql_ms_p50": round(statistics.median(s for _t, _n, s in rows), 2),
                "slowest": [{"ms": round(ms, 2), "sql": " ".join(s.split())[:600]} for s, _p, ms in top],
            }
            if cfg["explain"]:
                plans = []
                for statement, params, ms in top[:2]:
                    if not statement.lstrip().upper().startswith(("SELECT", "WITH")):
                        continue
                    plans.append({"ms": round(ms, 2), "sql": " ".join(statement.split())[:600],
                                  **{mode: explain(engine, statement, params, mode) for mode in ("custom", "generic")}})
                out[page]["plans"] = plans
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return out


# ================================================================================================
# Seeding: set-based SQL only
# ================================================================================================

BRAND = "Raxx"
SUPPORT = "support@raxx.app"
AGENTS = [  # (email, display name, role, active); the first five are the assignees
    (DEMO_AGENT, "Demo Agent", "superadmin", True),
    ("priya.nair@raxx.app", "Priya Nair", "ops", True),
    ("tomas.berg@raxx.app", "Tomas Berg", "ops", True),
    ("grace.okafor@raxx.app", "Grace Okafor", "ops", True),
    ("kenji.ito@raxx.app", "Kenji Ito", "ops", True),
    ("olga.petrov@raxx.app", "Olga Petrov", "ops", False),  # a former agent
]
ASSIGNEES = 5
FIRST = ["Amira", "Ben", "Chloe", "Daniel", "Elif", "Farid", "Grace", "Hugo", "Ines", "Jonas", "Kavya", "Liam", "Maya",
         "Noah", "Olga", "Pedro", "Quinn", "Rosa", "Sven", "Tara", "Umar", "Vera", "Wei", "Ximena", "Yusuf", "Zoe",
         "Aoife", "Bruno", "Carmen", "Dmitri", "Emma", "Felix", "Giulia", "Hannah", "Ivan", "Julia", "Kenji", "Lena",
         "Mateo", "Nadia", "Oscar", "Priya", "Rafael", "Sofia", "Tomas", "Ursula", "Viktor", "Wanjiru"]
LAST = ["Adeyemi", "Berg", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jansen", "Kowalski",
        "Larsen", "Moreau", "Nakamura", "Okafor", "Petrov", "Quintero", "Rossi", "Schmidt", "Tanaka", "Ulrich",
        "Virtanen", "Walsh", "Xu", "Yilmaz", "Zimmermann", "Novak", "Silva", "Murphy", "Kaur", "Haddad", "Lindqvist"]
DOMAINS = ["gmail.com", "outlook.com", "yahoo.co.uk", "icloud.com", "proton.me", "gmx.de", "hey.com", "fastmail.com",
           "acme-corp.com", "northwind.io", "globex.net", "initech.co", "umbrella.org", "hooli.xyz", "stark.dev"]
TAGS = ["billing", "refund", "bug", "vip", "login", "urgent", "invoice", "mobile", "api", "shipping", "returns",
        "feature-request", "onboarding", "cancellation"]
CATEGORIES = ["account", "billing", "bug_report", "feature_request"]
PLANS = ["Starter", "Team", "Business", "Enterprise", "Pro"]
# %1$s: an order number, %2$s: a plan, %3$s: an invoice number
SUBJECTS = [
    "Charged twice for my %2$s subscription", "Can't log in after resetting my password",
    "Invoice INV-%3$s shows the wrong VAT number", "Refund for order #%1$s", "App crashes when I open settings",
    "Where is my order #%1$s?", "Upgrade from %2$s to Enterprise", "Two-factor codes never arrive",
    "Export to CSV is missing columns", "Cancel my %2$s plan at the end of the month", "Webhook deliveries failing",
    "Wrong shipping address on order #%1$s", "Question about the %2$s plan limits", "Password reset link expired",
    "Sync with Salesforce stopped working", "Please update the billing email on our account",
    "The mobile app logs me out every day", "Order #%1$s arrived damaged", "API returns 429 for every request",
    "Can we get an invoice with our PO number?", "Dark mode makes the editor unreadable",
    "Duplicate charge on INV-%3$s",
    "How do I add another admin?", "Data import stuck at 99%%", "Feature request: recurring tasks",
    "Our team can't see the shared workspace", "Receipt for order #%1$s", "SSO login loops back to the start page",
    "Notifications arrive hours late", "Transfer the account to a new owner", "Discount code not applied to #%1$s",
    "Delete my account and data", "Calendar integration shows the wrong time zone",
    "Return label for order #%1$s", "Attachments over 10 MB fail to upload", "Downgrade to %2$s keeps failing",
]
C_GREET = ["Hi,", "Hello,", "Hi there,", "Hello support team,", "Hey,", "Good morning,", "Dear Raxx team,"]
C_OPEN = [
    "I was charged twice this month and I can only see one subscription in my account settings.",
    "Since yesterday I cannot log in anymore, the page just reloads after I enter my password.",
    "Our invoice shows an old VAT number even though we updated the company details weeks ago.",
    "I ordered a replacement part last week and the tracking page has not changed since Monday.",
    "The app crashes every time I open the settings screen on my phone, it worked fine before the update.",
    "We would like to move our whole team to the bigger plan before the end of the quarter.",
    "The export I downloaded this morning is missing the customer and the amount columns.",
    "Our webhook endpoint has been receiving errors for every delivery since the weekend.",
    "I need to change the shipping address on an order I placed a couple of hours ago.",
    "The two-factor codes never arrive by text message, I have tried five times today.",
    "Could you tell me how many seats are included in our current plan and what an extra one costs?",
    "We tried to import our contacts and the progress bar has been stuck for two days now.",
    "My colleague was removed from the workspace by mistake and we cannot add her back.",
    "The parcel arrived today but the box was crushed and the screen is cracked.",
]
C_FOLLOW = [
    "Thanks for the quick answer, unfortunately it still does not work on my side.",
    "I tried what you suggested but I get the same error as before.",
    "Any update on this? It has been a few days and we are still blocked.",
    "That fixed it for me, but now my colleague has the same problem.",
    "Sorry for the late reply, I was travelling and could not test it until today.",
    "Thanks, that explains it. One more question before you close this.",
    "I just checked again and the charge is still on my card statement.",
    "Following up on my last message, is there anything else you need from us?",
]
C_MID = [
    "I am using the latest version of the app on an iPhone 14 with iOS 17.",
    "It happens in Chrome and in Firefox, with and without extensions.",
    "I already cleared the cache and signed out on every device.",
    "Our finance team needs this sorted before the end of the month.",
    "The error message says something about an expired token.",
    "We have about forty people on the account, so this affects the whole team.",
    "I attached a screenshot of what I see when it happens.",
    "This started right after the last update as far as I can tell.",
    "The order was paid with a company credit card ending in 4421.",
    "Could you also check whether the other invoices from this year are correct?",
    "I would prefer a refund to the original payment method if possible.",
    "Our admin is on holiday this week, so I am writing on her behalf.",
    "We are evaluating a switch to the yearly billing if this gets resolved.",
    "Please let me know if you need the account ID or anything else.",
    "It worked fine until last Thursday, nothing changed on our side.",
    "I have been a customer for three years and never had this problem before.",
]
C_SIGN = ["Thanks,", "Thank you,", "Best regards,", "Cheers,", "Kind regards,", "Many thanks,"]
A_OPEN = [
    "Thanks for reaching out, and sorry for the trouble this caused.",
    "Thank you for the details, that helps a lot.",
    "I have looked into your account and I can see what happened.",
    "Thanks for your patience while we checked this with our engineers.",
    "Good news: I found the cause of the problem.",
    "I am sorry to hear that, let me help you sort it out.",
]
A_MID = [
    "The second charge was an authorisation hold and it will drop off your statement within five working days.",
    "I have reset the sessions on your account, so please sign in again and let me know if it works.",
    "I corrected the VAT number on the invoice and attached the new version to this reply.",
    "The carrier confirmed the parcel is at the local depot and should be delivered tomorrow.",
    "Our engineers released a fix for the settings screen this morning, version 4.12 includes it.",
    "I have moved your team to the new plan, the price difference is prorated on the next invoice.",
    "The missing columns are a known issue with large exports and a fix is scheduled for next week.",
    "Your endpoint answered with a certificate error, so the deliveries will retry once it is renewed.",
    "I updated the shipping address, you will get a new confirmation email in a few minutes.",
    "Text messages to your carrier were delayed, switching to an authenticator app avoids this.",
    "Each additional seat is billed monthly at the same rate as the seats in your plan.",
    "I restarted the import job, it should finish within the hour for a file of that size.",
    "Could you send me the exact time it happened, so that I can find it in our logs?",
    "I have issued a full refund, it can take a few days to show up on your card.",
]
A_CLOSE = [
    "Let me know if there is anything else I can do.",
    "If it happens again, just reply to this email and I will pick it up.",
    "I will keep this ticket open until you confirm it works.",
    "Have a great rest of your week.",
    "Thanks again for your patience.",
]
NOTES = [
    "Checked Stripe: two charges, the second is an auth hold.", "Customer is on the legacy plan, do not migrate yet.",
    "Escalated to engineering, see the incident channel.", "Same issue as the one reported by Northwind last week.",
    "VIP account, please answer within the hour.", "Refund approved by finance.",
    "Asked for a screenshot, waiting on the customer.", "Likely related to the release from Tuesday.",
    "Carrier claim opened, reference number in the shipping sheet.", "Do not close before the invoice is reissued.",
]
DRAFTS = [
    "Thanks for the update. I checked with our billing team and",
    "Hi, sorry for the wait. I had a look at your account and it seems",
    "Thank you for your patience. Our engineers found that",
    "I have forwarded this to our shipping partner and will",
    "Could you try signing out on every device and then",
    "Good news: the refund went out this morning, it should",
]
ATTACHMENTS = [("screenshot.png", "image/png"), ("IMG_2041.jpg", "image/jpeg"), ("invoice.pdf", "application/pdf"),
               ("error-log.txt", "text/plain"), ("photo.jpeg", "image/jpeg"), ("export.csv", "text/csv")]

HELPERS = r"""
CREATE FUNCTION bench_h(k bigint) RETURNS bigint LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT hashint8(k)::bigint & 2147483647 $$;
CREATE FUNCTION bench_u(k bigint) RETURNS double precision LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (hashint8(k)::bigint & 2147483647) / 2147483648.0 $$;
CREATE FUNCTION bench_pick(arr text[], k bigint) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT arr[1 + (hashint8(k)::bigint & 2147483647) % cardinality(arr)] $$;
-- 2-4 different sentences of arr (the offsets 0, 1-3, 5-7, 9-11 never meet when arr has 12+)
CREATE FUNCTION bench_some(arr text[], k bigint, cnt int) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT arr[1 + bench_h(k) % cardinality(arr)]
        || ' ' || arr[1 + (bench_h(k) + 1 + bench_h(k + 1) % 3) % cardinality(arr)]
        || CASE WHEN cnt >= 3 THEN ' ' || arr[1 + (bench_h(k) + 5 + bench_h(k + 2) % 3) % cardinality(arr)] ELSE '' END
        || CASE WHEN cnt >= 4 THEN ' ' || arr[1 + (bench_h(k) + 9 + bench_h(k + 3) % 3) % cardinality(arr)] ELSE '' END
$$;
-- When message j of a ticket was written: the first opens the ticket, each later one falls in its own
-- slice of the conversation's span, so times increase within a ticket.
CREATE FUNCTION bench_t(created timestamptz, span_s double precision, n int, seq bigint, j int) RETURNS timestamptz
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT created + make_interval(secs => span_s * ((j - 1) + CASE WHEN j = 1 THEN 0
                                   ELSE 0.1 + 0.8 * bench_u((seq * 1024 + j) * 16 + 15) END) / n)
$$;
-- Message j's RFC Message-ID (odd j: the customer's mail client; even j: Echo's)
CREATE FUNCTION bench_msgid(seq bigint, j int) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN j % 2 = 1 THEN '<CA+' || left(md5(((seq * 1024 + j) * 16)::text), 24) || '@mail.gmail.com>'
                ELSE '<' || md5(((seq * 1024 + j) * 16)::text) || '@raxx.app>' END
$$;
-- Whether message j is an internal note: only at even positions before the last two
CREATE FUNCTION bench_internal(seq bigint, j int, n int) RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT j % 2 = 0 AND j < n - 1 AND bench_u((seq * 1024 + j) * 16 + 2) < 0.2
$$;
"""
HELPER_NAMES = ("bench_h(bigint)", "bench_u(bigint)", "bench_pick(text[], bigint)",
                "bench_some(text[], bigint, integer)",
                "bench_t(timestamptz, double precision, integer, bigint, integer)", "bench_msgid(bigint, integer)",
                "bench_internal(bigint, integer, integer)")

# Ticket-level random numbers use keys -(seq * 16 + k); thread-level ones (seq * 1024 + j) * 16 + k.
PLAN_SQL = r"""
CREATE UNLOGGED TABLE bench_plan AS
WITH w AS (
    SELECT g::bigint AS seq, -ln(1 - bench_u(-(g * 16 + 1))) AS w FROM generate_series(1, %(tickets)s) g
), c AS MATERIALIZED (
    SELECT seq, sum(w) OVER (ORDER BY seq) AS cw, sum(w) OVER () AS tw FROM w
), n AS (  -- 1 + an exponential share of the extra threads, rounded so that the total is exact
    SELECT seq, (1 + round(%(extra)s * cw / tw)
                   - round(%(extra)s * coalesce(lag(cw) OVER (ORDER BY seq), 0) / tw))::int AS n
      FROM c
), b AS MATERIALIZED (  -- (materialized: a flattened stage would re-evaluate its expressions per use)
    SELECT seq, n,
           -- newer tickets are denser; numbers follow creation time
           %(now)s - make_interval(secs => %(days)s * 86400.0
                                           * power(1 - (seq - 0.5) / %(tickets)s::float8, 1.3)) AS created,
           1 + floor(%(customers)s * power(bench_u(-(seq * 16 + 3)), 1.3))::int AS cust,
           CASE WHEN bench_u(-(seq * 16 + 4)) < 0.7 THEN 1 + bench_h(-(seq * 16 + 5)) %% %(assignees)s END AS agent,
           bench_u(-(seq * 16 + 6)) AS u_status,
           bench_u(-(seq * 16 + 7)) AS u_tag,
           CASE WHEN bench_u(-(seq * 16 + 8)) < 0.6 THEN bench_pick(%(categories)s, -(seq * 16 + 8)) END AS category,
           CASE WHEN bench_u(-(seq * 16 + 9)) < 0.03 THEN 'portal' ELSE 'email' END AS source,
           bench_u(-(seq * 16 + 10)) < 0.005 AS quarantined,
           seq > 1 AND bench_u(-(seq * 16 + 11)) < 0.01 AS merged,
           format(bench_pick(%(subjects)s, -(seq * 16 + 12)), (100000 + bench_h(-(seq * 16 + 13)) %% 900000)::text,
                  bench_pick(%(plans)s, -(seq * 16 + 14)), (20000 + seq)::text) AS subject,
           bench_u(-(seq * 16 + 2)) AS u_span
      FROM n
), s AS MATERIALIZED (
    SELECT *, least(n * 3600.0 * (0.5 + 10 * u_span), extract(epoch FROM %(now)s - created) * 0.95) AS span_s FROM b
), t AS MATERIALIZED (
    SELECT *,
           bench_t(created, span_s, n, seq, n) AS t_last,
           bench_t(created, span_s, n, seq, CASE WHEN n %% 2 = 1 THEN n ELSE n - 1 END) AS t_in,
           CASE WHEN n >= 2
                THEN bench_t(created, span_s, n, seq, CASE WHEN n %% 2 = 0 THEN n ELSE n - 1 END) END AS t_out
      FROM s
), st AS MATERIALIZED (
    SELECT *, CASE
        WHEN merged AND NOT quarantined THEN 'closed'
        WHEN n %% 2 = 1 THEN  -- the customer wrote last
            CASE WHEN %(now)s - t_last < interval '10 days'
                 THEN CASE WHEN u_status < 0.9 THEN 'open' ELSE 'resolved' END
                 WHEN u_status < 0.02 THEN 'open' WHEN u_status < 0.2 THEN 'resolved' ELSE 'closed' END
        ELSE                  -- an agent answered last
            CASE WHEN %(now)s - t_last < interval '7 days'
                 THEN CASE WHEN u_status < 0.75 THEN 'pending' ELSE 'resolved' END
                 WHEN u_status < 0.005 THEN 'pending' WHEN u_status < 0.2 THEN 'resolved' ELSE 'closed' END
        END AS status
      FROM t
)
SELECT seq, md5('t' || seq)::uuid AS id, n, created, span_s, cust, agent, status, t_in, t_out, t_last,
       CASE WHEN status IN ('resolved', 'closed')
            THEN least(%(now)s, t_last + make_interval(secs => 3600 * 30 * u_status)) ELSE t_last END AS updated,
       CASE WHEN u_tag < 0.2 THEN ARRAY[bench_pick(%(tags)s, -(seq * 16 + 7))]
            WHEN u_tag < 0.3 THEN ARRAY[(%(tags)s)[1 + bench_h(-(seq * 16 + 7)) %% cardinality(%(tags)s)],
                                        (%(tags)s)[1 + (bench_h(-(seq * 16 + 7)) + 1 + bench_h(-(seq * 16 + 15)) %% 5)
                                                   %% cardinality(%(tags)s)]]
            ELSE '{}'::text[] END AS tags,
       category, source, quarantined AND NOT merged AS quarantined,
       CASE WHEN merged AND NOT quarantined THEN md5('t' || (seq - 1))::uuid END AS merged_into, subject
  FROM st
"""

THREADS_SQL = r"""
INSERT INTO threads (ticket_id, direction, source, customer_id, sender_email, sender_name, authored_by, subject,
                     body_html, body_text, stripped_text, rfc_message_id, postmark_message_id, in_reply_to,
                     "references", spam_score, quarantined, created_at)
SELECT ticket_id, dir, CASE WHEN dir = 'inbound' THEN tsource ELSE 'console' END,
       CASE WHEN dir = 'inbound' THEN cid END,
       CASE dir WHEN 'inbound' THEN email WHEN 'outbound' THEN %(support)s END,
       CASE dir WHEN 'inbound' THEN cname WHEN 'outbound' THEN (%(agent_names)s)[helper] END,
       CASE WHEN dir <> 'inbound' THEN md5('a' || helper)::uuid END,
       CASE WHEN j = 1 THEN subject ELSE 'Re: ' || subject END,
       CASE WHEN dir = 'internal' THEN ''
            ELSE '<div dir="ltr" style="font-family:Arial,Helvetica,sans-serif;font-size:14px"><p>'
                 || replace(replace(txt, E'\n\n', '</p><p>'), E'\n', '<br>') || '</p>'
                 || CASE WHEN dir = 'inbound' AND bench_u(k + 12) < 0.05
                         THEN '<p><img src="https://t.mailtrack-example.com/o/' || md5(k::text)
                              || '.gif" width="1" height="1" alt=""></p>' ELSE '' END
                 || '</div>'
                 || CASE WHEN quote <> ''
                         THEN '<blockquote type="cite" style="margin:0 0 0 .8ex;border-left:1px #ccc solid;'
                              || 'padding-left:1ex">'
                         || '<p>' || replace(replace(replace(replace(btrim(quote, E'\n'), '<', '&lt;'), '>', '&gt;'),
                                                     E'\n\n', '</p><p>'), E'\n', '<br>')
                         || '</p></blockquote>' ELSE '' END
       END,
       txt || quote, txt,
       CASE WHEN dir <> 'internal' THEN bench_msgid(seq, j) END,
       CASE WHEN dir = 'inbound' AND tsource = 'email' THEN md5('pm' || k)::uuid::text END,
       CASE WHEN dir <> 'internal' AND j > 1 THEN bench_msgid(seq, prev_j) END,
       CASE WHEN dir <> 'internal' AND j > 1 THEN bench_msgid(seq, prev_j) END,
       CASE WHEN dir = 'inbound' AND tsource = 'email' THEN round((bench_u(k + 11) * 2.5)::numeric, 2) END,
       dir = 'inbound' AND tquarantined,
       at
  FROM (
    SELECT s0.*,
           CASE dir
             WHEN 'inbound' THEN
                 bench_pick(%(c_greet)s, k + 3) || E'\n\n'
                 || CASE WHEN j = 1 THEN bench_pick(%(c_open)s, k + 4) ELSE bench_pick(%(c_follow)s, k + 4) END || ' '
                 || bench_some(%(c_mid)s, k + 5, 2 + (bench_h(k + 9) %% 3)::int) || E'\n\n'
                 || bench_pick(%(c_sign)s, k + 10) || E'\n' || cfirst
             WHEN 'outbound' THEN
                 'Hi ' || cfirst || E',\n\n' || bench_pick(%(a_open)s, k + 3) || ' '
                 || bench_some(%(a_mid)s, k + 5, 2 + (bench_h(k + 9) %% 2)::int) || E'\n\n'
                 || bench_pick(%(a_close)s, k + 4) || E'\n\nBest,\n' || (%(agent_first)s)[helper] || E'\n'
                 || %(brand)s || ' Support'
             ELSE bench_pick(%(notes)s, k + 3)
                  || CASE WHEN bench_u(k + 4) < 0.5 THEN ' ' || bench_pick(%(notes)s, k + 5) ELSE '' END
           END AS txt,
           CASE WHEN j > 1 AND dir <> 'internal' THEN
                 E'\n\nOn ' || to_char(prev_at AT TIME ZONE 'UTC', 'Dy, DD Mon YYYY "at" HH24:MI') || ', '
                 || CASE WHEN dir = 'inbound' THEN %(brand)s || ' Support <' || %(support)s || '>'
                         ELSE cname || ' <' || email || '>' END
                 || E' wrote:\n\n> '
                 || CASE WHEN dir = 'inbound'
                         THEN bench_pick(%(a_mid)s, k + 13) || E'\n> ' || bench_pick(%(a_close)s, k + 14)
                         ELSE bench_pick(%(c_mid)s, k + 13) || E'\n> ' || bench_pick(%(c_mid)s, k + 14) END
           ELSE '' END AS quote
      FROM (
        SELECT p.id AS ticket_id, p.seq, g.j, p.n, p.subject, p.quarantined AS tquarantined, p.source AS tsource,
               c.id AS cid, c.email, c.display_name AS cname, split_part(c.display_name, ' ', 1) AS cfirst,
               coalesce(p.agent, 1 + bench_h((p.seq * 1024 + g.j) * 16 + 1) %% %(assignees)s)::int AS helper,
               CASE WHEN g.j %% 2 = 1 THEN 'inbound' WHEN bench_internal(p.seq, g.j, p.n) THEN 'internal'
                    ELSE 'outbound' END AS dir,
               CASE WHEN g.j %% 2 = 1 AND bench_internal(p.seq, g.j - 1, p.n) THEN g.j - 2 ELSE g.j - 1 END AS prev_j,
               bench_t(p.created, p.span_s, p.n, p.seq, g.j) AS at,
               CASE WHEN g.j > 1 THEN bench_t(p.created, p.span_s, p.n, p.seq, g.j - 1) END AS prev_at,
               (p.seq * 1024 + g.j) * 16 AS k
          FROM bench_plan p
          JOIN customers c ON c.id = md5('c' || p.cust)::uuid
          CROSS JOIN LATERAL generate_series(1, p.n) AS g(j)
         WHERE p.seq BETWEEN %(lo)s AND %(hi)s
        OFFSET 0
      ) s0
    OFFSET 0
  ) s1
"""

TICKETS_SQL = r"""
INSERT INTO tickets (id, seq, customer_id, assigned_to, status, subject, tags, category, source, quarantined,
                     quarantine_reason, merged_into_id, created_at, updated_at, closed_at, status_changed_at,
                     last_customer_reply_at, last_agent_reply_at, search_document)
SELECT p.id, p.seq, md5('c' || p.cust)::uuid, CASE WHEN p.agent IS NOT NULL THEN md5('a' || p.agent)::uuid END,
       p.status, p.subject, p.tags, p.category, p.source, p.quarantined, CASE WHEN p.quarantined THEN 'spam' END,
       p.merged_into, p.created, p.updated, CASE WHEN p.status = 'closed' THEN p.updated END,
       CASE WHEN p.status IN ('open', 'pending') THEN p.t_last ELSE p.updated END, p.t_in, p.t_out,
       {document}
  FROM bench_plan p
  {join}
 WHERE p.seq BETWEEN %(lo)s AND %(hi)s
"""
# The search document as the migration's echo_rebuild_search_documents() builds it, in the same pass.
DOCUMENT_JOIN = """LEFT JOIN (SELECT ticket_id, echo_tsvector_agg(search_vector ORDER BY created_at, id) AS doc
                    FROM threads WHERE ticket_id IN (SELECT id FROM bench_plan WHERE seq BETWEEN %(lo)s AND %(hi)s)
                   GROUP BY ticket_id) d ON d.ticket_id = p.id"""
DOCUMENT = "setweight(to_tsvector('english'::regconfig, p.subject), 'A') || coalesce(d.doc, ''::tsvector)"

OUTBOX_SQL = [r"""
INSERT INTO outbox (kind, ticket_id, thread_id, to_email, context, state, attempts, last_error, message_id,
                    postmark_message_id, created_at, next_attempt_at, attempted_at, sent_at, delivered_at)
SELECT 'reply', th.ticket_id, th.id, c.email, '{}'::jsonb, x.state, 1,
       CASE WHEN x.state = 'failed'
            THEN 'Postmark 406: You tried to send to recipient(s) that have been marked as inactive.' END,
       th.rfc_message_id, CASE WHEN x.state <> 'failed' THEN md5('po' || th.id)::uuid::text END,
       th.created_at, th.created_at, th.created_at,
       CASE WHEN x.state <> 'failed' THEN th.created_at + interval '2 seconds' END,
       CASE WHEN x.state = 'delivered' THEN th.created_at + interval '9 seconds' END
  FROM threads th
  JOIN tickets t ON t.id = th.ticket_id
  JOIN customers c ON c.id = t.customer_id
  CROSS JOIN LATERAL (SELECT CASE WHEN bench_u(hashtext(th.id::text)) < 0.004 THEN 'failed'
                                  WHEN th.created_at > %(now)s - interval '1 day' THEN 'sent'
                                  ELSE 'delivered' END AS state) x
 WHERE th.direction = 'outbound'
""", r"""
INSERT INTO outbox (kind, ticket_id, to_email, context, state, attempts, last_error, message_id, postmark_message_id,
                    created_at, next_attempt_at, attempted_at, sent_at, delivered_at)
SELECT 'acknowledgement', t.id, c.email, '{}'::jsonb, x.state, 1,
       CASE WHEN x.state = 'failed' THEN 'Postmark 300: Invalid email request.' END,
       '<' || md5('ack' || t.seq) || '@raxx.app>',
       CASE WHEN x.state <> 'failed' THEN md5('pa' || t.seq)::uuid::text END,
       t.created_at + interval '3 seconds', t.created_at + interval '3 seconds', t.created_at + interval '3 seconds',
       CASE WHEN x.state <> 'failed' THEN t.created_at + interval '4 seconds' END,
       CASE WHEN x.state = 'delivered' THEN t.created_at + interval '12 seconds' END
  FROM tickets t
  JOIN customers c ON c.id = t.customer_id
  CROSS JOIN LATERAL (SELECT CASE WHEN bench_u(-(t.seq * 16 + 13)) < 0.003 THEN 'failed' ELSE 'delivered' END
                             AS state) x
 WHERE t.source = 'email' AND bench_u(-(t.seq * 16 + 14)) < 0.7
"""]

EXTRAS_SQL = [r"""
INSERT INTO attachments (thread_id, filename, content_type, size_bytes, s3_key, sha256, created_at)
SELECT th.id, (%(att_names)s)[1 + x.i], (%(att_types)s)[1 + x.i], 20000 + bench_h(hashtext(th.id::text) + 1) %% 2000000,
       'attachments/bench/' || th.id, encode(sha256(th.id::text::bytea), 'hex'), th.created_at
  FROM threads th
  CROSS JOIN LATERAL (SELECT (bench_h(hashtext(th.id::text)) %% cardinality(%(att_names)s))::int AS i) x
 WHERE th.direction = 'inbound' AND bench_u(hashtext(th.id::text) + 7) < 0.04
""",
# An assignee opened their ticket when they last answered it (or when it came in), so a later
# customer message makes it unread; the demo agent has also read some tickets of the others.
r"""
INSERT INTO ticket_reads (agent_id, ticket_id, read_at)
SELECT t.assigned_to, t.id, least(%(now)s, coalesce(t.last_agent_reply_at, t.created_at) + interval '5 minutes')
  FROM tickets t WHERE t.assigned_to IS NOT NULL AND bench_u(-(t.seq * 16 + 15) + 3) < 0.6
""", r"""
INSERT INTO ticket_reads (agent_id, ticket_id, read_at)
SELECT md5('a1')::uuid, t.id, t.updated_at
  FROM tickets t WHERE t.assigned_to IS DISTINCT FROM md5('a1')::uuid AND bench_u(-(t.seq * 16 + 15) + 5) < 0.1
"""]


ARRAY_PARAMS = ("categories", "subjects", "plans", "tags", "agent_names", "agent_first", "c_greet", "c_open",
                "c_follow", "c_mid", "c_sign", "a_open", "a_mid", "a_close", "notes", "att_names", "att_types",
                "drafts",
                "first", "last", "domains")


def sql_arrays(sql: str) -> str:
    """Every list parameter typed as text[] (subscripts and function lookups need the type)."""
    return re.sub(r"%\((" + "|".join(ARRAY_PARAMS) + r")\)s", r"%(\1)s::text[]", sql)


def seed_params(args, now) -> dict:
    return {
        "tickets": args.tickets, "extra": args.threads - args.tickets, "now": now, "days": 365,
        "customers": args.customers, "assignees": ASSIGNEES, "categories": CATEGORIES, "subjects": SUBJECTS,
        "plans": PLANS, "tags": TAGS, "support": SUPPORT, "brand": BRAND,
        "agent_names": [name for _e, name, _r, _a in AGENTS],
        "agent_first": [name.split()[0] for _e, name, _r, _a in AGENTS],
        "c_greet": C_GREET, "c_open": C_OPEN, "c_follow": C_FOLLOW, "c_mid": C_MID, "c_sign": C_SIGN,
        "a_open": A_OPEN, "a_mid": A_MID, "a_close": A_CLOSE, "notes": NOTES,
        "att_names": [a for a, _t in ATTACHMENTS], "att_types": [t for _a, t in ATTACHMENTS],
    }


def table_columns(conn, table: str) -> list[tuple[str, str, bool, bool]]:
    """(name, data type, nullable, has a default or is generated/identity) of a table's columns."""
    return [(name, dtype, nullable == "YES", default is not None or generated == "ALWAYS" or identity == "YES")
            for name, dtype, nullable, default, generated, identity in conn.execute(
                "SELECT column_name, data_type, is_nullable, column_default, is_generated, is_identity"
                "  FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
                " ORDER BY ordinal_position", (table,))]


SEEDED_COLUMNS = {
    "agents": {"id", "email", "display_name", "role", "active", "created_at"},
    "customers": {"id", "email", "display_name", "first_seen_at", "last_seen_at", "email_bounced"},
    "tickets": {"id", "seq", "customer_id", "assigned_to", "status", "subject", "tags", "category", "source",
                "quarantined", "quarantine_reason", "merged_into_id", "created_at", "updated_at", "closed_at",
                "status_changed_at", "last_customer_reply_at", "last_agent_reply_at", "search_document"},
    "threads": {"ticket_id", "direction", "source", "customer_id", "sender_email", "sender_name", "authored_by",
                "subject", "body_html", "body_text", "stripped_text", "rfc_message_id", "postmark_message_id",
                "in_reply_to", "references", "spam_score", "quarantined", "created_at"},
    "outbox": {"kind", "ticket_id", "thread_id", "to_email", "context", "state", "attempts", "last_error",
               "message_id", "postmark_message_id", "created_at", "next_attempt_at", "attempted_at", "sent_at",
               "delivered_at"},
    "attachments": {"thread_id", "filename", "content_type", "size_bytes", "s3_key", "sha256", "created_at"},
    "ticket_reads": {"agent_id", "ticket_id", "read_at"},
}


def check_schema(conn) -> None:
    """Every NOT NULL column without a default of the seeded tables is one the seed fills (a tree that added
    one would otherwise fail half-way through the seed)."""
    problems = []
    for table, seeded in SEEDED_COLUMNS.items():
        columns = table_columns(conn, table)
        if not columns:
            problems.append(f"table {table} is missing")
        problems += [f"{table}.{name} ({dtype})" for name, dtype, nullable, has_default in columns
                     if not nullable and not has_default and name not in seeded]
    if problems:
        raise RuntimeError("the seed does not fill these NOT NULL columns of the candidate's schema: "
                           + ", ".join(problems))


TYPE_DEFAULTS = {"text": "''", "character varying": "''", "boolean": "false", "integer": "0", "bigint": "0",
                 "smallint": "0", "uuid": "gen_random_uuid()", "jsonb": "'{}'::jsonb", "json": "'{}'::json",
                 "ARRAY": "'{}'", "timestamp with time zone": "%(now)s", "numeric": "0"}


def drafts_sql(conn, count: int) -> tuple[str | None, str]:
    """The INSERT for `ticket_drafts` built from its real columns, or (None, why not)."""
    columns = table_columns(conn, "ticket_drafts")
    if not columns:
        return None, "no ticket_drafts table in the candidate's schema"
    names = {name for name, *_ in columns}
    if not {"agent_id", "ticket_id"} <= names:
        return None, f"ticket_drafts has no agent_id/ticket_id columns ({sorted(names)})"
    known = {
        "agent_id": "md5('a' || (1 + (pick.rn %% %(assignees)s)))::uuid",
        "ticket_id": "pick.id",
        "body_text": "bench_pick(%(drafts)s, pick.seq) || ' ' || bench_pick(%(a_close)s, pick.seq + 1)",
        "updated_at": "%(now)s - make_interval(secs => 86400 * 3 * bench_u(pick.seq + 77))",
        "created_at": "%(now)s - make_interval(secs => 86400 * 4 * bench_u(pick.seq + 77))",
    }
    known["body"] = known["text"] = known["body_text"]
    fill, skipped = {}, []
    for name, dtype, nullable, has_default in columns:
        if name in known:
            fill[name] = known[name]
        elif not nullable and not has_default:
            if dtype not in TYPE_DEFAULTS:
                return None, f"ticket_drafts.{name} is NOT NULL of type {dtype}, which the seed cannot fill"
            fill[name] = TYPE_DEFAULTS[dtype]
        else:
            skipped.append(name)
    # Half of the drafts sit on the newest active tickets (the inbox's first pages), half anywhere live.
    sql = f"""
    INSERT INTO ticket_drafts ({', '.join(f'"{n}"' for n in fill)})
    SELECT {', '.join(fill.values())}
      FROM (SELECT id, seq, row_number() OVER () AS rn FROM (
              (SELECT id, seq FROM tickets WHERE status IN ('open', 'pending') AND merged_into_id IS NULL
                  AND NOT quarantined ORDER BY coalesce(last_customer_reply_at, created_at) DESC LIMIT %(newest)s)
              UNION
              (SELECT id, seq FROM tickets WHERE merged_into_id IS NULL ORDER BY bench_h(seq + 91) LIMIT %(newest)s)
           ) u LIMIT %(count)s) pick
    """
    return sql, f"columns {list(fill)}" + (f"; left to their defaults: {skipped}" if skipped else "")


def seed(dsn: str, args) -> dict:
    """Fill the migrated database. Returns the timings and what the timing children need."""
    import psycopg

    sys.path.insert(0, str(BENCH))
    from search_seed import rebuild_indexes, schema_snapshot, secondary_indexes

    stats: dict = {}
    t_all = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        now = conn.execute("SELECT date_trunc('second', now())").fetchone()[0]
        params = seed_params(args, now)
        superuser = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]
        if not superuser:
            raise RuntimeError("seeding skips the FK and search-document triggers (session_replication_role = "
                               "replica), which needs a superuser role")
        check_schema(conn)
        before = schema_snapshot(conn)
        dropped = secondary_indexes(conn, ("tickets", "threads"))
        for _table, name, _ddl in dropped:
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(HELPERS)
        conn.execute("SET jit = off")
        has_documents = conn.execute("SELECT to_regprocedure('echo_tsvector_agg(tsvector)') IS NOT NULL").fetchone()[0]

        t0 = time.perf_counter()
        conn.execute("SET session_replication_role = replica")
        conn.execute(
            "INSERT INTO agents (id, email, display_name, role, active, created_at) "
            "SELECT md5('a' || k)::uuid, a.email, a.name, a.role, a.active, %(now)s - interval '400 days' "
            "  FROM unnest(%(emails)s::text[], %(names)s::text[], %(roles)s::text[], %(actives)s::bool[]) "
            "       WITH ORDINALITY AS a(email, name, role, active, k)",
            {"now": now, "emails": [a[0] for a in AGENTS], "names": [a[1] for a in AGENTS],
             "roles": [a[2] for a in AGENTS], "actives": [a[3] for a in AGENTS]})
        conn.execute(sql_arrays(
            "INSERT INTO customers (id, email, display_name, first_seen_at, last_seen_at, email_bounced) "
            "SELECT md5('c' || i)::uuid, lower(f || CASE i %% 3 WHEN 0 THEN '.' || l WHEN 1 THEN '' ELSE l END) || i "
            "       || '@' || d, f || ' ' || l, %(now)s - make_interval(days => 380 + i %% 300), "
            "       %(now)s - make_interval(secs => 86400 * 30 * bench_u(i + 5)), bench_u(i + 6) < 0.01 "
            "  FROM generate_series(1, %(customers)s) i, "
            "       LATERAL (SELECT bench_pick(%(first)s, i) AS f, bench_pick(%(last)s, i + 1) AS l, "
            "                       bench_pick(%(domains)s, i + 2) AS d) x"),
            {"now": now, "customers": args.customers, "first": FIRST, "last": LAST, "domains": DOMAINS})
        conn.execute(sql_arrays(PLAN_SQL), params)
        conn.execute("ANALYZE bench_plan")
        stats["plan_s"] = round(time.perf_counter() - t0, 1)

        def parallel(sql: str, label: str) -> float:
            """Run `sql` on two connections at once, each over half of the tickets (2 cores)."""
            t = time.perf_counter()
            halves = [(1, args.tickets // 2), (args.tickets // 2 + 1, args.tickets)]
            errors: list[BaseException] = []

            def run(lo: int, hi: int) -> None:
                try:
                    with psycopg.connect(dsn, autocommit=True) as c:
                        c.execute("SET session_replication_role = replica")
                        c.execute("SET synchronous_commit = off")
                        c.execute("SET work_mem = '512MB'")
                        c.execute("SET jit = off")
                        c.execute(sql_arrays(sql), {**params, "lo": lo, "hi": hi})
                except BaseException as exc:  # noqa: BLE001
                    errors.append(exc)

            workers = [threading.Thread(target=run, args=half, daemon=True) for half in halves]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            if errors:
                raise RuntimeError(f"{label}: {errors[0]}") from errors[0]
            return round(time.perf_counter() - t, 1)

        log(f"  threads ({args.threads:,}) ...")
        stats["threads_s"] = parallel(THREADS_SQL, "threads")
        document = has_documents and args.documents
        log(f"  tickets ({args.tickets:,}){' with their search documents' if document else ''} ...")
        stats["tickets_s"] = parallel(TICKETS_SQL.format(document=DOCUMENT if document else "''::tsvector",
                                                         join=DOCUMENT_JOIN if document else ""), "tickets")
        stats["search_documents"] = bool(document)
        conn.execute("SELECT setval('ticket_number_seq', %s)", (args.tickets,))

        t0 = time.perf_counter()
        conn.execute("SET work_mem = '256MB'")
        for sql in (*OUTBOX_SQL, *EXTRAS_SQL):
            conn.execute(sql_arrays(sql), params)
        sql, why = drafts_sql(conn, args.drafts)
        if sql is not None and args.drafts > 0:
            conn.execute(sql_arrays(sql), {**params, "drafts": DRAFTS, "count": args.drafts, "newest": args.drafts})
            stats["drafts"] = conn.execute("SELECT count(*) FROM ticket_drafts").fetchone()[0]
        else:
            stats["drafts"] = 0
        stats["drafts_note"] = why if args.drafts > 0 else "--drafts 0"
        conn.execute("RESET session_replication_role")
        stats["outbox_extras_s"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        conn.execute("DROP TABLE bench_plan")
        for name in HELPER_NAMES:
            conn.execute(f"DROP FUNCTION {name}")
    log(f"  indexes ({len(dropped)}) ...")
    rebuild_indexes(dsn, dropped, maintenance_work_mem="1GB")
    stats["indexes_s"] = round(time.perf_counter() - t0, 1)
    with psycopg.connect(dsn, autocommit=True) as conn:
        after = schema_snapshot(conn)
        if after != before:
            diff = set(before["indexes"]) ^ set(after["indexes"])
            raise RuntimeError(f"the schema after seeding differs from the migrated one: {sorted(diff)[:5]}")
        orphans = conn.execute(
            "SELECT (SELECT count(*) FROM threads th"
            "         WHERE NOT EXISTS (SELECT 1 FROM tickets t WHERE t.id = th.ticket_id))"
            "     + (SELECT count(*) FROM tickets t"
            "         WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = t.customer_id))"
            "     + (SELECT count(*) FROM tickets t WHERE t.assigned_to IS NOT NULL"
            "          AND NOT EXISTS (SELECT 1 FROM agents a WHERE a.id = t.assigned_to))").fetchone()[0]
        if orphans:
            raise RuntimeError(f"{orphans} seeded rows reference missing rows")
        t0 = time.perf_counter()
        conn.execute("SET maintenance_work_mem = '1GB'")
        conn.execute("VACUUM ANALYZE")
        stats["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
        stats.update(describe(conn))
    stats["seed_s"] = round(time.perf_counter() - t_all, 1)
    return stats


def describe(conn) -> dict:
    """Row counts, statuses, message kinds and lengths, and size of the seeded database."""
    stats: dict = {"rows": dict(conn.execute(
        "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname = ANY(%s) ORDER BY 1",
        (["customers", "agents", "tickets", "threads", "outbox", "attachments", "ticket_reads", "ticket_drafts"],)))}
    stats["rows"]["tickets"], stats["rows"]["threads"] = conn.execute(
        "SELECT (SELECT count(*) FROM tickets), (SELECT count(*) FROM threads)").fetchone()
    stats["drafts"] = stats["rows"].get("ticket_drafts", 0)
    stats["statuses"] = dict(conn.execute("SELECT status, count(*) FROM tickets GROUP BY 1 ORDER BY 1"))
    stats["directions"] = dict(conn.execute("SELECT direction, count(*) FROM threads GROUP BY 1 ORDER BY 1"))
    stats["text_chars"] = [round(float(x)) for x in conn.execute(
        "SELECT avg(length(stripped_text)), avg(length(body_text)), avg(length(body_html)) FROM threads "
        "WHERE ctid < '(2000,0)'::tid").fetchone()]
    stats["database_mb"] = round(conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20)
    return stats


def samples(dsn: str, count: int) -> dict:
    """What the children request and expect: ticket numbers with 5-20 threads, and each inbox view's rows."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        tickets = [[number, n] for number, n in conn.execute(
            "SELECT t.number, x.n FROM tickets t CROSS JOIN LATERAL "
            "  (SELECT count(*) AS n FROM threads th WHERE th.ticket_id = t.id) x "
            " WHERE t.merged_into_id IS NULL AND x.n BETWEEN 5 AND 20 "
            " ORDER BY hashint8(t.seq * 7919) LIMIT %s", (count,))]
        live = "merged_into_id IS NULL AND NOT quarantined"
        active, mine, pending = conn.execute(
            f"SELECT count(*) FILTER (WHERE status IN ('open', 'pending')), "
            f"       count(*) FILTER (WHERE status IN ('open', 'pending') AND assigned_to = "
            f"                        (SELECT id FROM agents WHERE email = %s)), "
            f"       count(*) FILTER (WHERE status = 'pending') FROM tickets WHERE {live}", (DEMO_AGENT,)).fetchone()
    if not tickets:
        raise RuntimeError("no ticket has 5-20 threads: seed more threads per ticket")
    rows = {"inbox": min(PER_PAGE, active), "mine": min(PER_PAGE, mine),
            "page3": max(0, min(PER_PAGE, active - 2 * PER_PAGE)), "pending_waiting": min(PER_PAGE, pending)}
    return {"tickets": tickets, "expected_rows": rows,
            "totals": {"active": active, "mine_active": mine, "pending": pending}}


# ================================================================================================
# The parent: trees, rounds, report
# ================================================================================================

class Child:
    """A timing child in its own process group (ended with its group on any exit)."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None

    def run(self, cmd: list[str], env: dict, cwd: str, logfile: Path, timeout: float) -> int:
        with open(logfile, "ab") as out:
            self.proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
            try:
                return self.proc.wait(timeout)
            finally:
                self.stop()

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(10)
            except (ProcessLookupError, PermissionError, subprocess.TimeoutExpired):
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait(5)


CHILD = Child()


def tree_env(src: Path, pgoptions: str = "") -> dict:
    """The environment a tree's processes run with (as worker_cpu.echo_env: Echo from `src`)."""
    env = dict(os.environ)
    if pgoptions:
        env["PGOPTIONS"] = pgoptions
    for var in ("WEB_CONCURRENCY", "PORT", "DATABASE_URL", "REDIS_URL"):
        env.pop(var, None)
    env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave the trees as they are
    env["PYTHONUNBUFFERED"] = "1"
    return env


def tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def migrate(src: Path, dsn: str, tmp: Path) -> float:
    t0 = time.perf_counter()
    code = ("import sys, echo; from pathlib import Path; "
            "assert Path(sys.argv[2]).resolve() in Path(echo.__file__).resolve().parents, echo.__file__; "
            "from echo import migrate; from echo.config import normalize_database_url; "
            "migrate.upgrade(normalize_database_url(sys.argv[1]))")
    logfile = tmp / "migrate.log"
    rc = CHILD.run([sys.executable, "-c", code, dsn, str(src)], tree_env(src), str(src), logfile, 600)
    if rc != 0:
        raise RuntimeError(f"migrating with {src} failed (exit {rc}):\n{tail(logfile)}")
    return time.perf_counter() - t0


def add_baseline_indexes(base_src: Path, dsn: str, admin: str, tmp: Path, database_class) -> list[str]:
    """Give the baseline its own indexes in the one seeded database: the seed follows the candidate's
    migrations, and where the candidate changed an index (a new partial predicate), the baseline's
    queries would find nothing to use and look far slower than they are on their own schema. Each of
    the baseline's indexes that is missing, or defined otherwise, is built too (as `base_<name>` when the
    name is taken); reading is all the benchmark does, so an extra index changes nothing for the other
    tree. Returns the names built."""
    import psycopg

    scratch = database_class(admin)
    scratch.name = scratch.name.replace(database_class.PREFIX, database_class.PREFIX + "base_")
    scratch.dsn = scratch.dsn.rsplit("/", 1)[0] + "/" + scratch.name
    query = ("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT IN "
             "(SELECT conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace)")
    try:
        scratch.create()
        migrate(base_src, scratch.dsn, tmp)
        with psycopg.connect(scratch.dsn, autocommit=True) as conn:
            wanted = dict(conn.execute(query).fetchall())
    finally:
        scratch.drop()
    built = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = dict(conn.execute(query).fetchall())
        conn.execute("SET maintenance_work_mem = '1GB'")
        for name, definition in sorted(wanted.items()):
            if have.get(name) == definition:
                continue
            new_name = name if name not in have else f"base_{name}"[:63]
            conn.execute(definition.replace(f"INDEX {name} ON", f"INDEX {new_name} ON", 1))
            built.append(new_name)
        if built:
            conn.execute("ANALYZE tickets")
    return built


def measure(label: str, src: Path, dsn: str, redis_url: str, plan: dict, args, tmp: Path, round_no: int,
            breakdown: bool) -> dict:
    config = {
        "src": str(src),
        "env": {"ECHO_ENV": "development", "DATABASE_URL": dsn, "REDIS_URL": redis_url,
                "ECHO_SECRET_KEY": secrets.token_hex(32), "SESSION_KEY": secrets.token_hex(32),
                "ECHO_SUPPORT_ADDRESS": SUPPORT, "ECHO_INSTANCE_PATH": str(tmp / f"instance-{label}"),
                "ECHO_STORAGE": "local", "POSTMARK_SERVER_TOKEN": "POSTMARK_API_TEST"},
        "tickets": plan["tickets"], "expected_rows": plan["expected_rows"],
        "warmup": args.warmup, "requests": args.requests, "seed": 1000 * round_no + len(label),
        "breakdown": args.breakdown if breakdown else 0, "explain": args.explain and breakdown,
        "out": str(tmp / f"result-{label}-{round_no}.json"),
    }
    config_path = tmp / f"config-{label}-{round_no}.json"
    config_path.write_text(json.dumps(config))
    logfile = tmp / f"child-{label}-{round_no}.log"
    t0 = time.perf_counter()
    rc = CHILD.run([sys.executable, str(Path(__file__).resolve()), "--child", str(config_path)],
                   tree_env(src, args.pgoptions), str(src), logfile, args.child_timeout)
    if rc != 0:
        raise RuntimeError(f"the {label} tree ({src}) failed (exit {rc}); its log {logfile}:\n{tail(logfile)}")
    result = json.loads(Path(config["out"]).read_text())
    result["elapsed_s"] = round(time.perf_counter() - t0, 1)
    pooled = [ms for page in PAGES for ms in result["times"][page]]
    result["stats"] = {page: summary(result["times"][page]) for page in PAGES}
    result["stats"]["overall"] = summary(pooled)
    return result


def export_base(rev: str, tmp: Path) -> Path:
    dest = tmp / f"echo-{rev}"
    dest.mkdir()
    archive = subprocess.Popen(["git", "-C", str(ROOT), "archive", rev], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    archive.stdout.close()
    if archive.wait() != 0:
        raise RuntimeError(f"git archive {rev} failed")
    return dest


def git_rev(src: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(src), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(src), "status", "--porcelain", "--", "echo", "migrations"],
                               capture_output=True, text=True, check=True).stdout.strip()
        top = subprocess.run(["git", "-C", str(src), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if Path(top).resolve() != src.resolve():
            return "not a git work tree"
        return rev + (" + uncommitted changes" if dirty else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "not a git work tree"


def report(result: dict, args) -> bool:
    rounds, trees = result["rounds"], ("baseline", "candidate")
    medians: dict = {tree: {} for tree in trees}
    for tree in trees:
        for page in (*PAGES, "overall"):
            medians[tree][page] = {k: round(statistics.median(r[tree]["stats"][page][k] for r in rounds), 2)
                                   for k in ("p50", "p95", "max")}
    ratios = {page: [round(r["candidate"]["stats"][page]["p95"] / r["baseline"]["stats"][page]["p95"], 3)
                     for r in rounds] for page in (*PAGES, "overall")}
    targets = []
    for page in (*PAGES, "overall"):
        p95 = medians["candidate"][page]["p95"]
        ratio = statistics.median(ratios[page])
        targets.append({"page": page, "p95_ms": p95, "p95_met": p95 < TARGET_P95_MS,
                        "ratio": round(ratio, 3), "ratio_met": ratio <= TARGET_RATIO})
    result["medians"], result["ratios"], result["targets"] = medians, ratios, targets
    ok = all(t["p95_met"] and t["ratio_met"] for t in targets)
    result["all_met"] = ok
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return ok

    seed, plan = result["seed"], result["plan"]
    print(f"\nConsole pages: {seed['rows']['tickets']:,} tickets, {seed['rows']['threads']:,} threads, "
          f"{seed['rows'].get('customers', 0):,} customers, {seed['drafts']:,} drafts; {os.cpu_count()} CPUs")
    print(f"  baseline:  {result['trees']['baseline']['src']} ({result['trees']['baseline']['rev']})")
    print(f"  candidate: {result['trees']['candidate']['src']} ({result['trees']['candidate']['rev']})")
    if args.use_db:
        print(f"  database reused (--use-db), {seed['database_mb']:,} MB")
    else:
        print(f"  seed {seed['seed_s']:.0f} s (migrate {result['migrate_s']:.0f}, plan {seed['plan_s']}, threads "
              f"{seed['threads_s']}, tickets {seed['tickets_s']}, outbox etc. {seed['outbox_extras_s']}, indexes "
              f"{seed['indexes_s']}, VACUUM ANALYZE {seed['vacuum_analyze_s']}); {seed['database_mb']:,} MB")
    print(f"  statuses {seed['statuses']}; threads {seed['directions']}; chars stripped/body/html "
          f"{seed['text_chars']}; drafts: {seed['drafts_note']}")
    print(f"  views: {plan['totals']}; ticket pages rotate over {len(plan['tickets'])} tickets with 5-20 threads")
    print(f"  {args.warmup} warm-up + {args.requests} timed requests per page and round, interleaved"
          + (f"; PGOPTIONS={args.pgoptions!r}" if args.pgoptions else "") + "\n")
    head = f"  {'page':16s} {'p50':>7s} {'p95':>7s} {'max':>7s}"
    for i, r in enumerate(rounds, 1):
        print(f"Round {i} (order: {', '.join(r['order'])})")
        print(f"  {'':16s} {'baseline ms':>23s}   {'candidate ms':>23s}   p95 ratio")
        print(head + "   " + head[19:])
        for page in (*PAGES, "overall"):
            b, c = r["baseline"]["stats"][page], r["candidate"]["stats"][page]
            print(f"  {page:16s} {b['p50']:7.1f} {b['p95']:7.1f} {b['max']:7.1f}   {c['p50']:7.1f} {c['p95']:7.1f} "
                  f"{c['max']:7.1f}   {c['p95'] / b['p95']:.3f}")
        for tree in trees:
            load = r[tree]["load"]
            print(f"  {tree}: {load['wall_s']} s timed, own CPU {load['own_cpu_s']} s, machine busy "
                  f"{load['machine_busy_cores']} cores")
            for note in r[tree]["notes"]:
                print(f"  {tree} note: {note}")
        print()
    print(f"Medians of {len(rounds)} rounds (ms)")
    print(f"  {'page':16s} {'baseline p50/p95/max':>22s}   {'candidate p50/p95/max':>22s}   "
          "p95 ratio per round  median")
    for page in (*PAGES, "overall"):
        b, c = medians["baseline"][page], medians["candidate"][page]
        print(f"  {page:16s} {b['p50']:6.1f} {b['p95']:6.1f} {b['max']:7.1f}   {c['p50']:6.1f} {c['p95']:6.1f} "
              f"{c['max']:7.1f}   {', '.join(f'{x:.3f}' for x in ratios[page]):20s} "
              f"{statistics.median(ratios[page]):.3f}")
    for tree in trees:
        breakdown = rounds[-1][tree].get("breakdown") or {}
        if not breakdown:
            continue
        print(f"\nWhere the {tree}'s time goes (last round, {args.breakdown} more requests per page, interleaved, "
              f"every SQL statement timed at the cursor; {breakdown['distinct_statements']} distinct statements; "
              "median per request, slowest statements)")
        for page in PAGES:
            b = breakdown[page]
            print(f"  {page:16s} {b['ms_p50']:6.1f} ms per request, {b['statements_p50']:g} statements, "
                  f"{b['sql_ms_p50']:.1f} ms in SQL")
            for s in b["slowest"][:3]:
                print(f"      {s['ms']:6.2f} ms  {s['sql'][:150]}")
            for p in b.get("plans", []):
                print(f"    EXPLAIN ANALYZE ({p['ms']} ms when timed): {p['sql'][:300]}")
                for mode in ("custom", "generic"):
                    print(f"      {mode} plan:\n        " + p[mode].replace("\n", "\n        "))
    print("\nTargets (candidate, median round)")
    for t in targets:
        print(f"  {t['page']:16s} p95 {t['p95_ms']:6.1f} ms < {TARGET_P95_MS:g} ms: "
              f"{'met' if t['p95_met'] else 'NOT MET':7s}   p95 ratio {t['ratio']:.3f} <= {TARGET_RATIO}: "
              f"{'met' if t['ratio_met'] else 'NOT MET'}")
    print(f"\n{'All targets met.' if ok else 'Some targets are NOT MET.'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--echo-src", type=Path, default=ROOT, help="the candidate tree (default: this repo)")
    parser.add_argument("--base-src", type=Path, help=f"the baseline tree (default: git archive {BASE_REV})")
    parser.add_argument("--base-rev", default=BASE_REV, help="what to export when --base-src is not given")
    parser.add_argument("--echo-rev", help="what to call the candidate in the report (default: its git HEAD)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--threads", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--drafts", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=200, help="timed requests per page and round")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests per page first")
    parser.add_argument("--ticket-samples", type=int, default=200, help="tickets the ticket page rotates over")
    parser.add_argument("--breakdown", type=int, default=20,
                        help="extra requests per page with SQL statements timed (0: none)")
    parser.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the slowest SELECTs of each page")
    parser.add_argument("--no-search-documents", dest="documents", action="store_false",
                        help="leave tickets.search_document empty (a faster seed; the pages do not search)")
    parser.add_argument("--keep", action="store_true", help="keep the database (its name is printed)")
    parser.add_argument("--use-db", metavar="DSN",
                        help="time against this already seeded database (from --keep) instead; it is not dropped")
    parser.add_argument("--pgoptions", default="",
                        help="PGOPTIONS for both trees' processes, e.g. '-c plan_cache_mode=force_custom_plan' "
                             "(an experiment: what a session setting would change)")
    parser.add_argument("--child-timeout", type=float, default=1800)
    parser.add_argument("--json", action="store_true", help="the report as JSON on stdout (logs on stderr)")
    parser.add_argument("--render", metavar="FILE", help="print the report of a run saved with --json again")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.child)
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        return 0 if report(saved, argparse.Namespace(**{**saved["settings"], "json": False})) else 1
    if args.threads < args.tickets:
        parser.error("--threads must be at least --tickets (every ticket has a message)")

    from redis import Redis

    sys.path.insert(0, str(BENCH))
    import benchdb

    class Database(benchdb.Database):
        PREFIX = "echo_console_bench_"

    def on_term(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    admin = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@localhost/postgres")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://localhost:6379/13")
    tmp = Path(tempfile.mkdtemp(prefix="echo-console-bench-"))
    database = Database(admin)
    redis = Redis.from_url(redis_url)
    candidate = args.echo_src.resolve()
    try:
        base = args.base_src.resolve() if args.base_src else export_base(args.base_rev, tmp)
        trees = {"baseline": {"src": str(base), "rev": git_rev(base) if args.base_src else args.base_rev},
                 "candidate": {"src": str(candidate), "rev": args.echo_rev or git_rev(candidate)}}
        for tree in trees.values():
            if not (Path(tree["src"]) / "echo" / "__init__.py").exists():
                raise SystemExit(f"{tree['src']} is not an Echo tree (no echo/__init__.py)")
        redis.flushdb()
        if args.use_db:
            import psycopg

            database.dsn, migrate_s = benchdb.admin_dsn(args.use_db), 0.0
            with psycopg.connect(database.dsn, autocommit=True) as conn:
                stats = {"seed_s": 0.0, "plan_s": 0, "threads_s": 0, "tickets_s": 0, "outbox_extras_s": 0,
                         "indexes_s": 0, "vacuum_analyze_s": 0, "drafts_note": "(reused)", **describe(conn)}
            log(f"reusing {database.dsn}")
        else:
            database.create()
            log(f"database {database.name}; migrating with {candidate}")
            migrate_s = migrate(candidate, database.dsn, tmp)
            log(f"seeding {args.tickets:,} tickets / {args.threads:,} threads / {args.customers:,} customers")
            stats = seed(database.dsn, args)
            log(f"seeded in {stats['seed_s']:.0f} s (+ migrate {migrate_s:.0f} s): {stats['database_mb']:,} MB, "
                f"statuses {stats['statuses']}, drafts {stats['drafts']}")
            built = add_baseline_indexes(Path(trees["baseline"]["src"]), database.dsn, admin, tmp, Database)
            stats["baseline_indexes"] = built
            log(f"baseline's own indexes built beside the candidate's: {', '.join(built) or 'none needed'}")
        if args.rounds < 1:
            print(json.dumps({"migrate_s": round(migrate_s, 1), "seed": stats}, indent=2, default=str))
            return 0
        plan = samples(database.dsn, args.ticket_samples)
        result = {"date": time.strftime("%Y-%m-%d %H:%M"), "trees": trees, "migrate_s": round(migrate_s, 1),
                  "seed": stats, "plan": {k: v for k, v in plan.items()},
                  "settings": {k: v for k, v in vars(args).items() if k not in ("child",)}, "rounds": []}
        for i in range(1, args.rounds + 1):
            order = ["baseline", "candidate"] if i % 2 else ["candidate", "baseline"]
            entry: dict = {"order": order}
            for label in order:
                log(f"round {i}/{args.rounds}: {label}")
                src = Path(trees[label]["src"])
                # SQL statements are timed (after the timed requests) in the last round only
                entry[label] = measure(label, src, database.dsn, redis_url, plan, args, tmp, i,
                                       breakdown=i == args.rounds)
                s = entry[label]["stats"]
                log("  " + ", ".join(f"{p} p50 {s[p]['p50']:.1f} / p95 {s[p]['p95']:.1f}" for p in PAGES))
            result["rounds"].append(entry)
        ok = report(result, args)
        return 0 if ok else 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        CHILD.stop()
        try:
            if args.keep and database.created:
                log(f"kept {database.dsn}")
            elif database.created:
                database.drop()
                log(f"dropped {database.name}")
        except Exception as exc:  # noqa: BLE001
            log(f"could not drop {database.name}: {exc}")
        try:
            redis.flushdb()
        except Exception:  # noqa: BLE001
            pass
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
