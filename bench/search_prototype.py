"""Proposed fixes for the slow shapes bench/search.py finds, measured in the same run (--prototype).

This is NOT Echo's code: it is a drop-in stand-in for `echo.search.service.search_tickets`, used by
the benchmark only (patched into `echo.tickets.queries` while the prototype is timed), so the
proposal is measured through the same `list_tickets` path and checked against the same exact
reference. It keeps Echo's semantics (same branches, same cap, same snippets) and changes only
the query shapes:

1. Candidates: every branch of the union has its own `LIMIT cap + 1` (UNION ALL, deduplicated in
   Python). Echo's `SELECT ... FROM (a UNION b UNION c) LIMIT 2001` must de-duplicate every row of
   every branch before the LIMIT applies, so a common word reads every matching thread (a seq
   scan of all threads for "account"). The result is "capped" when any branch hit its limit.
2. Exact path: fetch the candidates by primary key behind a fence (a MATERIALIZED CTE) and sort
   them, with the total as `count(*) OVER ()` in the same statement. Echo's `WHERE id IN (...)
   ORDER BY updated_at DESC LIMIT 25` lets the planner walk the whole inbox index backwards
   filtering by id (it assumes the ids are spread evenly), and the total is a second query.
3. Ranked: the best message rank comes from the matching threads of the candidates only, in one
   grouped pass, instead of a correlated subquery that ranks every thread of every candidate.
4. Capped path (common words): the per-ticket EXISTS checks get an `OFFSET 0` fence, so
   PostgreSQL cannot turn them into a "hashed SubPlan" that first collects every matching thread
   of the whole table. The walk also checks ticket numbers (Echo's walk forgets that branch).
"""

from __future__ import annotations

from sqlalchemy import Select, func, literal, or_, select, union_all

from echo.customers.models import Customer
from echo.extensions import db
from echo.search.service import CANDIDATE_CAP, MAX_QUERY, SearchResult, _escape_like, _tsquery, snippets
from echo.tickets.models import Thread, Ticket


def search_tickets(query: str, base: Select, *, page: int, per_page: int, ranked: bool = False) -> SearchResult:
    query = query.strip()[:MAX_QUERY]
    words, simple = _tsquery(query), _tsquery(query, "simple")
    fragment = f"%{_escape_like(query.lower())}%"
    limit = CANDIDATE_CAP + 1
    branches = [
        select(literal(1).label("b"), Ticket.id.label("id")).where(Ticket.search_vector.op("@@")(words)).limit(limit),
        select(literal(2), Thread.ticket_id).where(Thread.search_vector.op("@@")(words)).limit(limit),
        select(literal(3), Ticket.id).join(Customer, Customer.id == Ticket.customer_id)
        .where(or_(Customer.search_vector.op("@@")(simple), Customer.email.ilike(fragment, escape="\\"))).limit(limit),
    ]
    if len(query) >= 3:
        branches.append(select(literal(4), Ticket.id).where(Ticket.number.ilike(fragment, escape="\\")).limit(limit))
    rows = db.session.execute(union_all(*branches)).all()
    per_branch: dict[int, int] = {}
    candidates: dict = {}
    for branch, ticket_id in rows:
        per_branch[branch] = per_branch.get(branch, 0) + 1
        candidates[ticket_id] = None
    capped = len(candidates) > CANDIDATE_CAP or any(n >= limit for n in per_branch.values())
    offset = (page - 1) * per_page
    if not capped:
        ids = list(candidates)
        live = (base.with_only_columns(Ticket.id, Ticket.updated_at, Ticket.seq, Ticket.search_vector)
                .where(Ticket.id.in_(ids)).cte("candidates").prefix_with("MATERIALIZED"))
        if ranked:
            best = (select(Thread.ticket_id, func.max(func.ts_rank_cd(Thread.search_vector, words)).label("best"))
                    .where(Thread.ticket_id.in_(ids), Thread.search_vector.op("@@")(words))
                    .group_by(Thread.ticket_id).subquery())
            order = ((func.ts_rank_cd(live.c.search_vector, words) * 2 + func.coalesce(best.c.best, 0)).desc(),
                     live.c.updated_at.desc())
            stmt = select(live.c.id, func.count().over()).outerjoin(best, best.c.ticket_id == live.c.id)
        else:
            order = live.c.updated_at.desc(), live.c.seq.desc()
            stmt = select(live.c.id, func.count().over())
        page_rows = db.session.execute(stmt.order_by(*order).limit(per_page).offset(offset)).all()
        ticket_ids = [r[0] for r in page_rows]
        total = page_rows[0][1] if page_rows else (
            0 if offset == 0 else db.session.scalar(select(func.count()).select_from(live)))
    else:
        thread_hit = (select(literal(1)).where(Thread.ticket_id == Ticket.id, Thread.search_vector.op("@@")(words))
                      .offset(0).exists())
        customer_hit = (select(literal(1)).where(Customer.id == Ticket.customer_id,
                                                 or_(Customer.search_vector.op("@@")(simple),
                                                     Customer.email.ilike(fragment, escape="\\")))
                        .offset(0).exists())
        matches = [Ticket.search_vector.op("@@")(words), thread_hit, customer_hit]
        if len(query) >= 3:
            matches.append(Ticket.number.ilike(fragment, escape="\\"))
        ticket_ids = list(db.session.scalars(
            base.where(or_(*matches)).with_only_columns(Ticket.id)
            .order_by(Ticket.updated_at.desc(), Ticket.seq.desc()).limit(per_page).offset(offset)))
        total = CANDIDATE_CAP
    result = SearchResult(ticket_ids, total, capped)
    result.snippets = snippets(result.ticket_ids, query)
    return result


