#!/usr/bin/env python
"""Benchmark Echo's ticket search on a realistic corpus against a FreeScout-style ILIKE scan.

    /work/venv/bin/python bench/search.py                          # 200 000 tickets / 1 000 000 threads
    /work/venv/bin/python bench/search.py --tickets 20000 --repeat 20   # a quick run
    /work/venv/bin/python bench/search.py --json > search.json
    /work/venv/bin/python bench/search.py --keep --explain         # keep the database, print query plans

One run: fresh database `echo_search_bench_<random>` -> Echo's migrations -> bulk COPY seed (see
bench/search_seed.py and bench/search_corpus.py) -> pick the queries of each class from the data ->
time Echo's own code path (`list_tickets(TicketFilters(q=...))`, ranked too, `shortcut`, the inbox
page) and the ILIKE baseline -> correctness checks -> report and targets -> drop the database
(also after an error, Ctrl-C or SIGTERM, unless --keep). See README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import search_corpus as corpus  # noqa: E402
import search_seed as seeding  # noqa: E402
from search_seed import log  # noqa: E402

TARGET_P95_MS = 20.0
TARGET_SPEEDUP = 100.0
TARGET_INBOX_P95_MS = 30.0
TARGET_CLASSES = ("common", "common-5%", "rare", "two-word")


def _on_sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def host_speed() -> float:
    """Milliseconds for a fixed pure-Python loop, best of 5: how fast this (virtual) machine is right now."""
    best = float("inf")
    for _ in range(5):
        t0 = time.perf_counter()
        total = 0
        for i in range(200_000):
            total += i * i % 7
        best = min(best, (time.perf_counter() - t0) * 1000)
    return round(best, 3)


def percentile(values: list[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100)."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(ms: list[float]) -> dict:
    return {"n": len(ms), "p50": percentile(ms, 50), "p95": percentile(ms, 95), "min": min(ms) if ms else None,
            "max": max(ms) if ms else None, "mean": statistics.fmean(ms) if ms else None}


def escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# ----------------------------------------------------------------------------------------------
# Machine load (the machine may be shared: report how busy it was while we measured)
# ----------------------------------------------------------------------------------------------

def _cpu_times() -> tuple[float, float]:
    with open("/proc/stat") as f:
        parts = [float(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0.0)
    return sum(parts), idle


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class LoadMeter:
    """Busy CPU share of the whole machine vs. this process + the given PostgreSQL backends."""

    def __init__(self, backend_pids=()):
        self.backend_pids = list(backend_pids)

    def __enter__(self):
        self.t0, self.total0, self.idle0 = time.monotonic(), *_cpu_times()
        self.ours0 = _proc_cpu(os.getpid()) + sum(_proc_cpu(p) for p in self.backend_pids)
        return self

    def __exit__(self, *exc):
        total, idle = _cpu_times()
        ours = _proc_cpu(os.getpid()) + sum(_proc_cpu(p) for p in self.backend_pids)
        ticks = os.sysconf("SC_CLK_TCK")
        wall = max(time.monotonic() - self.t0, 1e-9)
        ncpu = os.cpu_count() or 1
        busy = ((total - self.total0) - (idle - self.idle0)) / ticks
        self.result = {"wall_s": round(wall, 1), "cpus": ncpu,
                       "machine_busy_pct": round(100 * busy / (wall * ncpu), 1),
                       "ours_pct": round(100 * (ours - self.ours0) / (wall * ncpu), 1)}
        self.result["others_pct"] = round(max(0.0, self.result["machine_busy_pct"] - self.result["ours_pct"]), 1)
        return False


# ----------------------------------------------------------------------------------------------
# Query selection (from the seeded data) and the independent reference for correctness
# ----------------------------------------------------------------------------------------------

@dataclass
class Case:
    key: str                 # class name
    query: str               # what the agent types
    baseline_terms: list[str]  # ILIKE terms, ANDed (each across subject/body/email/number)
    note: str = ""
    exact_total: int | None = None
    exact_top: list = field(default_factory=list)
    thread_df: int | None = None


MATCHES_CTE = """
WITH m AS (
    SELECT id FROM tickets WHERE search_document @@ websearch_to_tsquery('english'::regconfig, %(q)s)
    UNION SELECT t.id FROM tickets t JOIN customers c ON c.id = t.customer_id
          WHERE c.search_vector @@ websearch_to_tsquery('simple'::regconfig, %(q)s) OR c.email ILIKE %(frag)s
    UNION SELECT id FROM tickets WHERE %(numbers)s AND number ILIKE %(frag)s
)
"""
# The reference trusts tickets.search_document for the words; DOCUMENTS_SQL checks, on a sample and
# on every planted ticket, that each document holds exactly the lexemes of its subject and messages.
DOCUMENTS_SQL = """
SELECT count(*) FILTER (WHERE NOT ok), count(*) FROM (
  SELECT t.id,
         (SELECT array_agg(DISTINCT l ORDER BY l) FROM unnest(tsvector_to_array(t.search_document)) l WHERE l <> ' ')
         IS NOT DISTINCT FROM
         (SELECT array_agg(DISTINCT l ORDER BY l) FROM (
             SELECT unnest(tsvector_to_array(to_tsvector('english'::regconfig, t.subject)))
             UNION ALL SELECT unnest(tsvector_to_array(th.search_vector))
                         FROM threads th WHERE th.ticket_id = t.id) x(l)
         ) AS ok
    FROM tickets t
   WHERE t.seq = ANY(%(seqs)s) OR t.id IN (SELECT id FROM tickets ORDER BY random() LIMIT 3000)
) s
"""
EXACT_SQL = MATCHES_CTE + """
SELECT t.id, t.updated_at, t.seq, count(*) OVER () AS total
  FROM tickets t JOIN m ON m.id = t.id
 WHERE t.merged_into_id IS NULL AND NOT t.quarantined
 ORDER BY t.updated_at DESC, t.seq DESC
 LIMIT 25
