"""Proposed fixes for the slow shapes bench/search.py finds, measured in the same run (--prototype).

This is NOT Echo's code. The two functions below are drop-in stand-ins for
`echo.search.service.search_tickets`; the benchmark patches them into `echo.tickets.queries`
while it times them, so each proposal runs through the same `list_tickets` code path (ORM
loading, snippets, totals) and its first pages are checked against an exact reference.

Proposal A (`search_tickets_a`): same schema, same semantics, fixed query shapes.
  0. A word that the planner's statistics put in more than 4 x cap messages goes straight to the
     capped path (the newest tickets, checked one by one): collecting candidates is skipped.
  1. Candidates: each branch of the union gets its own LIMIT (threads: 4 x cap, since one ticket
     has several matching messages), UNION ALL, de-duplicated in Python. Echo's
     `SELECT ... FROM (a UNION b UNION c) LIMIT 2001` de-duplicates every row of every branch
     before the LIMIT applies: for "account" that is a sequential scan of all threads.
  2. Exact path: the candidates are fetched behind a fence (a MATERIALIZED CTE) and sorted there,
     with the total as `count(*) OVER ()` in the same statement. Echo's
     `WHERE id IN (...) ORDER BY updated_at DESC LIMIT 25` lets the planner walk the inbox index
     backwards and filter by id, and the total is a second statement.
  3. Ranked: the best message rank is computed from the candidates' matching messages only, in
     one grouped pass, not by a correlated subquery that ranks every message of every candidate.
  4. Capped path: the per-ticket EXISTS checks get an `OFFSET 0` fence, so PostgreSQL cannot turn
     them into a "hashed SubPlan" (which first reads every matching message in the table). The
     walk also checks ticket numbers (Echo's walk forgets that branch).
  5. Snippets: the page's messages are fetched first (MATERIALIZED), then matched; Echo's query
     lets the planner AND the ticket_id index with a full GIN scan of the query's words.

Proposal B (`search_tickets_b`): one search document per ticket (subject + every message,
`tickets.proto_doc`, GIN-indexed; built by `DOC_BUILD`, to be maintained on every new message).
  * The strategy comes from the planner's row estimate for `proto_doc @@ query` (ANALYZE keeps
    per-word frequencies of tsvector columns, and the estimates are close): a word in many
    tickets walks the newest tickets in index order (a page of hits within a few hundred rows);
    otherwise every match is fetched at once through a BitmapOr of the GIN, customer and
    trigram indexes, behind a fence, and sorted, with an exact total.
  * Matching becomes ticket-level: "a b" matches a ticket whose messages contain a and b, even in
    different messages (Echo today: within one message or the subject). Phrases still match
    within one message.
  * Customers are looked up first (at most 1000 ids) and matched as `customer_id = ANY(...)`.
"""

from __future__ import annotations

import json
import math
import time

from sqlalchemy import Select, Uuid, any_, bindparam, func, literal, literal_column, or_, select, text, union_all
from sqlalchemy.dialects.postgresql import ARRAY

from echo.customers.models import Customer
from echo.extensions import db
from echo.search.service import _CONFIGS, CANDIDATE_CAP, MAX_QUERY, SearchResult, _escape_like, _tsquery
from echo.tickets.models import Thread, Ticket

THREAD_ROWS_PER_CAP = 4
HEADLINE = "StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter= … "


def _escaped(text_sql):
    return func.replace(func.replace(func.replace(func.left(text_sql, 5000), "&", "&amp;"), "<", "&lt;"), ">", "&gt;")


def snippets_fenced(ticket_ids: list, query: str) -> dict:
    """Echo's snippets, but the page's messages are fetched first, then matched and highlighted."""
    if not ticket_ids:
        return {}
    words = _tsquery(query)
    page_threads = (select(Thread.ticket_id, Thread.stripped_text, Thread.search_vector)
                    .where(Thread.ticket_id.in_(ticket_ids)).cte("page_threads").prefix_with("MATERIALIZED"))
    best = (select(page_threads.c.ticket_id, page_threads.c.stripped_text)
            .where(page_threads.c.search_vector.op("@@")(words))
            .order_by(page_threads.c.ticket_id, func.ts_rank_cd(page_threads.c.search_vector, words).desc())
            .distinct(page_threads.c.ticket_id).subquery())
    rows = db.session.execute(select(best.c.ticket_id, func.ts_headline(
        _CONFIGS["english"], _escaped(best.c.stripped_text), words, HEADLINE)))
    return {ticket_id: headline for ticket_id, headline in rows}