# ----------------------------------------------------------------------------------------------
# Inbox (no search words): a partial index for the live tickets, and counts that stop counting
# ----------------------------------------------------------------------------------------------

INBOX_INDEX = ("CREATE INDEX proto_ix_tickets_live_status ON tickets (status, updated_at DESC, seq DESC) "
               "WHERE merged_into_id IS NULL AND quarantined IS false")
INBOX_INDEX_DROP = "DROP INDEX IF EXISTS proto_ix_tickets_live_status"
LIVE = "merged_into_id IS NULL AND quarantined IS false"
COUNT_CAP = 10_000

INBOX_QUERIES = {
    # what Echo runs today (count + page), for reference on the same connection
    "open: exact count + page": [
        f"SELECT count(*) FROM tickets WHERE {LIVE} AND status = 'open'",
        f"SELECT id FROM tickets WHERE {LIVE} AND status = 'open' ORDER BY updated_at DESC, seq DESC LIMIT 25",
    ],
    "all: exact count + page": [
        f"SELECT count(*) FROM tickets WHERE {LIVE}",
        f"SELECT id FROM tickets WHERE {LIVE} ORDER BY updated_at DESC, seq DESC LIMIT 25",
    ],
    f"all: count capped at {COUNT_CAP:,} + page": [
        f"SELECT count(*) FROM (SELECT 1 FROM tickets WHERE {LIVE} LIMIT {COUNT_CAP + 1}) s",
        f"SELECT id FROM tickets WHERE {LIVE} ORDER BY updated_at DESC, seq DESC LIMIT 25",
    ],
    "status counts (exact)": [
        f"SELECT status, count(*) FROM tickets WHERE {LIVE} GROUP BY status",
    ],
    f"status counts (each capped at {COUNT_CAP:,})": [
        " UNION ALL ".join(
            f"SELECT '{s}', (SELECT count(*) FROM (SELECT 1 FROM tickets WHERE {LIVE} AND status = '{s}' "
            f"LIMIT {COUNT_CAP + 1}) x)" for s in ("open", "pending", "resolved", "closed")),
    ],
}