"""
MEMBERS_SQL = MATCHES_CTE + """
SELECT count(*) FROM tickets t JOIN m ON m.id = t.id
 WHERE t.id = ANY(%(ids)s) AND t.merged_into_id IS NULL AND NOT t.quarantined
"""


def match_params(query: str) -> dict:
    q = query.strip()
    # Echo matches ticket numbers (TKT-0042) only for queries with a digit or "tkt" in them.
    numbers = len(q) >= 3 and re.search(r"\d|tkt", q, re.IGNORECASE) is not None
    return {"q": q, "frag": f"%{escape_like(q.lower())}%", "numbers": numbers}


def exact_reference(conn, query: str) -> tuple[int, list]:
    """Echo's match semantics, every match counted: (total, first page ids). Mirrors echo/search/service.py."""
    rows = conn.execute(EXACT_SQL, match_params(query)).fetchall()
    return (rows[0][3] if rows else 0), [r[0] for r in rows]


def thread_df(conn, query: str, cap: int | None = None) -> int:
    inner = "SELECT 1 FROM threads WHERE search_vector @@ websearch_to_tsquery('english'::regconfig, %s)"
    if cap:
        inner += f" LIMIT {cap}"
    return conn.execute(f"SELECT count(*) FROM ({inner}) s", (query,)).fetchone()[0]


def ticket_df(conn, query: str) -> int:
    """Tickets matching the words anywhere in them (Echo's semantics), through the documents' GIN index."""
    return conn.execute("SELECT count(*) FROM tickets WHERE search_document @@ "
                        "websearch_to_tsquery('english'::regconfig, %s)", (query,)).fetchone()[0]


MCE_SQL = """
WITH mce AS (
    SELECT u.e, u.f FROM pg_stats,
           unnest(most_common_elems::text::text[],
                  most_common_elem_freqs[1:array_length(most_common_elems, 1)]) AS u(e, f)
     WHERE schemaname = 'public' AND tablename = 'threads' AND attname = 'search_vector'
)
SELECT w, mce.f FROM unnest(%s::text[]) AS w
  LEFT JOIN mce ON mce.e = btrim(websearch_to_tsquery('english'::regconfig, w)::text, ' ''')
"""


def vocabulary_frequencies(conn, words: list[str]) -> dict[str, float]:
    """Estimated share of threads containing each word, from ANALYZE's most-common-elements statistics.

    Only words frequent enough to be in the statistics (roughly >= 0.3 %) get a value; instant,
    used to screen candidates before counting exactly.
    """
    return {w: f for w, f in conn.execute(MCE_SQL, (words,)).fetchall() if f is not None}


