"""The highlighted excerpt beside each search result: from that ticket's own messages, escaped."""

from datetime import timedelta

from echo.db import utcnow
from echo.tickets.queries import TicketFilters, list_tickets
from tests.factories import CustomerFactory, ThreadFactory, TicketFactory


def snippets_by_subject(query: str) -> dict[str, str]:
    page = list_tickets(TicketFilters(q=query))
    return {ticket.subject: page.snippets.get(ticket.id) for ticket in page.tickets}


def test_each_ticket_shows_its_own_newest_matching_message(db):
    earlier = utcnow() - timedelta(hours=2)
    alpha = TicketFactory(subject="Alpha")
    ThreadFactory(ticket=alpha, body_text="The pelican export failed on Monday.", created_at=earlier)
    ThreadFactory(ticket=alpha, body_text="Any news on this?")  # newer, but without the word
    beta = TicketFactory(subject="Beta")
    ThreadFactory(ticket=beta, body_text="Older note about the weather.", created_at=earlier)
    ThreadFactory(ticket=beta, body_text="Our pelican dashboard is blank.")
    TicketFactory(subject="Gamma")  # no match, no row

    snippets = snippets_by_subject("pelican")

    assert set(snippets) == {"Alpha", "Beta"}
    assert "<mark>pelican</mark> export" in snippets["Alpha"]
    assert "dashboard" not in snippets["Alpha"] and "news" not in snippets["Alpha"]
    assert "<mark>pelican</mark> dashboard" in snippets["Beta"]
    assert "export" not in snippets["Beta"] and "weather" not in snippets["Beta"]


def test_a_ticket_found_by_its_customer_shows_its_newest_message(db):
    customer = CustomerFactory(display_name="Ottoline Quarrington")
    ticket = TicketFactory(customer=customer, subject="Question")
    ThreadFactory(ticket=ticket, body_text="First message.", created_at=utcnow() - timedelta(hours=1))
    ThreadFactory(ticket=ticket, body_text="Second message, the newest.")

    assert "Second message, the newest." in snippets_by_subject("quarrington")["Question"]


def test_message_text_is_escaped_and_only_the_marks_are_html(db):
    ticket = TicketFactory(subject="Markup")
    ThreadFactory(ticket=ticket, body_text='Heron & co. <img src=x onerror="alert(1)">')

    snippet = snippets_by_subject("heron")["Markup"]

    assert snippet.startswith("<mark>Heron</mark> &amp; co. &lt;img")
    assert "<img" not in snippet and snippet.count("<") == 2  # <mark> and </mark>
