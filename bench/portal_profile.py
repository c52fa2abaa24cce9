"""Where a portal request's server time goes (used by bench/portal.py).

* `Probe`: while active, wraps psycopg's `Cursor.execute`/`executemany` and `Connection.commit`/
  `rollback` and redis-py's `Redis.execute_command` (class-level patches, removed afterwards), so
  each request is split into database round trips (wall time in the driver: adaptation, network,
  server execution, result transfer), Redis round trips, and the rest (Python: Flask, the
  limiter, JWT, SQLAlchemy ORM, serialisation). It also keeps each statement's SQL and
  parameters for `explain`.
* `explain`: `EXPLAIN (ANALYZE, BUFFERS)` of captured statements on a separate connection, inside
  a transaction that is rolled back (so the UPDATE/INSERT the endpoints issue change nothing).
* `cprofile`: cProfile over a batch of requests, summed by package (where Python time goes) and
  the top functions.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import re
import statistics
import time
from collections import Counter, defaultdict


def normalise_sql(sql: str) -> str:
    """A short, stable label for a statement: its verb and main table, plus a shortened text."""
    flat = re.sub(r"\s+", " ", sql).strip()
    flat = re.sub(r"%\(([a-z_0-9]+)\)s", "?", flat)
    verb = flat.split(" ", 1)[0].upper()
    m = re.search(r"\b(?:FROM|INTO|UPDATE)\s+([a-z_\.\"]+)", flat, re.I)
    table = m.group(1) if m else ""
    if verb == "SELECT":
        m = re.search(r"\bFROM\s+([a-z_]+)", flat)
        table = m.group(1) if m else table
        if flat.startswith("SELECT count(*)"):
            verb = "SELECT count(*)"
    where = ""
    m = re.search(r"\bWHERE (.{0,70})", flat)
    if m:
        where = " WHERE " + m.group(1).split(" ORDER BY")[0].split(" LIMIT")[0]
    return f"{verb} {table}{where}"[:110]


PHASES = [
    # (module path, attribute, label): wrapped while a Probe is active; times are inclusive of nested phases
    ("flask_limiter", "Limiter._Limiter__evaluate_limits", "rate limit check (flask-limiter, Redis)"),
    ("echo.portal.api", "identify", "auth.identify (JWT, session, customer)"),
    ("echo.portal.service", "list_tickets", "service.list_tickets (page with its total)"),
    ("echo.portal.service", "owned_ticket", "service.owned_ticket"),
    ("echo.portal.service", "visible_threads", "service.visible_threads (+attachments)"),
    ("echo.portal.schemas", "ticket_summary", "schemas.ticket_summary"),
    ("echo.portal.schemas", "ticket_detail", "schemas.ticket_detail"),
    ("echo.portal.api", "jsonify", "jsonify"),
    ("echo.portal.api", "_write_audit", "audit insert + the request's COMMIT"),
    ("echo.portal.api", "refreshed_token", "token refresh check"),
]
OUTSIDE = "Flask/Werkzeug + hooks + teardown"
VIEW = "view body (flush, commit, glue)"


class Probe:
    """Per-request event log: DB and Redis round trips, each tagged with the innermost phase."""

    def __init__(self, app=None) -> None:
        self.app = app
        self.events: list[tuple] = []   # (kind, label, ms, sql, params, phase)
        self.phases: list[tuple] = []   # (label, exclusive ms)
        self.stack: list[list] = []     # [label, start, child ms]
        self._saved: list = []
        self.capture_sql = False

    def _phase(self) -> str:
        return self.stack[-1][0] if self.stack else OUTSIDE

    def _timed(self, label: str, original):
        """`original`, recording its time exclusive of nested phases under `label`."""
        probe = self

        def wrapper(*args, **kwargs):
            probe.stack.append([label, time.perf_counter(), 0.0])
            try:
                return original(*args, **kwargs)
            finally:
                lbl, t0, child = probe.stack.pop()
                ms = (time.perf_counter() - t0) * 1000
                probe.phases.append((lbl, ms - child))
                if probe.stack:
                    probe.stack[-1][2] += ms

        return wrapper

    def _wrap_phase(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, self._timed(label, original))

    def __enter__(self) -> Probe:
        import importlib

        import psycopg
        import redis
        from psycopg.pq import TransactionStatus

        probe = self

        def timed(owner, name, kind):
            original = getattr(owner, name)

            def wrapper(self_, *args, **kwargs):
                label = None
                if kind == "rollback":
                    if self_.pgconn.transaction_status == TransactionStatus.IDLE:
                        return original(self_, *args, **kwargs)   # no round trip: not recorded
                    label = "ROLLBACK + DEALLOCATE ALL" if self_._prepared._names else "ROLLBACK"
                t = time.perf_counter()
                try:
                    return original(self_, *args, **kwargs)
                finally:
                    ms = (time.perf_counter() - t) * 1000
                    phase = probe._phase()
                    if kind == "sql":
                        query = args[0] if args else kwargs.get("query")
                        sql = query if isinstance(query, str) else str(query)
                        params = args[1] if len(args) > 1 else kwargs.get("params")
                        probe.events.append(("sql", normalise_sql(sql), ms, sql if probe.capture_sql else None,
                                             params if probe.capture_sql else None, phase))
                    elif kind == "redis":
                        probe.events.append(("redis", str(args[0]) if args else "?", ms, None, None, phase))
                    else:
                        probe.events.append((kind, label or kind.upper(), ms, None, None, phase))

            self._saved.append((owner, name, original))
            setattr(owner, name, wrapper)

        timed(psycopg.Cursor, "execute", "sql")
        timed(psycopg.Cursor, "executemany", "sql")
        timed(psycopg.Connection, "commit", "commit")
        timed(psycopg.Connection, "rollback", "rollback")
        timed(redis.Redis, "execute_command", "redis")
        for module, attr, label in PHASES:
            owner = importlib.import_module(module)
            *path, name = attr.split(".")
            for part in path:
                owner = getattr(owner, part)
            self._wrap_phase(owner, name, label)
        if self.app is not None:
            for endpoint in ("portal_api.list_tickets", "portal_api.get_ticket"):
                self._wrap_view(endpoint)
        return self

    def _wrap_view(self, endpoint: str) -> None:
        views = self.app.view_functions
        original = views[endpoint]
        self._saved.append((views, endpoint, original))
        views[endpoint] = self._timed(VIEW, original)

    def __exit__(self, *exc) -> None:
        for owner, name, original in reversed(self._saved):
            if isinstance(owner, dict):
                owner[name] = original
            else:
                setattr(owner, name, original)
        self._saved.clear()

    def take(self) -> tuple[list[tuple], list[tuple]]:
        events, self.events = self.events, []
        phases, self.phases = self.phases, []
        return events, phases


def breakdown(samples: list[tuple[float, tuple]]) -> dict:
    """Mean split of per-request time into DB / Redis / Python, per phase, and per-statement means."""
    n = len(samples)
    totals, dbs, rediss, counts = [], [], [], Counter()
    per_label: dict[str, list[float]] = defaultdict(list)
    phase_ms: Counter = Counter()
    phase_db: Counter = Counter()
    phase_redis: Counter = Counter()
    for total_ms, (events, phases) in samples:
        totals.append(total_ms)
        db = sum(e[2] for e in events if e[0] in ("sql", "commit", "rollback"))
        rd = sum(e[2] for e in events if e[0] == "redis")
        dbs.append(db)
        rediss.append(rd)
        inside = 0.0
        for label, ms in phases:
            phase_ms[label] += ms
            inside += ms
        phase_ms[OUTSIDE] += total_ms - inside
        for e in events:
            counts[e[0]] += 1
            if e[0] == "redis":
                per_label["redis " + e[1]].append(e[2])
                phase_redis[e[5]] += e[2]
            else:
                per_label[e[1]].append(e[2])
                phase_db[e[5]] += e[2]
    mean_total = statistics.fmean(totals)
    mean_db, mean_redis = statistics.fmean(dbs), statistics.fmean(rediss)
    statements = sorted(
        ({"label": label, "per_request": round(len(v) / n, 2), "mean_ms": round(statistics.fmean(v), 3),
          "ms_per_request": round(sum(v) / n, 3)} for label, v in per_label.items()),
        key=lambda s: -s["ms_per_request"])
    phases_out = sorted(
        ({"phase": p, "ms": round(ms / n, 3), "db_ms": round(phase_db[p] / n, 3),
          "redis_ms": round(phase_redis[p] / n, 3),
          "python_ms": round((ms - phase_db[p] - phase_redis[p]) / n, 3)} for p, ms in phase_ms.items()),
        key=lambda x: -x["ms"])
    return {
        "requests": n,
        "mean_ms": round(mean_total, 3),
        "db_ms": round(mean_db, 3), "redis_ms": round(mean_redis, 3),
        "python_ms": round(mean_total - mean_db - mean_redis, 3),
        "sql_statements_per_request": round(counts["sql"] / n, 2),
        "commits_per_request": round(counts["commit"] / n, 2),
        "rollbacks_per_request": round(counts["rollback"] / n, 2),
        "redis_commands_per_request": round(counts["redis"] / n, 2),
        "phases": phases_out,
        "calls": statements,
    }


def _plan_chain(node: dict, depth: int = 0, out: list | None = None) -> list[str]:
    out = [] if out is None else out
    name = node.get("Node Type", "?")
    if node.get("Index Name"):
        name += f" using {node['Index Name']}"
    elif node.get("Relation Name"):
        name += f" on {node['Relation Name']}"
    if "Actual Rows" in node:
        name += f" (rows={node['Actual Rows']}, {node.get('Actual Total Time', 0):.3f} ms)"
    out.append("  " * depth + name)
    for child in node.get("Plans", []) or []:
        _plan_chain(child, depth + 1, out)
    return out


def explain(dsn: str, statements: list[tuple[str, str, object]]) -> list[dict]:
    """EXPLAIN ANALYZE each (label, sql, params); all in one transaction that is rolled back."""
    import psycopg

    results = []
    with psycopg.connect(dsn) as conn:
        try:
            for label, sql, params in statements:
                if not sql.lstrip().upper().startswith(("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")):
                    continue
                try:
                    for _ in range(3):   # the last of three: warm caches, as in a long-lived pooled connection
                        conn.execute("SAVEPOINT x")
                        row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql, params).fetchone()[0]
                        conn.execute("ROLLBACK TO SAVEPOINT x")
                except psycopg.Error as exc:
                    conn.execute("ROLLBACK TO SAVEPOINT x")
                    results.append({"label": label, "error": str(exc).strip()[:200]})
                    continue
                plan = row[0] if isinstance(row, list) else row
                results.append({
                    "label": label,
                    "execution_ms": round(plan.get("Execution Time", 0.0), 3),
                    "planning_ms": round(plan.get("Planning Time", 0.0), 3),
                    "shared_hit": plan["Plan"].get("Shared Hit Blocks"),
                    "shared_read": plan["Plan"].get("Shared Read Blocks"),
                    "plan": _plan_chain(plan["Plan"]),
                })
        finally:
            conn.rollback()
    return results


GROUPS = [
    ("psycopg (driver)", ("/psycopg/", "/psycopg_c/", "/psycopg_binary/", "psycopg_c")),
    ("sqlalchemy", ("/sqlalchemy/",)),
    ("flask_sqlalchemy", ("/flask_sqlalchemy/",)),
    ("flask_limiter + limits", ("/flask_limiter/", "/limits/")),
    ("redis-py", ("/redis/",)),
    ("jwt", ("/jwt/",)),
    ("flask", ("/flask/",)),
    ("werkzeug", ("/werkzeug/",)),
    ("flask_cors", ("/flask_cors/",)),
    ("flask_wtf", ("/flask_wtf/",)),
    ("echo", ("/echo/",)),
    ("json/uuid/datetime/ipaddress/stdlib", ("/lib/python3",)),
]


def _group(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "builtins (C: socket I/O, json, hashing...)"
    for group, needles in GROUPS:
        if any(n in filename for n in needles):
            return group
    return "other"


def cprofile(run_requests, count: int, top: int = 18) -> dict:
    """Profile `run_requests(count)`; tottime summed by package, top functions by self and cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_requests(count)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())   # tottime
    groups: Counter = Counter()
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items():
        groups[_group(filename)] += tt
        short = filename.split("site-packages/")[-1].split("/work/main/")[-1]
        rows.append((tt, ct, nc, f"{short}:{line}({func})"))
    by_self = sorted(rows, reverse=True)[:top]
    echo_cum = sorted((r for r in rows if r[3].startswith("echo/")), key=lambda r: -r[1])[:top]
    per = 1000.0 / count
    return {
        "requests": count,
        "profiled_ms_per_request": round(total * per, 3),
        "by_package_ms_per_request": {g: round(t * per, 3) for g, t in groups.most_common()},
        "top_self": [{"ms_per_request": round(tt * per, 3), "calls_per_request": round(nc / count, 1), "function": f}
                     for tt, ct, nc, f in by_self],
        "echo_cumulative": [{"ms_per_request": round(ct * per, 3), "calls_per_request": round(nc / count, 1),
                             "function": f} for tt, ct, nc, f in echo_cum],
    }