def choose_cases(conn, stats: dict, cap: int) -> list[Case]:
    threads, tickets = stats["threads"], stats["tickets"]
    cases: list[Case] = []
    vocab = sorted({w.lower() for w in (
        [n for n in corpus.NOUNS if "_" not in n] + corpus.VERBS + corpus.ADJECTIVES + corpus.PROJECT_WORDS
        + corpus.GENERAL_WORDS + corpus.FIRST_NAMES + corpus.LAST_NAMES + corpus.BROWSERS
        + [i for i in corpus.INTEGRATIONS if i.isalpha()]) if w.isalpha()})
    est = vocabulary_frequencies(conn, vocab)

    # common: a very frequent word (>= 5 % of threads; "account" in this corpus).
    word = next((w for w in ("account", "payment", "error", "order") if est.get(w, 0) >= 0.05), "account")
    df = thread_df(conn, word)
    cases.append(Case("common", word, [word], thread_df=df, note=f"in {100 * df / threads:.0f}% of threads"))

    # rare: a planted word (in a handful of threads; we know exactly which tickets).
    planted = stats["planted_tickets"]
    word = min(planted, key=lambda w: (abs(len(planted[w]) - 6), w))
    cases.append(Case("rare", word, [word], note=f"planted in {len(planted[word])} tickets"))

    # common-5%: a word just above the 5 % line: the walk over the newest tickets needs more steps per hit.
    five = sorted((w for w, f in est.items() if f >= 0.055 and w != cases[0].query), key=lambda w: est[w])
    for word in five[:5]:
        df = thread_df(conn, word)
        if df >= 0.05 * threads:
            cases.append(Case("common-5%", word, [word], thread_df=df, note=f"in {100 * df / threads:.1f}% of threads"))
            break

    # two-word: two mid-frequency words (0.4-3 % of threads each) whose AND matches a fifth to half
    # of the walk threshold's tickets (1 000-2 500 at full size): the "newest stretch" regime.
    mids = sorted((w for w, f in est.items() if 0.004 <= f <= 0.03 and len(w) > 3), key=lambda w: -est[w])
    pair = None
    for i in range(len(mids)):
        for j in range(i + 1, min(len(mids), i + 4)):
            q = f"{mids[i]} {mids[j]}"
            n = ticket_df(conn, q)
            if cap // 5 <= n <= cap // 2:
                pair = q
                break
        if pair:
            break
    pair = pair or "invoice export"
    w1, w2 = pair.split()
    cases.append(Case("two-word", pair, [w1, w2],
                      note=f"~{100 * est.get(w1, 0):.1f}% / ~{100 * est.get(w2, 0):.1f}% of threads"))

    # near-cap: one word whose match set is just below the candidate cap (the exact path's worst case).
    target = 0.85 * cap / tickets * (tickets / threads) * 1.2  # share of threads for ~0.85 x cap tickets
    for word in sorted((w for w in est if len(w) > 3), key=lambda w: abs(est[w] - target))[:12]:
        n = ticket_df(conn, word)
        if 0.6 * cap <= n <= 0.97 * cap:
            cases.append(Case("near-cap", word, [word], note=f"~{n} tickets, cap {cap}"))
            break

    # phrase: a quoted phrase; prefer one below the cap ("<project> workspace"), else a common one.
    phrase = None
    for w in corpus.PROJECT_WORDS[:60]:
        total, _top = exact_reference(conn, f'"{w} workspace"')
        if 30 <= total < cap // 2:
            phrase = f"{w} workspace"
            break
    phrase = phrase or "verification code"
    cases.append(Case("phrase", f'"{phrase}"', [phrase], note="websearch phrase (<->)"))

    # email fragment: "first.l" of a real address, shared by a few customers.
    for email in stats["customer_emails"]:
        local = email.split("@")[0]
        if "." not in local or len(local.split(".")[0]) < 4 or not local.split(".")[1]:
            continue
        frag = local.split(".")[0] + "." + local.split(".")[1][0]
        n = conn.execute("SELECT count(*) FROM customers c WHERE email ILIKE %s AND EXISTS "
                         "(SELECT 1 FROM tickets t WHERE t.customer_id = c.id)",
                         (f"%{escape_like(frag)}%",)).fetchone()[0]
        if 2 <= n <= 40:
            cases.append(Case("email fragment", frag, [frag], note=f"{n} customers"))
            break


    # ticket number fragment (no TKT- prefix, so not a shortcut).
    seq = int(stats["tickets"] * 0.5237) + 1
    digits = str(seq)
    frag = digits[:-1] if len(digits) >= 4 else digits
    cases.append(Case("number fragment", frag, [frag], note="trigram on tickets.number"))

    for case in cases:
        case.exact_total, case.exact_top = exact_reference(conn, case.query)
        if case.thread_df is None and case.key in ("rare", "two-word", "near-cap", "phrase"):
            case.thread_df = thread_df(conn, case.query)
    return cases


# ----------------------------------------------------------------------------------------------
# The FreeScout-style baseline
# ----------------------------------------------------------------------------------------------

def baseline_sql(terms: list[str], count: bool = False) -> tuple[str, list]:
    cond, params = [], []
    for term in terms:
        cond.append("(t.subject ILIKE %s OR th.body_text ILIKE %s OR c.email ILIKE %s OR t.number ILIKE %s)")
        params += [f"%{escape_like(term)}%"] * 4
    where = ("t.merged_into_id IS NULL AND NOT t.quarantined AND " + " AND ".join(cond))
    joins = "FROM tickets t JOIN threads th ON th.ticket_id = t.id JOIN customers c ON c.id = t.customer_id"
    if count:  # what Laravel's paginate() runs first (FreeScout shows a total)
        return f"SELECT count(DISTINCT t.id) {joins} WHERE {where}", params
    return (f"SELECT DISTINCT t.id, t.number, t.subject, t.status, t.updated_at {joins} WHERE {where} "
            f"ORDER BY t.updated_at DESC LIMIT 25"), params


