"""Search tickets by words in their subject, messages and customer, newest activity first or ranked.

Every ticket carries one search document (`tickets.search_document`: the subject, weight A, then
every message's stored tsvector, kept by database triggers) under a GIN index, so a ticket
matches when all the words of the query appear anywhere in it (`websearch_to_tsquery`, English
stemming; quoted phrases within one message). Customers match by name or address (the 'simple'
configuration, and pg_trgm for fragments of an address), tickets by fragments of their number.

How the page is found depends on how many tickets match, which PostgreSQL's statistics estimate
(ANALYZE keeps per-word frequencies of tsvector columns): a rare or mid-frequency query fetches
every match through the indexes at once and sorts it, with an exact total; a very common one
walks the newest tickets in index order and keeps the matches, which fills a page within a few
hundred rows, and reports the estimate as an approximate total.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Row,
    Select,
    Text,
    Uuid,
    any_,
    bindparam,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY

from echo.customers.models import Customer
from echo.extensions import db
from echo.tickets.models import Thread, Ticket

MAX_QUERY = 200
RANK_WINDOW = 500  # a very common query ranks its newest this many matches
EXACT_LIMIT = 1000  # up to this many estimated matches, every one is fetched and counted
CUSTOMER_LIMIT = 1000
SNIPPET_SOURCE_CHARS = 3000  # a snippet is cut from the first this many characters of the message
SNIPPET_MESSAGES = 5  # the message is the newest of a ticket's last this many that holds every word
_NUMBER = re.compile(r"^\s*(?:TKT-?)0*(\d{1,12})\s*$", re.IGNORECASE)
_NUMBER_FRAGMENT = re.compile(r"\d|tkt", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_HEADLINE = "StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter= … "


@dataclass(frozen=True)
class Shortcut:
    """A query that names one thing exactly: go straight to it."""

    kind: str  # "ticket" | "customer"
    target: str


@dataclass
class SearchResult:
    ticket_ids: list[uuid.UUID]
    total: int
    capped: bool
    query: str = ""  # the words as searched (trimmed), for the page's snippets


def shortcut(query: str) -> Shortcut | None:
    """A ticket number or a full, known email address leads straight to its page."""
    if (match := _NUMBER.match(query)) is not None:
        number = db.session.scalar(select(Ticket.number).where(Ticket.seq == int(match.group(1))))
        return Shortcut("ticket", number) if number else None
    if _EMAIL.match(query.strip()):
        customer_id = db.session.scalar(
            select(Customer.id).where(Customer.email == query.strip().lower(), Customer.deleted_at.is_(None))
        )
        return Shortcut("customer", str(customer_id)) if customer_id else None
    return None


_CONFIGS: dict[str, ColumnElement[Any]] = {"english": literal_column("'english'::regconfig"),
                                           "simple": literal_column("'simple'::regconfig")}


def _tsquery(query, config: str = "english"):  # the words, or a bind parameter for them
    return func.websearch_to_tsquery(_CONFIGS[config], query)


# The opening round trip. The statements after it depend on the words, so plan each with them
# (never a generic cached plan) and never pay for JIT compilation; then the table's size as the
# planner knows it (kept by autovacuum), the planner's estimate of matching tickets, and the
# customers whose name or address matches.
_QUERY = bindparam("q", type_=Text)
_FRAGMENT = bindparam("fragment", type_=Text)
_CUSTOMER_MATCH = or_(Customer.search_vector.op("@@")(_tsquery(_QUERY, "simple")),
                      Customer.email.ilike(_FRAGMENT, escape="\\"))
_ESTIMATE = func.echo_estimated_matches(_QUERY, type_=Float)  # see the migration that adds it
_matching_customers = select(Customer.id).where(_CUSTOMER_MATCH).limit(CUSTOMER_LIMIT + 1).subquery()
_OPENING = select(
    func.set_config("plan_cache_mode", "force_custom_plan", True), func.set_config("jit", "off", True),
    select(func.greatest(literal_column("reltuples"), 0)).select_from(text("pg_class"))
    .where(text("oid = 'tickets'::regclass")).scalar_subquery(),
    _ESTIMATE,
    select(func.array_agg(_matching_customers.c.id)).scalar_subquery(),
)


def search_tickets(query: str, base: Select, *, page: int, per_page: int, ranked: bool = False) -> SearchResult:
    """Apply a search to `base` (a filtered `select(Ticket)`), returning one page of ticket ids.

    By the planner's estimate of matching tickets: up to EXACT_LIMIT, every match is fetched and
    counted; up to the walk threshold, the newest stretch of tickets likely to hold the page is
    searched through the indexes (widened until the page is full); beyond, the newest tickets are
    walked in index order. The last two report the estimate as an approximate total."""
    query = query.strip()[:MAX_QUERY]
    words, fragment = _tsquery(query), f"%{_escape_like(query.lower())}%"
    _, _, tickets, estimate, customer_ids = db.session.execute(_OPENING, {"q": query, "fragment": fragment}).one()
    tickets, estimate, customer_ids = float(tickets or 0), float(estimate or 0), customer_ids or []
    conditions: list[ColumnElement[bool]] = [Ticket.search_document.op("@@")(words)]
    many_customers = len(customer_ids) > CUSTOMER_LIMIT
    if many_customers:
        conditions.append(select(literal(1)).where(Customer.id == Ticket.customer_id, _CUSTOMER_MATCH).offset(0)
                          .params(q=query, fragment=fragment).exists())
    elif customer_ids:
        conditions.append(Ticket.customer_id == any_(bindparam("customer_ids", customer_ids, type_=ARRAY(Uuid))))
    if len(query) >= 3 and _NUMBER_FRAGMENT.search(query):  # numbers look like TKT-0042: digits or "tkt"
        conditions.append(Ticket.number.ilike(fragment, escape="\\"))
    matching = base.where(or_(*conditions))
    offset = (page - 1) * per_page
    rank = func.ts_rank_cd(Ticket.search_document, words) if ranked else None
    if many_customers or estimate > walk_threshold(tickets):
        result = _walk(matching, rank, per_page, offset, estimate)
    else:
        stretch = (_newest_stretch(matching, rank, per_page, offset, estimate, tickets)
                   if estimate > EXACT_LIMIT else None)
        result = stretch or _every_match(matching, rank, per_page, offset)
    result.query = query
    return result


def _walk(matching: Select, rank, per_page: int, offset: int, estimate: float) -> SearchResult:
    """Very many matches: the newest tickets in index order, checked one by one, fill a page at once."""
    newest = matching.order_by(Ticket.updated_at.desc(), Ticket.seq.desc())
    if rank is not None:
        # Ranked among the newest RANK_WINDOW matches: a relevance order without reading every match.
        window = (newest.with_only_columns(Ticket.id, Ticket.updated_at, Ticket.seq, rank.label("rank"))
                  .limit(RANK_WINDOW).cte("window").prefix_with("MATERIALIZED"))
        page_query = select(window.c.id).order_by(window.c.rank.desc(), window.c.updated_at.desc(), window.c.seq.desc())
    else:
        page_query = newest.with_only_columns(Ticket.id)
    ticket_ids = list(db.session.scalars(page_query.limit(per_page).offset(offset)))
    return SearchResult(ticket_ids, max(int(estimate), len(ticket_ids) + offset), capped=True)


def _every_match(matching: Select, rank, per_page: int, offset: int) -> SearchResult:
    """Every match through the indexes (a BitmapOr), fenced off so the planner cannot walk the
    activity index instead, sorted there, with the exact total from the same statement."""
    rows = _sorted_page(matching, rank, per_page, offset)
    total = rows[0][1] if rows else (
        db.session.execute(select(func.count()).select_from(matching.subquery())).scalar_one() if offset else 0)
    return SearchResult([r[0] for r in rows], total, capped=False)


def _newest_stretch(matching: Select, rank, per_page: int, offset: int, estimate: float,
                    tickets: float) -> SearchResult | None:
    """Thousands of matches: search only the newest stretch of tickets that should hold the page
    (the GIN and activity indexes ANDed as bitmaps), widening it until it holds enough matches.

    A full page from a stretch is exactly the page of the whole table: every match outside the
    stretch is older than every match in it. Ranked, the stretch holds at least the newest
    RANK_WINDOW matches, which are ordered by relevance. None when the stretch would cover every
    ticket (then every match is fetched instead)."""
    need = offset + per_page if rank is None else max(offset + per_page, RANK_WINDOW)
    span = max(1000, int(need * 2 * max(tickets, 1.0) / max(estimate, 1.0)))
    while True:
        since = db.session.scalar(_STRETCH_START, {"span": span})
        if since is None:
            return None
        rows = _sorted_page(matching.where(Ticket.updated_at >= since), rank, per_page, offset)
        if rows and rows[0][1] >= need:
            return SearchResult([r[0] for r in rows], max(int(estimate), rows[0][1]), capped=True)
        span *= 4


def _sorted_page(matching: Select, rank, per_page: int, offset: int) -> Sequence[Row[Any, int]]:
    """(id, number of matches) rows of one page: the matches are materialised behind a fence,
    then ordered newest first (or by `rank`) and counted in the same statement."""
    columns = [Ticket.id, Ticket.updated_at, Ticket.seq] + ([rank.label("rank")] if rank is not None else [])
    found = matching.with_only_columns(*columns).cte("matches").prefix_with("MATERIALIZED")
    order = ((found.c.rank.desc(), found.c.updated_at.desc(), found.c.seq.desc()) if rank is not None
             else (found.c.updated_at.desc(), found.c.seq.desc()))
    return db.session.execute(select(found.c.id, func.count().over()).order_by(*order)
                              .limit(per_page).offset(offset)).all()


# When the span-th newest live ticket was last active (an index-only walk of the activity index).
_STRETCH_START = text("SELECT updated_at FROM tickets WHERE quarantined = false "
                      "ORDER BY updated_at DESC OFFSET :span LIMIT 1")


def estimated_matches(query: str) -> float:
    """How many tickets' documents PostgreSQL expects to match: its estimate from the column's
    word statistics, planned with this very query (see the echo_estimated_matches migration)."""
    return float(db.session.scalar(select(_ESTIMATE), {"q": query}) or 0)


def walk_threshold(tickets: float) -> float:
    """Walk the newest tickets when more than ~sqrt(125 x tickets) match (5 000 of 200 000).

    A walk reads about page / share rows, fetching every match about share x tickets rows, each
    ~5x cheaper: the two cost the same near sqrt(25 x 5 x tickets)."""
    return max(500.0, math.sqrt(125.0 * tickets))


def _snippet_of(ticket_id) -> ColumnElement[str]:
    """A highlighted excerpt of one ticket (HTML-escaped), for the search words bound as `q`: the
    newest of its last SNIPPET_MESSAGES messages that matches the whole query, else (the words are
    spread over several messages, or the ticket matched by customer or number) its newest message,
    with whatever words it holds marked. Bounded, so a long ticket costs no more than a short one."""
    words = _tsquery(_QUERY)
    newest = (select(Thread.stripped_text, Thread.search_vector, Thread.created_at)
              .where(Thread.ticket_id == ticket_id).order_by(Thread.created_at.desc()).correlate(Ticket))
    recent = newest.limit(SNIPPET_MESSAGES).subquery("recent")
    matched = (select(recent.c.stripped_text).where(recent.c.search_vector.op("@@")(words))
               .order_by(recent.c.created_at.desc()).limit(1).scalar_subquery())
    latest = newest.with_only_columns(Thread.stripped_text).limit(1).scalar_subquery()
    text_ = func.left(func.coalesce(matched, latest), SNIPPET_SOURCE_CHARS)
    escaped = func.replace(func.replace(func.replace(text_, "&", "&amp;"), "<", "&lt;"), ">", "&gt;")
    return func.ts_headline(_CONFIGS["english"], escaped, words, _HEADLINE)


# One page of search results: the tickets (with their customer and assignee) and their snippets,
# in one statement built once; `ids` and `q` are bound per search.
SEARCH_PAGE = select(Ticket, _snippet_of(Ticket.id).label("snippet")).where(
    Ticket.id == any_(bindparam("ids", type_=ARRAY(Uuid))))


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
