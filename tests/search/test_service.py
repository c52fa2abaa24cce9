"""Search over the per-ticket search document: what the triggers keep in it, and both ways of finding a page."""

import secrets
import uuid
from datetime import timedelta

from sqlalchemy import func, insert, literal_column, select, text, update

from echo.actors import SYSTEM
from echo.customers.models import Customer
from echo.db import utcnow
from echo.privacy.service import erase_customer
from echo.search.service import CUSTOMER_LIMIT, EXACT_LIMIT, estimated_matches, walk_threshold
from echo.tickets.models import Thread, Ticket
from echo.tickets.queries import TicketFilters, list_tickets
from echo.tickets.service import merge
from tests.factories import CustomerFactory, ThreadFactory, TicketFactory


def document_matches(db, ticket_id, query: str) -> bool:
    words = func.websearch_to_tsquery(literal_column("'english'::regconfig"), query)
    return db.session.scalar(select(Ticket.search_document.op("@@")(words)).where(Ticket.id == ticket_id))


def found(query: str, **filters) -> list[str]:
    return [t.subject for t in list_tickets(TicketFilters(q=query, **filters)).tickets]


def test_a_ticket_matches_words_from_different_messages_but_a_phrase_only_within_one(db):
    ticket = TicketFactory(subject="Billing question")
    ThreadFactory(ticket=ticket, body_text="The invoice shows the wrong amount.")
    ThreadFactory(ticket=ticket, body_text="Our accountant needs a refund today.")
    TicketFactory(subject="Unrelated")
    assert found("invoice refund") == ["Billing question"]
    assert found("billing accountant") == ["Billing question"]  # subject + a message
    assert found('"amount our accountant"') == []  # a phrase never spans two messages
    assert found('"wrong amount"') == ["Billing question"]
    assert found("invoice -refund") == []


def test_new_messages_are_appended_and_rewritten_ones_rebuild_the_document(db):
    ticket = TicketFactory(subject="Login trouble")
    assert document_matches(db, ticket.id, "login")
    thread = ThreadFactory(ticket=ticket, body_text="The magic link expired before I clicked it.")
    assert document_matches(db, ticket.id, "magic link")
    db.session.execute(update(Thread).where(Thread.id == thread.id).values(stripped_text="Password reset works now."))
    db.session.commit()
    assert not document_matches(db, ticket.id, "magic") and document_matches(db, ticket.id, "password")
    db.session.execute(update(Ticket).where(Ticket.id == ticket.id).values(subject="Sign-in fixed"))
    db.session.commit()
    assert not document_matches(db, ticket.id, "trouble") and document_matches(db, ticket.id, "fixed password")


def test_merged_messages_move_to_the_survivors_document(db):
    customer = CustomerFactory()
    source = TicketFactory(customer=customer, subject="First")
    survivor = TicketFactory(customer=customer, subject="Second")
    ThreadFactory(ticket=source, body_text="The webhook retries forever.")
    merge(source, survivor, actor=SYSTEM)
    db.session.commit()
    assert document_matches(db, survivor.id, "webhook") and not document_matches(db, source.id, "webhook")
    assert found("webhook") == ["Second"]


def test_erasure_takes_the_words_out_of_search(db):
    customer = CustomerFactory(email="erase.me@example.com")
    ticket = TicketFactory(customer=customer, subject="Private matter")
    ThreadFactory(ticket=ticket, body_text="My passport number is XK4411 and I live on Juniper Lane.")
    assert found("juniper") == ["Private matter"]
    erase_customer("erase.me@example.com", actor=SYSTEM)
    db.session.commit()
    assert not document_matches(db, ticket.id, "juniper") and not document_matches(db, ticket.id, "XK4411")
    assert list_tickets(TicketFilters(q="juniper")).tickets == []


def _table_size(db) -> float:
    return db.session.scalar(text("SELECT reltuples FROM pg_class WHERE oid = 'tickets'::regclass"))


def _unique_words(characters: int) -> str:
    return " ".join(secrets.token_hex(6) for _ in range(characters // 13))


def test_a_full_document_never_refuses_a_message(db):
    """A tsvector holds 1 MB: the 11th message of ~100 KB of distinct words no longer fits the document,
    yet it is stored, and rebuilding (as erasure or a merge would) copes with the overflow too."""
    ticket = TicketFactory(subject="Log dump")
    for _ in range(12):
        ThreadFactory(ticket=ticket, body_text=_unique_words(99_000))
    last = ThreadFactory(ticket=ticket, body_text="zanzibar " + _unique_words(99_000))
    assert db.session.get(Thread, last.id) is not None
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.ticket_id == ticket.id)) == 13
    assert document_matches(db, ticket.id, "log dump") and not document_matches(db, ticket.id, "zanzibar")
    first = db.session.scalars(select(Thread).where(Thread.ticket_id == ticket.id).order_by(Thread.created_at)).first()
    db.session.execute(update(Thread).where(Thread.id == first.id).values(stripped_text="quokka"))
    db.session.commit()
    assert document_matches(db, ticket.id, "quokka")
    assert db.session.scalar(text("SELECT echo_rebuild_search_documents()")) >= 1