def run_baseline(conn, cases: list[Case], repeat: int, budget_s: float) -> dict:
    """Each class: a first run (a warm-up only when it is fast), then at least 3 timed runs within the budget.

    The count (what Laravel's paginate() adds) runs 3 times when fast, once when it takes over 2 s.
    """
    out = {}
    for case in cases:
        sql, params = baseline_sql(case.baseline_terms)
        t0 = time.perf_counter()
        rows = conn.execute(sql, params).fetchall()
        first = (time.perf_counter() - t0) * 1000
        times = [] if first < 2000 else [first]
        n = max(3, min(repeat, int(budget_s * 1000 / max(first, 1.0))))
        while len(times) < n:
            t0 = time.perf_counter()
            conn.execute(sql, params).fetchall()
            times.append((time.perf_counter() - t0) * 1000)
        csql, cparams = baseline_sql(case.baseline_terms, count=True)
        ctimes, total = [], None
        while len(ctimes) < (3 if first < 2000 else 1):
            t0 = time.perf_counter()
            total = conn.execute(csql, cparams).fetchone()[0]
            ctimes.append((time.perf_counter() - t0) * 1000)
        out[case.key] = {"page": summary(times), "count": summary(ctimes), "total": total,
                         "first_ids": [r[0] for r in rows]}
        log(f"  baseline {case.key:16s} page p50 {out[case.key]['page']['p50']:8.0f} ms ({len(times)} runs)  "
            f"count p50 {out[case.key]['count']['p50']:8.0f} ms  ({total} tickets)")
    return out


# ----------------------------------------------------------------------------------------------
# Echo's own code path
# ----------------------------------------------------------------------------------------------

class StatementLog:
    """Record every SQL statement (text, parameters, ms) the app runs while `active`."""

    def __init__(self, engine):
        from sqlalchemy import event

        self.active, self.rows = False, []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn, cursor, statement, parameters, context, executemany):
        if self.active:
            conn.info["bench_t0"] = time.perf_counter()

    def _after(self, conn, cursor, statement, parameters, context, executemany):
        if self.active and "bench_t0" in conn.info:
            self.rows.append((statement, parameters, (time.perf_counter() - conn.info.pop("bench_t0")) * 1000))


def shorten(text: str) -> str:
    """Long literal arrays (IN-lists of ticket ids) in SQL and plans -> '{<N items>}'."""
    text = re.sub(r"'\{[^'{}]{200,}\}'", lambda m: f"'{{<{m.group(0).count(',') + 1} items>}}'", text)
    return re.sub(r"(%\(id_1_\d+\)s::UUID, ){20,}", "<ids...>, ", text)


def shape(statement: str) -> str:
    s = re.sub(r"\s+", " ", statement)
    s = re.sub(r"%\(([a-z_]+?)_\d+(?:_\d+)?\)s(, %\(\1_\d+(?:_\d+)?\)s)*", r"%(\1...)s", s)
    return s


def run_rounds(items: list, repeat: int, warmup: int, budget_s: float, label: str = "") -> tuple[dict, dict]:
    """Interleaved rounds: every round runs every item once, so background noise hits all alike.

    An item that has 10 timed runs and has used `budget_s` seconds is left out of later rounds
    (a multi-second query would otherwise take the whole run). Call inside an app context.
    """
    from echo.extensions import db

    times: dict[str, list[float]] = {name: [] for name, _fn in items}
    last: dict[str, object] = {}
    for rnd in range(warmup + repeat):
        for name, fn in items:
            if rnd >= warmup and len(times[name]) >= 10 and sum(times[name]) > budget_s * 1000:
                continue
            t0 = time.perf_counter()
            result = fn()
            dt = (time.perf_counter() - t0) * 1000
            if hasattr(result, "tickets"):
                last[name] = ([(t.id, t.updated_at, t.seq) for t in result.tickets], result.total, result.capped)
            else:
                last[name] = result
            db.session.remove()
            if rnd >= warmup:
                times[name].append(dt)
        if rnd == warmup - 1 or (rnd + 1) % 10 == 0:
            log(f"  {label}round {rnd + 1}/{warmup + repeat}")
    return times, last