def cpu_ticks() -> dict[int, tuple[str, int]]:
    """pid -> (command line, CPU ticks) for every process."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
            out[int(entry)] = (cmd, int(fields[11]) + int(fields[12]))
        except (OSError, IndexError, ValueError):
            pass
    return out


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    with open("/proc/stat") as f:
        parts = [int(x) for x in f.readline().split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)
    return sum(parts) - idle, sum(parts)


def cpu_split(before: dict, after: dict, seconds: float, db_name: str, roles: dict[int, str]) -> dict:
    """Cores used per role over a window: this benchmark's own processes, its PostgreSQL backends
    (by database name in the process title), Redis, and everything else (other work on the machine)."""
    hz = os.sysconf("SC_CLK_TCK")
    split: Counter = Counter()
    others: Counter = Counter()
    for pid, (cmd, ticks) in after.items():
        used = ticks - before.get(pid, (cmd, 0))[1] if pid in before else ticks
        if used <= 0:
            continue
        if pid in roles:
            role = roles[pid]
        elif cmd.startswith("postgres:") and db_name in cmd:
            role = "postgres (bench db)"
        elif cmd.startswith("postgres:") and re.search(r"postgres: \S+: \S+ (\S+) ", cmd):
            role = "postgres (other databases)"
            others["postgres backend for " + re.search(r"postgres: \S+: \S+ (\S+) ", cmd).group(1)] += used
        elif cmd.startswith("postgres") or "/postgres " in cmd or cmd.startswith("/usr/lib/postgresql"):
            role = "postgres (background: wal, checkpointer, autovacuum)"
        elif "redis-server" in cmd and "6379" in cmd:
            role = "redis"
        else:
            role = "other processes"
            others[cmd[:70]] += used
        split[role] += used
    cores = {role: round(t / hz / seconds, 2) for role, t in split.most_common()}
    return {"cores": cores, "top_other": [(c, round(t / hz / seconds, 2)) for c, t in others.most_common(4)]}


def busy_cores(seconds: float = 3.0, exclude: set[int] | None = None) -> tuple[float, list]:
    """Cores the machine used over `seconds` (minus the `exclude` pids), and the busiest processes."""
    hz = os.sysconf("SC_CLK_TCK")
    before, b0 = cpu_ticks(), machine_ticks()
    time.sleep(seconds)
    after, b1 = cpu_ticks(), machine_ticks()
    mine = sum(after[p][1] - before[p][1] for p in (exclude or set()) if p in after and p in before)
    top = sorted(((after[p][1] - before.get(p, (None, after[p][1]))[1], after[p][0][:80]) for p in after
                  if p not in (exclude or set())), reverse=True)[:3]
    return (b1[0] - b0[0] - mine) / hz / seconds, [(c, round(t / hz / seconds, 2)) for t, c in top if t > 0]


def cpu_speed() -> float:
    """ms for a fixed pure-Python workload (best of 3): this VM's CPU speed changes from second to second
    (host contention), so each measured slice records it."""
    import timeit

    return min(timeit.repeat("sum(i * i for i in range(20000))", number=1, repeat=3)) * 1000
