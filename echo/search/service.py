"""Search tickets by words in their subject, messages and customer, newest activity first or ranked.

Matching uses stored tsvectors with GIN indexes (`websearch_to_tsquery`, English stemming for
text, the 'simple' configuration for customer names and addresses) and pg_trgm for fragments
of email addresses and ticket numbers. The match set is gathered from the indexes with a cap:
below it, the exact set is sorted; at the cap (a very common word), the newest tickets are
walked in index order and checked one by one, which finds a page of hits almost at once.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from sqlalchemy import Select, exists, func, literal_column, or_, select

from sqlalchemy.dialects.postgresql import distinct_on

from echo.customers.models import Customer
from echo.extensions import db
from echo.tickets.models import Thread, Ticket

CANDIDATE_CAP = 2000
MAX_QUERY = 200
_NUMBER = re.compile(r"^\s*(?:TKT-?)0*(\d{1,12})\s*$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


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
    snippets: dict[uuid.UUID, str] = field(default_factory=dict)


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


_CONFIGS = {"english": literal_column("'english'::regconfig"), "simple": literal_column("'simple'::regconfig")}


def _tsquery(query: str, config: str = "english"):
    return func.websearch_to_tsquery(_CONFIGS[config], query)


def _matching_ticket_ids(query: str) -> list[Select]:
    """Per-source queries for ids of tickets whose subject, a message, the customer or the number matches."""
    words = _tsquery(query)
    fragment = f"%{_escape_like(query.strip().lower())}%"
    by_subject = select(Ticket.id.label("id")).where(Ticket.search_vector.op("@@")(words))
    by_message = select(Thread.ticket_id.label("id")).where(Thread.search_vector.op("@@")(words))
    by_customer = (
        select(Ticket.id.label("id")).join(Customer, Customer.id == Ticket.customer_id)
        .where(or_(Customer.search_vector.op("@@")(_tsquery(query, "simple")),
                   Customer.email.ilike(fragment, escape="\\")))
    )
    by_number = select(Ticket.id.label("id")).where(Ticket.number.ilike(fragment, escape="\\"))
    parts = [by_subject, by_message, by_customer]
    if len(query.strip()) >= 3:
        parts.append(by_number)
    return parts


def _candidates(query: str) -> tuple[list[uuid.UUID], bool]:
    """Matching ticket ids, at most CANDIDATE_CAP. Each source is limited on its own, so a very common
    word stops at the cap instead of de-duplicating every matching message first."""
    found: dict[uuid.UUID, None] = {}
    capped = False
    for part in _matching_ticket_ids(query):
        rows = db.session.scalars(part.limit(CANDIDATE_CAP + 1)).all()
        capped = capped or len(rows) > CANDIDATE_CAP
        found.update(dict.fromkeys(rows))
    capped = capped or len(found) > CANDIDATE_CAP
    return list(found)[:CANDIDATE_CAP], capped


def ticket_matches(ticket_id_column, query: str):
    """A per-ticket predicate for the same match, used when walking tickets in activity order."""
    words = _tsquery(query)
    fragment = f"%{_escape_like(query.strip().lower())}%"
    by_number = [Ticket.number.ilike(fragment, escape="\\")] if len(query.strip()) >= 3 else []
    return or_(
        *by_number,
        Ticket.search_vector.op("@@")(words),
        # OFFSET 0 keeps this a per-ticket probe; otherwise the planner hashes every matching message first.
        exists(select(Thread.id).where(Thread.ticket_id == ticket_id_column, Thread.search_vector.op("@@")(words))
               .offset(0)),
        exists().where(Customer.id == Ticket.customer_id,
                       or_(Customer.search_vector.op("@@")(_tsquery(query, "simple")),
                           Customer.email.ilike(fragment, escape="\\"))),
    )


def search_tickets(query: str, base: Select, *, page: int, per_page: int, ranked: bool = False) -> SearchResult:
    """Apply a search to `base` (a filtered `select(Ticket)`), returning one page of ticket ids."""
    query = query.strip()[:MAX_QUERY]
    candidates, capped = _candidates(query)
    offset = (page - 1) * per_page
    if not capped:
        filtered = base.where(Ticket.id.in_(candidates))
        total = db.session.scalar(select(func.count()).select_from(filtered.subquery()))
        if ranked:
            order = _rank(query).desc(), Ticket.updated_at.desc()
        else:
            order = Ticket.updated_at.desc(), Ticket.seq.desc()
        rows = db.session.scalars(filtered.with_only_columns(Ticket.id).order_by(*order)
                                  .limit(per_page).offset(offset)).all()
    else:
        # A very common word: walk the newest tickets through the activity index and keep the matches.
        rows = db.session.scalars(
            base.where(ticket_matches(Ticket.id, query)).with_only_columns(Ticket.id)
            .order_by(Ticket.updated_at.desc(), Ticket.seq.desc()).limit(per_page).offset(offset)
        ).all()
        total = CANDIDATE_CAP
    result = SearchResult(list(rows), total, capped)
    result.snippets = snippets(result.ticket_ids, query)
    return result


def _rank(query: str):
    words = _tsquery(query)
    best_message = (
        select(func.max(func.ts_rank_cd(Thread.search_vector, words)))
        .where(Thread.ticket_id == Ticket.id).scalar_subquery()
    )
    return func.ts_rank_cd(Ticket.search_vector, words) * 2 + func.coalesce(best_message, 0)


def snippets(ticket_ids: list[uuid.UUID], query: str) -> dict[uuid.UUID, str]:
    """A highlighted excerpt of the best matching message of each ticket on the page (HTML-escaped)."""
    if not ticket_ids:
        return {}
    words = _tsquery(query)
    best = (
        select(Thread.ticket_id, Thread.stripped_text)
        .where(Thread.ticket_id.in_(ticket_ids), Thread.search_vector.op("@@")(words))
        .order_by(Thread.ticket_id, func.ts_rank_cd(Thread.search_vector, words).desc())
        .ext(distinct_on(Thread.ticket_id))
        .subquery()
    )
    rows = db.session.execute(
        select(best.c.ticket_id, func.ts_headline(
            _CONFIGS["english"],
            func.replace(func.replace(func.replace(func.left(best.c.stripped_text, 5000), "&", "&amp;"),
                                      "<", "&lt;"), ">", "&gt;"),
            words,
            "StartSel=<mark>, StopSel=</mark>, MaxWords=24, MinWords=10, MaxFragments=2, FragmentDelimiter= … ",
        ))
    )
    return {ticket_id: headline for ticket_id, headline in rows}


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")