def measure_echo(app, cases: list[Case], sample_number: str, sample_email: str, repeat: int, warmup: int,
                 explain: bool, budget_s: float = 25.0) -> dict:
    from echo.extensions import db
    from echo.search.service import shortcut
    from echo.tickets.queries import TicketFilters, list_tickets, status_counts

    items: list[tuple[str, object]] = []
    for case in cases:
        items.append((f"search:{case.key}", lambda c=case: list_tickets(TicketFilters(q=c.query, per_page=25))))
        items.append((f"ranked:{case.key}",
                      lambda c=case: list_tickets(TicketFilters(q=c.query, per_page=25, ranked=True))))
    items += [
        ("inbox:open", lambda: list_tickets(TicketFilters(status="open", per_page=25))),
        ("inbox:all", lambda: list_tickets(TicketFilters(per_page=25))),
        ("inbox:status_counts", lambda: status_counts(TicketFilters())),
        ("shortcut:number", lambda: shortcut(sample_number)),
        ("shortcut:email", lambda: shortcut(sample_email)),
    ]
    with app.app_context():
        backend = db.session.execute(db.text("SELECT pg_backend_pid()")).scalar()
        db.session.remove()
        with LoadMeter([backend]) as load:
            times, last = run_rounds(items, repeat, warmup, budget_s)
        # One more pass with the statement log on: where the time goes, per item.
        statements = StatementLog(db.engine)
        breakdown = {}
        for name, fn in items:
            statements.rows.clear()
            statements.active = True
            fn()
            statements.active = False
            db.session.remove()
            breakdown[name] = sorted(statements.rows, key=lambda r: -r[2])
        plans = {}
        if explain:
            for name, rows in breakdown.items():
                for k, (statement, params, ms) in enumerate(rows[:2]):
                    if ms < 1.0:
                        continue
                    with db.engine.connect() as conn:
                        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params).fetchall()
                        conn.rollback()
                    plans[f"{name} #{k + 1} ({ms:.1f} ms)"] = {
                        "sql": shorten(statement), "plan": shorten("\n".join(r[0] for r in plan))}
    return {"times": times, "last": last, "load": load.result, "plans": plans,
            "breakdown": {name: [{"ms": round(ms, 2), "sql": shape(s)[:400]} for s, _p, ms in rows[:4]]
                          for name, rows in breakdown.items()}}


def http_check(app, query: str, rounds: int = 5) -> dict:
    """The whole console request once signed in (dev sign-in): /tickets?q=... and /tickets."""
    client = app.test_client()
    page = client.get("/tickets/login")
    match = re.search(rb'name="csrf-token" content="([^"]+)"', page.data)
    if not match:
        return {"error": f"no csrf token on /tickets/login (HTTP {page.status_code})"}
    signed = client.post("/tickets/login/dev", data={"csrf_token": match.group(1).decode(), "next": ""})
    if signed.status_code not in (302, 303):
        return {"error": f"dev sign-in answered HTTP {signed.status_code}"}
    out = {}
    for label, url in (("search", f"/tickets?q={query}"), ("inbox", "/tickets")):
        ms, status = [], None
        for _ in range(rounds + 1):
            t0 = time.perf_counter()
            resp = client.get(url)
            ms.append((time.perf_counter() - t0) * 1000)
            status = resp.status_code
        out[label] = {"url": url, "status": status, "p50": percentile(ms[1:], 50), "max": max(ms[1:])}
    return out


# ----------------------------------------------------------------------------------------------
# Correctness
# ----------------------------------------------------------------------------------------------

def checks(conn, cases: list[Case], echo: dict, stats: dict) -> list[dict]:
    out = []

    def add(name, ok, detail):
        out.append({"check": name, "ok": bool(ok), "detail": detail})

    by_key = {c.key: c for c in cases}
    rare = by_key["rare"]
    ids, total, _capped = echo["last"]["search:rare"]
    ids = [i for i, _u, _s in (ids or [])]
    contains = conn.execute(
        """SELECT t.id, (t.subject ~* %(re)s OR EXISTS (SELECT 1 FROM threads th WHERE th.ticket_id = t.id
                         AND th.stripped_text ~* %(re)s)) FROM tickets t WHERE t.id = ANY(%(ids)s)""",
        {"re": rf"\m{rare.query}\M", "ids": ids}).fetchall()
    bad = [str(i) for i, ok in contains if not ok]
    add("rare word: every result contains the word", ids and not bad,
        f"{len(ids)} results, {len(bad)} without '{rare.query}'")
    planted = set(stats["planted_tickets"][rare.query])
    live = conn.execute("SELECT count(*) FROM tickets "
                        "WHERE seq = ANY(%s) AND merged_into_id IS NULL AND NOT quarantined",
                        (sorted(planted),)).fetchone()[0]
    add("rare word: total = tickets it was planted in", total == live,
        f"Echo total {total}, planted in {live} live tickets")

    seqs = sorted({seq for seqs in stats["planted_tickets"].values() for seq in seqs})
    wrong, sampled = conn.execute(DOCUMENTS_SQL, {"seqs": seqs}).fetchone()
    add("search documents hold exactly their subject's and messages' words", sampled and not wrong,
        f"{sampled - wrong}/{sampled} sampled tickets (every planted one included)")

    for case in cases:
        ids, total, capped = echo["last"][f"search:{case.key}"]
        rows = ids or []
        ordered = all((a[1], a[2]) >= (b[1], b[2]) for a, b in pairwise(rows))
        add(f"{case.key}: ordered by updated_at desc", ordered, f"{len(rows)} results")
        same = [r[0] for r in rows] == case.exact_top
        add(f"{case.key}: page 1 = exact newest 25 matches", same,
            f"Echo total {total}{' (capped)' if capped else ''}, exact {case.exact_total}")
        ranked_ids, _t, _c = echo["last"][f"ranked:{case.key}"]
        ranked_ids = [r[0] for r in (ranked_ids or [])]
        if ranked_ids:
            member = conn.execute(MEMBERS_SQL, {**match_params(case.query), "ids": ranked_ids}).fetchone()[0]
            add(f"{case.key}: ranked results all match", member == len(ranked_ids),
                f"{member}/{len(ranked_ids)} match")
    for name in ("inbox:open", "inbox:all"):
        rows, total, _ = echo["last"][name]
        ordered = all((a[1], a[2]) >= (b[1], b[2]) for a, b in pairwise(rows))
        add(f"{name}: ordered by updated_at desc", ordered and len(rows) == min(25, total), f"{len(rows)} of {total}")
    return out


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------