# ----------------------------------------------------------------------------------------------
# Proposal A: same schema and semantics, better query shapes
# ----------------------------------------------------------------------------------------------

def search_tickets_a(query: str, base: Select, *, page: int, per_page: int, ranked: bool = False) -> SearchResult:
    query = query.strip()[:MAX_QUERY]
    words, simple = _tsquery(query), _tsquery(query, "simple")
    fragment = f"%{_escape_like(query.lower())}%"
    limit, thread_limit = CANDIDATE_CAP + 1, THREAD_ROWS_PER_CAP * CANDIDATE_CAP + 1
    branches = [
        select(literal(1).label("b"), Ticket.id.label("id")).where(Ticket.search_vector.op("@@")(words)).limit(limit),
        select(literal(2), Thread.ticket_id).where(Thread.search_vector.op("@@")(words)).limit(thread_limit),
        select(literal(3), Ticket.id).join(Customer, Customer.id == Ticket.customer_id)
        .where(or_(Customer.search_vector.op("@@")(simple), Customer.email.ilike(fragment, escape="\\"))).limit(limit),
    ]
    if len(query) >= 3:
        branches.append(select(literal(4), Ticket.id).where(Ticket.number.ilike(fragment, escape="\\")).limit(limit))
    per_branch: dict[int, int] = {}
    candidates: dict = {}
    # A word the statistics say is in more messages than the threads branch may return would be
    # capped anyway: skip collecting candidates and walk at once.
    capped = _estimated_rows(select(Thread.id).where(Thread.search_vector.op("@@")(words))) >= thread_limit
    if not capped:
        for branch, ticket_id in db.session.execute(union_all(*branches)):
            per_branch[branch] = per_branch.get(branch, 0) + 1
            candidates[ticket_id] = None
        capped = (len(candidates) > CANDIDATE_CAP or per_branch.get(2, 0) >= thread_limit
                  or any(n >= limit for b, n in per_branch.items() if b != 2))
    offset = (page - 1) * per_page
    if not capped:
        ids = list(candidates)
        id_array = bindparam("candidate_ids", ids, type_=ARRAY(Uuid))
        live = (base.with_only_columns(Ticket.id, Ticket.updated_at, Ticket.seq, Ticket.search_vector)
                .where(Ticket.id == any_(id_array)).cte("candidates").prefix_with("MATERIALIZED"))
        if ranked:
            best = (select(Thread.ticket_id, func.max(func.ts_rank_cd(Thread.search_vector, words)).label("best"))
                    .where(Thread.ticket_id == any_(id_array), Thread.search_vector.op("@@")(words))
                    .group_by(Thread.ticket_id).subquery())
            order = ((func.ts_rank_cd(live.c.search_vector, words) * 2 + func.coalesce(best.c.best, 0)).desc(),
                     live.c.updated_at.desc())
            stmt = select(live.c.id, func.count().over()).outerjoin(best, best.c.ticket_id == live.c.id)
        else:
            order = live.c.updated_at.desc(), live.c.seq.desc()
            stmt = select(live.c.id, func.count().over())
        page_rows = db.session.execute(stmt.order_by(*order).limit(per_page).offset(offset)).all()
        ticket_ids = [r[0] for r in page_rows]
        total = page_rows[0][1] if page_rows else 0
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
    result.snippets = snippets_fenced(result.ticket_ids, query)
    return result


# ----------------------------------------------------------------------------------------------
# Proposal B: one search document per ticket
# ----------------------------------------------------------------------------------------------

