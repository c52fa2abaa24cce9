"""Console pages: inbox, search, ticket actions, customer page and attachment downloads."""

import re
import uuid

import pytest
from sqlalchemy import select, update

from echo.attachments.models import Attachment
from echo.tickets.models import Ticket
from tests.factories import AgentFactory
from tests.mailbuilder import attachment, inbound_payload, post_inbound

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)


def test_inbox_lists_tickets_with_counts_and_empty_state(signed_in):
    client, _, _ = signed_in()
    assert "New email to support shows up in this list" in client.get("/tickets").get_data(as_text=True)
    post_inbound(client, inbound_payload(subject="Cannot export my trades"))
    post_inbound(client, inbound_payload(sender="bob@example.com", subject="Spam thing", headers={"X-Spam-Score": "9"}))
    page = client.get("/tickets").get_data(as_text=True)
    assert "Cannot export my trades" in page and "TKT-0001" in page and "Spam thing" not in page
    assert "Spam thing" in client.get("/tickets?quarantined=1").get_data(as_text=True)
    fragment = client.get("/tickets?status=open", headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in fragment and "Cannot export my trades" in fragment


def test_search_finds_body_words_numbers_and_email_fragments(signed_in):
    client, _, _ = signed_in()
    post_inbound(client, inbound_payload(sender="alice.martin@example.com", subject="Export",
                                         text="The CSV export spins forever on my portfolio"))
    post_inbound(client, inbound_payload(sender="bob@example.org", subject="Login", text="Magic link never arrives"))
    body = client.get("/tickets?q=portfolio").get_data(as_text=True)
    assert "Export" in body and "Login" not in body and "<mark>portfolio</mark>" in body
    assert "Export" in client.get("/tickets?q=portfolios").get_data(as_text=True)  # stemming
    fragment = client.get("/tickets?q=alice.mar").get_data(as_text=True)
    assert "Export" in fragment and "Login" not in fragment
    quoted = client.get('/tickets?q="link never arrives"').get_data(as_text=True)
    assert "Login" in quoted and "Export" not in quoted
    assert "Nothing matches" in client.get('/tickets?q="arrives link never"').get_data(as_text=True)
    jump = client.get("/tickets?q=TKT-0002")
    assert jump.status_code == 302 and jump.headers["Location"].endswith("/tickets/TKT-0002")
    person = client.get("/tickets?q=bob@example.org")
    assert person.status_code == 302 and "/tickets/customers/" in person.headers["Location"]


@pytest.mark.parametrize("query", ["'); DROP TABLE tickets; --", "<script>alert(1)</script>", ":* & | ! ( )",
                                   "\\", "%_%", "a" * 500, '"unterminated', "-", "OR OR AND"])
def test_hostile_search_input_is_harmless(signed_in, db, query):
    client, _, _ = signed_in()
    post_inbound(client, inbound_payload())
    response = client.get("/tickets", query_string={"q": query})
    assert response.status_code == 200
    assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    assert db.session.scalar(select(Ticket.number)) == "TKT-0001"


def test_ticket_page_shows_thread_kinds_and_collapses_quotes(signed_in):
    client, token, _ = signed_in()
    post_inbound(client, inbound_payload(message_id="<m1@mail.example.com>"))
    post_inbound(client, inbound_payload(
        in_reply_to="<m1@mail.example.com>",
        text="New detail here.\n\nOn Mon, 3 Mar 2025 at 09:02, Raxx Support <support@raxx.app> wrote:\n> Old text\n",
    ))
    client.post("/tickets/TKT-0001/note", data={"body": "Internal thought", "csrf_token": token})
    page = client.get("/tickets/TKT-0001").get_data(as_text=True)
    assert 'class="card message customer"' in page and 'class="card message note"' in page
    assert "New detail here." in page and "<summary>Show the whole message</summary>" in page
    assert "Internal thought" in page


def test_actions_through_htmx_return_the_updated_fragment(signed_in, db, run_jobs, postmark):
    client, token, _ = signed_in()
    AgentFactory(email="sam@raxx.app", display_name="Sam")
    post_inbound(client, inbound_payload())
    hx = {"HX-Request": "true", "X-CSRFToken": token}
    reply = client.post("/tickets/TKT-0001/reply", data={"body": "We are on it", "status": "pending"}, headers=hx)
    assert reply.status_code == 200 and "Reply queued" in reply.get_data(as_text=True)
    assert "<html" not in reply.get_data(as_text=True)
    assert client.post("/tickets/TKT-0001/assign", data={"assignee": "sam@raxx.app"}, headers=hx).status_code == 200
    assert client.post("/tickets/TKT-0001/tags", data={"tags": "VIP, billing"}, headers=hx).status_code == 200
    assert client.post("/tickets/TKT-0001/category", data={"category": "billing"}, headers=hx).status_code == 200
    ticket = db.session.scalar(select(Ticket))
    assert (ticket.status, ticket.assignee.email, ticket.tags, ticket.category) == (
        "pending", "sam@raxx.app", ["vip", "billing"], "billing")
    closed = client.post("/tickets/TKT-0001/status", data={"status": "closed"}, headers=hx)
    assert "This ticket is closed" in closed.get_data(as_text=True)
    refused = client.post("/tickets/TKT-0001/reply", data={"body": "late"}, headers=hx)
    assert refused.status_code == 409 and "closed" in refused.get_data(as_text=True)
    empty = client.post("/tickets/TKT-0001/note", data={"body": "   "}, headers=hx)
    assert empty.status_code == 422 and "needs some text" in empty.get_data(as_text=True)
    run_jobs()
    assert [m["Tag"] for m in postmark.sent].count("reply") == 1


def test_reply_with_attachment_from_the_console(signed_in, db, run_jobs, postmark):
    from io import BytesIO

    client, token, _ = signed_in()
    post_inbound(client, inbound_payload())
    response = client.post("/tickets/TKT-0001/reply", data={
        "body": "Guide attached", "csrf_token": token,
        "attachments": [(BytesIO(b"%PDF-1.4 guide"), "guide.pdf", "application/pdf")],
    }, content_type="multipart/form-data")
    assert response.status_code == 302
    run_jobs()
    sent = [m for m in postmark.sent if m["Tag"] == "reply"][0]
    assert sent["Attachments"][0]["Name"] == "guide.pdf"


def test_release_from_quarantine_acknowledges_held_mail_but_never_spam(signed_in, db, run_jobs, postmark):
    client, token, _ = signed_in()
    post_inbound(client, inbound_payload(headers={"X-Spam-Score": "8"}))
    post_inbound(client, inbound_payload(sender="busy@example.com", subject="Held for volume"))
    db.session.execute(update(Ticket).where(Ticket.number == "TKT-0002")
                       .values(quarantined=True, quarantine_reason="flood"))
    db.session.commit()
    run_jobs()
    postmark.reset()
    for number in ("TKT-0001", "TKT-0002"):
        client.post(f"/tickets/{number}/release", data={"csrf_token": token})
    run_jobs()
    assert db.session.scalars(select(Ticket.quarantined)).all() == [False, False]
    assert [(m["To"], m["Tag"]) for m in postmark.sent] == [("busy@example.com", "acknowledgement")]  # not the spammer


def test_customer_page_lists_their_tickets(signed_in, db):
    client, _, _ = signed_in()
    post_inbound(client, inbound_payload(subject="first"))
    post_inbound(client, inbound_payload(subject="second"))
    customer_id = db.session.scalar(select(Ticket.customer_id))
    page = client.get(f"/tickets/customers/{customer_id}").get_data(as_text=True)
    assert "first" in page and "second" in page and "alice@example.com" in page
    assert client.get(f"/tickets/customers/{uuid.uuid4()}").status_code == 404


def test_attachments_download_safely(signed_in, db):
    client, _, _ = signed_in()
    post_inbound(client, inbound_payload(attachments=[
        attachment("pic.png", PNG, "image/png"), attachment("page.html", b"<script>alert(1)</script>", "text/html"),
        attachment("draw.svg", b"<svg onload=alert(1)/>", "image/svg+xml"),
    ]))
    rows = {a.filename: a for a in db.session.scalars(select(Attachment))}
    png = client.get(f"/tickets/attachments/{rows['pic.png'].id}")
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.headers["Content-Disposition"].startswith("inline")
    for name in ("page.html", "draw.svg"):
        response = client.get(f"/tickets/attachments/{rows[name].id}")
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]
    assert client.get(f"/tickets/attachments/{uuid.uuid4()}").status_code == 404