def fmt_ms(v) -> str:
    if v is None or v != v:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def report(result: dict) -> str:
    lines = []
    s = result["seed"]
    lines.append("")
    lines.append(f"Corpus: {s['tickets']:,} tickets, {s['threads']:,} threads, {s['customers']:,} customers "
                 f"({s['database_mb']:,} MB; statuses {s['status_counts']})")
    lines.append(f"Seed: {s['seed_s']:.0f} s total = migrate {s['migrate_s']:.1f} s + "
                 f"COPY {s['copy_tickets_threads_s']:.0f} s ({s['jobs']} workers) + "
                 f"indexes {s['index_build_s']:.0f} s (mode '{s['index_mode']}') + "
                 f"VACUUM ANALYZE {s['vacuum_analyze_s']:.0f} s; final indexes identical to the migrated schema: "
                 f"{s.get('schema_equal_to_migrated')}")
    load = result["echo_load"]
    lines.append(f"Machine while timing Echo: {load['machine_busy_pct']}% busy on {load['cpus']} CPUs, "
                 f"of which this benchmark {load['ours_pct']}%, other processes {load['others_pct']}%")
    if load.get("host_speed_ms"):
        before, after = load["host_speed_ms"]
        lines.append(f"Host speed (ms for a fixed pure-Python loop, best of 5; lower is faster; this VM drifts by up "
                     f"to ~1.8x, so compare runs by it): {before:.2f} before, {after:.2f} after the Echo rounds")
    lines.append(f"Echo: {result['repeat']} timed runs after {result['warmup']} warm-up, interleaved; "
                 f"baseline: >= 3 runs (after a warm-up if under 2 s; count 3 runs, 1 if slow)")
    lines.append("")
    head = (f"{'class':16s} {'query':24s} {'Echo total':>11s} {'exact':>7s} {'p50 ms':>7s} {'p95 ms':>7s} "
            f"{'ranked p95':>10s} {'base p50':>9s} {'+count':>8s} {'x page':>8s} {'x +count':>8s}")
    lines.append(head)
    lines.append("-" * len(head))
    for row in result["table"]:
        total = f"{row['echo_total']}{'+' if row['capped'] else ''}"
        speed = f"{row['speedup']:,.1f}x" if row["speedup"] else "-"
        speed2 = f"{row['speedup_paginate']:,.0f}x" if row["speedup_paginate"] else "-"
        lines.append(f"{row['class']:16s} {row['query'][:24]:24s} {total:>11s} {row['exact_total']:>7} "
                     f"{fmt_ms(row['p50']):>7s} {fmt_ms(row['p95']):>7s} {fmt_ms(row['ranked_p95']):>10s} "
                     f"{fmt_ms(row['baseline_p50']):>9s} {fmt_ms(row['baseline_count_p50']):>8s} "
                     f"{speed:>8s} {speed2:>8s}")
    lines.append("")
    for row in result["table"]:
        lines.append(f"  {row['class']:16s} {row['note']}; baseline matched {row['baseline_total']} tickets")
    lines.append("")
    for name, st in result["other"].items():
        lines.append(f"{name:22s} p50 {fmt_ms(st['p50']):>6s} ms   p95 {fmt_ms(st['p95']):>6s} ms   "
                     f"max {fmt_ms(st['max']):>6s} ms")
    if result.get("http"):
        h = result["http"]
        if "error" in h:
            lines.append(f"HTTP (test client): {h['error']}")
        else:
            for v in h.values():
                lines.append(f"HTTP GET {v['url'][:40]:40s} -> {v['status']}, p50 {fmt_ms(v['p50'])} ms "
                             "(whole request, incl. template and status counts)")
    lines.append("")
    lines.append("Checks:")
    for c in result["checks"]:
        lines.append(f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}: {c['detail']}")
    lines.append("")
    lines.append("Targets:")
    for t in result["targets"]:
        mark = ("yes" if t["met"] else "no") if t["target"].startswith("(info)") else ("met" if t["met"] else "NOT MET")
        lines.append(f"  [{mark}] {t['target']}: {t['detail']}")
    if result.get("breakdown_shown"):
        lines.append("")
        lines.append("Where the time goes (one extra run each, slowest statements):")
        for name, rows in result["breakdown_shown"].items():
            lines.append(f"  {name}:")
            for r in rows[:3]:
                lines.append(f"    {r['ms']:8.1f} ms  {r['sql'][:230]}")
    for name, p in result.get("plans", {}).items():
        lines.append("")
        lines.append(f"EXPLAIN (ANALYZE, BUFFERS) {name}:")
        lines.append(p["sql"][:1500])
        lines.append(p["plan"])
    return "\n".join(lines)