def test_a_common_word_walks_the_newest_tickets_and_a_rare_one_is_counted_exactly(db, client, agent_token):
    customer = CustomerFactory()
    now = utcnow()
    rows = [{"id": uuid.uuid4(), "customer_id": customer.id, "status": "open", "source": "email",
             "subject": f"Invoice {n}" if n % 10 else f"Invoice {n} flamingo", "updated_at": now - timedelta(minutes=n),
             "created_at": now - timedelta(days=1), "status_changed_at": now}
            for n in range(1, 901)]
    rows += [{**rows[0], "id": uuid.uuid4(), "subject": "Something else", "updated_at": now}]
    db.session.execute(insert(Ticket), rows)
    db.session.execute(text("ANALYZE tickets"))
    db.session.commit()
    assert estimated_matches("invoice") > walk_threshold(_table_size(db))
    page = list_tickets(TicketFilters(q="invoice", per_page=25, page=2))
    assert page.capped and page.total >= 500
    assert [t.subject for t in page.tickets] == [f"Invoice {n}" if n % 10 else f"Invoice {n} flamingo"
                                                for n in range(26, 51)]
    ranked_walk = list_tickets(TicketFilters(q="invoice or flamingo", per_page=25, ranked=True))
    assert ranked_walk.capped and all("flamingo" in t.subject for t in ranked_walk.tickets[:25])
    rare = list_tickets(TicketFilters(q="flamingo", per_page=25))
    assert not rare.capped and rare.total == 90
    assert [t.subject for t in rare.tickets] == [f"Invoice {n} flamingo" for n in range(10, 251, 10)]
    _, headers = agent_token()
    api = client.get("/api/v1/agent/tickets", query_string={"q": "invoice", "per_page": 3}, headers=headers).get_json()
    assert api["total_exact"] is False
    assert [t["subject"] for t in api["tickets"]] == ["Invoice 1", "Invoice 2", "Invoice 3"]
    exact = client.get("/api/v1/agent/tickets", query_string={"q": "flamingo"}, headers=headers).get_json()
    assert exact["total_exact"] is True and exact["total"] == 90
    ranked = list_tickets(TicketFilters(q="flamingo", per_page=5, ranked=True))
    assert len(ranked.tickets) == 5 and all("flamingo" in t.subject for t in ranked.tickets)


def test_thousands_of_matches_search_the_newest_stretch_and_widen_it_until_the_page_is_full(db):
    """Between EXACT_LIMIT and the walk threshold: the page equals the exact newest matches, on a
    first page and on one far enough back that the first stretch must be widened."""
    customer = CustomerFactory()
    now = utcnow()
    db.session.execute(insert(Ticket), [
        {"id": uuid.uuid4(), "customer_id": customer.id, "status": "open", "source": "email",
         "subject": f"Ticket {n}" + (" pelican" if n % 16 == 0 else "")
                    + (" heron" if n >= 10_000 and n % 8 == 0 else ""),
         "updated_at": now - timedelta(seconds=n),
         "created_at": now, "status_changed_at": now}
        for n in range(20_000)
    ])
    db.session.execute(text("ANALYZE tickets"))
    db.session.commit()
    estimate = estimated_matches("pelican")
    assert EXACT_LIMIT < estimate < walk_threshold(_table_size(db))
    matches = [f"Ticket {n} pelican" + (" heron" if n >= 10_000 and n % 8 == 0 else "") for n in range(0, 20_000, 16)]
    first = list_tickets(TicketFilters(q="pelican", per_page=25))
    assert first.capped and [t.subject for t in first.tickets] == matches[:25]
    deep = list_tickets(TicketFilters(q="pelican", per_page=50, page=20))
    assert [t.subject for t in deep.tickets] == matches[950:1000]
    last = list_tickets(TicketFilters(q="pelican", per_page=50, page=25))  # past the end of every stretch
    assert [t.subject for t in last.tickets] == matches[1200:1250] and not last.capped and last.total == 1250
    ranked = list_tickets(TicketFilters(q="pelican", per_page=10, ranked=True))
    assert len(ranked.tickets) == 10 and all("pelican" in t.subject for t in ranked.tickets)
    # Every "heron" is in the older half: the first stretches hold none and are widened.
    assert EXACT_LIMIT < estimated_matches("heron") < walk_threshold(_table_size(db))
    herons = list_tickets(TicketFilters(q="heron", per_page=25))
    assert herons.capped
    assert [t.subject.split()[1] for t in herons.tickets] == [str(n) for n in range(10_000, 10_200, 8)]


def test_more_matching_customers_than_the_limit_are_checked_ticket_by_ticket(db):
    db.session.execute(insert(Customer), [
        {"id": uuid.uuid4(), "email": f"person{i}@acme-widgets.test", "display_name": f"Person {i}"}
        for i in range(CUSTOMER_LIMIT + 1)
    ])
    db.session.commit()
    acme = db.session.scalar(select(Customer).where(Customer.email == "person7@acme-widgets.test"))
    TicketFactory(customer=acme, subject="Order question")
    TicketFactory(subject="Something else")
    assert found("acme-widgets") == ["Order question"]