DOC = literal_column("tickets.proto_doc")
CUSTOMER_LIMIT = 1000
DOC_BUILD = [
    "CREATE AGGREGATE pg_temp.tsv_agg(tsvector) (SFUNC = tsvector_concat, STYPE = tsvector, INITCOND = '')",
    "ALTER TABLE tickets ADD COLUMN proto_doc tsvector",
    "SET work_mem = '1GB'",
    # Every message's stored vector, in order (concatenation shifts positions, so a phrase never
    # spans two messages); the subject keeps its weight A.
    "UPDATE tickets t SET proto_doc = t.search_vector || coalesce(a.doc, ''::tsvector) FROM "
    "(SELECT ticket_id, pg_temp.tsv_agg(search_vector ORDER BY created_at) AS doc FROM threads GROUP BY ticket_id) a "
    "WHERE a.ticket_id = t.id",
    "RESET work_mem",
    "SET maintenance_work_mem = '2GB'",
    "CREATE INDEX proto_ix_tickets_doc ON tickets USING gin (proto_doc)",
    "RESET maintenance_work_mem",
    "VACUUM ANALYZE tickets",
]
DOC_DROP = ["DROP INDEX IF EXISTS proto_ix_tickets_doc", "ALTER TABLE tickets DROP COLUMN IF EXISTS proto_doc"]
DOC_REFERENCE = """
SELECT t.id, count(*) OVER () FROM tickets t
 WHERE t.merged_into_id IS NULL AND t.quarantined IS false
   AND (t.proto_doc @@ websearch_to_tsquery('english'::regconfig, %(q)s)
        OR EXISTS (SELECT 1 FROM customers c WHERE c.id = t.customer_id
                   AND (c.search_vector @@ websearch_to_tsquery('simple'::regconfig, %(q)s) OR c.email ILIKE %(frag)s))
        OR (%(numbers)s AND t.number ILIKE %(frag)s))
 ORDER BY t.updated_at DESC, t.seq DESC LIMIT 25
"""
# The write side: appending one message to its ticket's document, vs. the updated_at update
# Echo already makes for every message (the benchmark rolls both back).
DOC_WRITE = ("UPDATE tickets SET proto_doc = proto_doc || to_tsvector('english'::regconfig, left(%(text)s, 100000)), "
             "updated_at = now() WHERE id = %(id)s")
PLAIN_WRITE = "UPDATE tickets SET updated_at = now() WHERE id = %(id)s"


def _estimated_rows(stmt) -> float:
    """The planner's row estimate (the query text is inlined, so a prepared generic plan can't blur it)."""
    sql = str(stmt.compile(dialect=db.engine.dialect, compile_kwargs={"literal_binds": True}))
    plan = db.session.connection().exec_driver_sql("EXPLAIN (FORMAT JSON) " + sql).scalar()
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return float(plan[0]["Plan"]["Plan Rows"])


_THRESHOLD: list = []


def walk_threshold() -> float:
    """Walk in index order when more tickets match than ~sqrt(125 x live tickets) (5 000 of 200 000).

    Walking costs ~25 / share rows, fetching all matches costs ~share x N rows (about 5x cheaper
    per row): they cross near sqrt(25 x 5 x N).
    """
    if _THRESHOLD and time.monotonic() - _THRESHOLD[0] < 300:  # the table size changes slowly: ask every 5 min
        return _THRESHOLD[1]
    n = db.session.execute(text("SELECT reltuples FROM pg_class WHERE oid = 'tickets'::regclass")).scalar()
    _THRESHOLD[:] = [time.monotonic(), max(500.0, math.sqrt(125.0 * max(float(n or 0), 1.0)))]
    return _THRESHOLD[1]