def render_saved(result: dict) -> str:
    """The text report of a result dict (fresh, or loaded from --save-json / --json output)."""
    return report(result)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tickets", type=int, default=200_000)
    parser.add_argument("--threads-per-ticket", type=float, default=5.0)
    parser.add_argument("--customers", type=int, default=None, help="default: tickets / 4 (50 000)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2, help="seeding worker processes")
    parser.add_argument("--index-mode", choices=("after", "during"), default="after",
                        help="build secondary indexes after the COPY (default) or COPY into them")
    parser.add_argument("--repeat", type=int, default=40, help="timed runs per Echo query (default 40)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--baseline-repeat", type=int, default=5, help="max baseline runs (at least 3)")
    parser.add_argument("--baseline-budget", type=float, default=30.0, help="seconds per baseline class (default 30)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-http", action="store_true", help="skip the test-client HTTP request")
    parser.add_argument("--explain", action="store_true",
                        help="print EXPLAIN (ANALYZE, BUFFERS) of the slowest statement of each item")
    parser.add_argument("--budget", type=float, default=25.0,
                        help="seconds of timed runs per Echo item before it leaves the rounds (min 10 runs)")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.add_argument("--save-json", type=Path, metavar="FILE", help="also write the JSON results to FILE")
    parser.add_argument("--render", type=Path, metavar="FILE",
                        help="print the text report of a saved JSON result (no database needed) and exit")
    args = parser.parse_args()
    if args.render:
        print(render_saved(json.loads(args.render.read_text())))
        return 0
    customers = args.customers or max(100, args.tickets // 4)
    signal.signal(signal.SIGTERM, _on_sigterm)

    import psycopg

    database = seeding.Database(os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    result: dict = {"repeat": args.repeat, "warmup": args.warmup}
    try:
        log(f"creating {database.name} and migrating")
        database.create()
        t0 = time.perf_counter()
        database.migrate()
        migrate_s = time.perf_counter() - t0
        log(f"seeding {args.tickets:,} tickets x {args.threads_per_ticket} threads, {customers:,} customers "
            f"({args.jobs} workers, indexes '{args.index_mode}')")
        stats = seeding.seed(database, tickets=args.tickets, threads_per_ticket=args.threads_per_ticket,
                             customers=customers, jobs=args.jobs, seed_value=args.seed, index_mode=args.index_mode)
        stats["migrate_s"] = migrate_s
        stats["seed_s"] += migrate_s
        log(f"seeded in {stats['seed_s']:.0f} s: COPY {stats['copy_tickets_threads_s']:.0f} s, indexes "
            f"{stats['index_build_s']:.0f} s, VACUUM ANALYZE {stats['vacuum_analyze_s']:.0f} s; "
            f"{stats['database_mb']} MB")
        result["seed"] = {k: v for k, v in stats.items() if k not in ("customer_emails", "planted_tickets")}

        from echo import create_app
        from echo.tickets.models import format_number

        with psycopg.connect(database.dsn, autocommit=True) as conn:
            log("choosing the queries from the data")
            # Echo walks the newest tickets when more than ~sqrt(125 x tickets) match
            # (echo.search.service.walk_threshold); below that it fetches and counts every match.
            cases = choose_cases(conn, stats, int(max(500.0, (125.0 * args.tickets) ** 0.5)))
            for c in cases:
                log(f"  {c.key:16s} {c.query!r:28s} exact matches {c.exact_total}  ({c.note})")
            sample_seq = int(args.tickets * 0.61) + 1
            sample_email = conn.execute(
                "SELECT c.email FROM customers c JOIN tickets t ON t.customer_id = c.id LIMIT 1").fetchone()[0]
        instance = tempfile.mkdtemp(prefix="echo-search-bench-")
        app = create_app({
            "DATABASE_URL": database.sqlalchemy_url, "ECHO_ENV": "development",
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
            "ECHO_INSTANCE_PATH": instance, "ECHO_SECRET_KEY": os.urandom(16).hex(),
        })
        log(f"timing Echo ({args.warmup} warm-up + {args.repeat} rounds, interleaved)")
        speed_before = host_speed()
        echo = measure_echo(app, cases, format_number(sample_seq), sample_email, args.repeat, args.warmup, args.explain,
                            args.budget)
        result["echo_load"] = dict(echo["load"], host_speed_ms=[speed_before, host_speed()])
        if not args.no_http:
            log("HTTP path through the test client")
            two = next(c for c in cases if c.key == "two-word")
            with app.app_context():
                result["http"] = http_check(app, two.query.replace(" ", "+"))
        log("timing the ILIKE baseline")
        with psycopg.connect(database.dsn, autocommit=True) as conn:
            baseline = run_baseline(conn, cases, args.baseline_repeat, args.baseline_budget)
            result["checks"] = checks(conn, cases, echo, stats)

        table = []
        for c in cases:
            t = summary(echo["times"][f"search:{c.key}"])
            r = summary(echo["times"][f"ranked:{c.key}"])
            b = baseline[c.key]
            _ids, total, capped = echo["last"][f"search:{c.key}"]
            table.append({
                "class": c.key, "query": c.query, "note": c.note, "echo_total": total, "capped": capped,
                "exact_total": c.exact_total, "thread_df": c.thread_df, "p50": t["p50"], "p95": t["p95"],
                "max": t["max"], "ranked_p50": r["p50"], "ranked_p95": r["p95"], "baseline_p50": b["page"]["p50"],
                "baseline_runs": b["page"]["n"], "baseline_count_p50": b["count"]["p50"],
                "baseline_total": b["total"], "speedup": b["page"]["p50"] / t["p50"] if t["p50"] else None,
                "speedup_paginate": (b["page"]["p50"] + b["count"]["p50"]) / t["p50"] if t["p50"] else None,
            })
        result["table"] = table
        result["other"] = {name: summary(echo["times"][name]) for name in echo["times"]
                           if not name.startswith(("search:", "ranked:"))}
        targets = []
        rows = {r["class"]: r for r in table}
        for key in TARGET_CLASSES:
            if key not in rows:
                continue
            r = rows[key]
            targets.append({"target": f"{key} p95 < {TARGET_P95_MS:.0f} ms", "met": r["p95"] < TARGET_P95_MS,
                            "detail": f"p95 {r['p95']:.1f} ms (ranked p95 {r['ranked_p95']:.1f} ms)"})
        # The scan to beat is what a FreeScout-style search runs for one page: Laravel's paginate()
        # counts the ILIKE matches (a full scan), then reads the page. The page query alone is shown
        # too: for a common word it stops after 25 hits, so it is fast and the ratio is small.
        slow = [r for r in table if r["speedup_paginate"] is not None and r["speedup_paginate"] < TARGET_SPEEDUP]
        targets.append({"target": f">= {TARGET_SPEEDUP:.0f}x faster than the FreeScout-style ILIKE search "
                                  "(page + count, p50, every class)", "met": not slow,
                        "detail": ", ".join(f"{r['class']} {r['speedup_paginate']:,.0f}x" for r in table)})
        slow = [r for r in table if r["speedup"] is not None and r["speedup"] < TARGET_SPEEDUP]
        targets.append({"target": f"(info) >= {TARGET_SPEEDUP:.0f}x faster than the ILIKE page query alone",
                        "met": not slow, "detail": ", ".join(f"{r['class']} {r['speedup']:,.0f}x" for r in table)})
        for name in ("inbox:open", "inbox:all"):
            st = result["other"][name]
            targets.append({"target": f"{name} page p95 < {TARGET_INBOX_P95_MS:.0f} ms",
                            "met": st["p95"] < TARGET_INBOX_P95_MS, "detail": f"p95 {st['p95']:.1f} ms"})
        result["targets"] = targets
        result["breakdown"] = echo["breakdown"]
        shown = {}
        for r in table:
            if r["p95"] >= TARGET_P95_MS or r["ranked_p95"] >= TARGET_P95_MS:
                shown[f"search:{r['class']}"] = echo["breakdown"][f"search:{r['class']}"]
                if r["ranked_p95"] >= TARGET_P95_MS:
                    shown[f"ranked:{r['class']}"] = echo["breakdown"][f"ranked:{r['class']}"]
        for name in ("inbox:open", "inbox:all", "inbox:status_counts"):
            if result["other"][name]["p95"] >= TARGET_INBOX_P95_MS * 0.5:
                shown[name] = echo["breakdown"][name]
        result["breakdown_shown"] = shown
        result["plans"] = echo["plans"]
        result["database"] = database.name if args.keep else None
        if args.save_json:
            args.save_json.write_text(json.dumps(result, indent=2, default=str))
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        else:
            print(render_saved(result))
        met = all(t["met"] for t in targets if not t["target"].startswith("(info)"))
        return 0 if met and all(c["ok"] for c in result["checks"]) else 1
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        if args.keep and database.created:
            log(f"kept the database: {database.dsn}")
        else:
            try:
                database.drop()
                log(f"dropped {database.name}")
            except Exception as exc:  # noqa: BLE001
                log(f"could not drop {database.name}: {exc}")


if __name__ == "__main__":
    sys.exit(main())