def test_the_agent_sees_what_the_intake_cut_from_a_message(signed_in, db):
    from echo.inbound import limits

    client, _, _ = signed_in()
    post_inbound(client, inbound_payload(text="", html="<div>" * 5_000 + "deep words" + "</div>" * 5_000))
    page = client.get("/tickets/TKT-0001").get_data(as_text=True)
    assert 'class="notices"' in page and "nested more than 100 elements deep" in page
    assert limits.ORIGINAL_FILENAME in page and "deep words" in page


def test_quoted_text_is_offered_only_when_something_was_hidden(signed_in):
    client, _, _ = signed_in()
    post_inbound(client, inbound_payload(text="Nothing quoted here.", html=None, message_id="<a@mail.example.com>"))
    page = client.get("/tickets/TKT-0001").get_data(as_text=True)
    assert "Formatted view" in page and "Show quoted text" not in page and "Show the whole message" not in page
    post_inbound(client, inbound_payload(in_reply_to="<a@mail.example.com>", html="",
                                         text="It works.\n\nOn Mon, Nov 2, Raxx <support@raxx.app> wrote:\n> Try"))
    page = client.get("/tickets/TKT-0001").get_data(as_text=True)
    assert page.count("Show quoted text") == 1


def test_a_reply_waiting_for_its_next_attempt_says_why_and_can_be_sent_now(signed_in, db, run_jobs, postmark):
    client, token, _ = signed_in()
    post_inbound(client, inbound_payload(headers={"Auto-Submitted": "no"}))
    run_jobs()
    postmark.reset()
    postmark.fail_next(status=503)
    client.post("/tickets/TKT-0001/reply", data={"csrf_token": token, "body": "Here is the fix."})
    run_jobs()
    page = client.get("/tickets/TKT-0001").get_data(as_text=True)
    assert "Not sent yet (1 attempt)" in page and "Send now" in page and "HTTP 503" in page
    outbox_id = re.search(r'/outbox/([0-9a-f-]+)/retry', page).group(1)
    assert client.post(f"/tickets/TKT-0001/outbox/{outbox_id}/retry", data={"csrf_token": token}).status_code == 302
    run_jobs()
    assert [m["TextBody"].startswith("Here is the fix.") for m in postmark.sent] == [True]
    assert "Send now" not in client.get("/tickets/TKT-0001").get_data(as_text=True)