def search_tickets_b(query: str, base: Select, *, page: int, per_page: int, ranked: bool = False) -> SearchResult:
    query = query.strip()[:MAX_QUERY]
    words, simple = _tsquery(query), _tsquery(query, "simple")
    fragment = f"%{_escape_like(query.lower())}%"
    customer_ids = db.session.scalars(
        select(Customer.id).where(or_(Customer.search_vector.op("@@")(simple),
                                      Customer.email.ilike(fragment, escape="\\"))).limit(CUSTOMER_LIMIT + 1)).all()
    many_customers = len(customer_ids) > CUSTOMER_LIMIT
    conditions = [DOC.op("@@")(words)]
    if many_customers:
        conditions.append(select(literal(1)).where(
            Customer.id == Ticket.customer_id, or_(Customer.search_vector.op("@@")(simple),
                                                   Customer.email.ilike(fragment, escape="\\"))).offset(0).exists())
    elif customer_ids:
        conditions.append(Ticket.customer_id == any_(bindparam("customer_ids", customer_ids, type_=ARRAY(Uuid))))
    if len(query) >= 3:
        conditions.append(Ticket.number.ilike(fragment, escape="\\"))
    match = or_(*conditions)
    estimate = _estimated_rows(select(Ticket.id).where(DOC.op("@@")(words)))
    offset = (page - 1) * per_page
    if many_customers or estimate > walk_threshold():
        # Many matches: the newest tickets in index order, checked one by one, find a page at once.
        ticket_ids = list(db.session.scalars(
            base.where(match).with_only_columns(Ticket.id)
            .order_by(Ticket.updated_at.desc(), Ticket.seq.desc()).limit(per_page).offset(offset)))
        total, capped = int(estimate), True  # "about N"
    else:
        columns = [Ticket.id, Ticket.updated_at, Ticket.seq] + ([DOC.label("doc")] if ranked else [])
        live = base.where(match).with_only_columns(*columns).cte("matches").prefix_with("MATERIALIZED")
        order = ((func.ts_rank_cd(live.c.doc, words).desc(), live.c.updated_at.desc()) if ranked
                 else (live.c.updated_at.desc(), live.c.seq.desc()))
        page_rows = db.session.execute(
            select(live.c.id, func.count().over()).order_by(*order).limit(per_page).offset(offset)).all()
        ticket_ids = [r[0] for r in page_rows]
        total, capped = (page_rows[0][1] if page_rows else 0), False
    result = SearchResult(ticket_ids, total, capped)
    result.snippets = snippets_fenced(result.ticket_ids, query)
    return result


# ----------------------------------------------------------------------------------------------
# Inbox (no search words): a partial index for live tickets, and counts that stop counting
# ----------------------------------------------------------------------------------------------

INBOX_INDEX = ("CREATE INDEX proto_ix_tickets_live_status ON tickets (status, updated_at DESC, seq DESC) "
               "WHERE merged_into_id IS NULL AND quarantined IS false")
INBOX_INDEX_DROP = "DROP INDEX IF EXISTS proto_ix_tickets_live_status"
LIVE = "merged_into_id IS NULL AND quarantined IS false"
COUNT_CAP = 10_000
STATUSES = ("open", "pending", "resolved", "closed")

INBOX_QUERIES = {
    "open page + exact count": [
        f"SELECT count(*) FROM tickets WHERE {LIVE} AND status = 'open'",
        f"SELECT id FROM tickets WHERE {LIVE} AND status = 'open' ORDER BY updated_at DESC, seq DESC LIMIT 25",
    ],
    "all page + exact count": [
        f"SELECT count(*) FROM tickets WHERE {LIVE}",
        f"SELECT id FROM tickets WHERE {LIVE} ORDER BY updated_at DESC, seq DESC LIMIT 25",
    ],
    f"all page + count capped at {COUNT_CAP:,}": [
        f"SELECT count(*) FROM (SELECT 1 FROM tickets WHERE {LIVE} LIMIT {COUNT_CAP + 1}) s",
        f"SELECT id FROM tickets WHERE {LIVE} ORDER BY updated_at DESC, seq DESC LIMIT 25",
    ],
    "status counts, exact": [f"SELECT status, count(*) FROM tickets WHERE {LIVE} GROUP BY status"],
    f"status counts, each capped at {COUNT_CAP:,}": [
        "SELECT " + ", ".join(
            f"(SELECT count(*) FROM (SELECT 1 FROM tickets WHERE {LIVE} AND status = '{s}' LIMIT {COUNT_CAP + 1}) x)"
            for s in STATUSES)],
}
