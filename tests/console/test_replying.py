"""Undo send: a reply from the console waits its undo window in the outbox and can be taken back until it
leaves; a customer's replies leave in the order they were written, even when an earlier one is retried."""

import re
import threading
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select, update

from echo.agents.models import AgentSession
from echo.db import utcnow
from echo.mail import tasks
from echo.mail.models import OutboxMessage
from echo.outbound import service as outbound
from echo.tickets.models import Draft, MessageId, Thread, Ticket
from tests.factories import AgentFactory
from tests.mailbuilder import inbound_payload, post_inbound


@pytest.fixture
def held(app):
    """The console holds replies five seconds, as it does by default outside the tests."""
    settings = app.config["ECHO"]
    app.config["ECHO"] = settings.with_overrides(undo_send_seconds=5)
    yield 5
    app.config["ECHO"] = settings


def open_ticket(client) -> str:
    assert post_inbound(client, inbound_payload(sender="ada@example.com", subject="Export fails")).status_code == 200
    return "TKT-0001"


def answered_ticket(client, run_jobs, postmark) -> str:
    """A ticket whose acknowledgement has gone out (and is forgotten by the fake Postmark)."""
    number = open_ticket(client)
    run_jobs()
    postmark.sent.clear()
    return number


def reply(client, token, number, text, status="pending"):
    return client.post(f"/tickets/{number}/reply", data={"csrf_token": token, "body": text, "status": status},
                       headers={"HX-Request": "true"})


def replies_sent(postmark) -> list[str]:
    return [m["TextBody"].split("\n")[0] for m in postmark.sent if m["To"].endswith("ada@example.com")
            and "Export fails" in m["Subject"] and m["Subject"].startswith("Re:")]


def test_a_held_reply_is_not_sent_until_its_window_ends(signed_in, db, run_jobs, call_task, postmark, held):
    client, token, _ = signed_in()
    number = answered_ticket(client, run_jobs, postmark)
    page = reply(client, token, number, "Fixed on our side.").get_data(as_text=True)
    assert "Reply sends in 5 seconds." in page and "Undo" in page
    run_jobs()
    assert call_task(tasks.sweep_outbox) == 0  # not due: nobody sends it yet
    run_jobs()
    assert postmark.sent == []
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1), tick=False):
        assert call_task(tasks.sweep_outbox) == 1
        run_jobs()
    assert replies_sent(postmark) == ["Fixed on our side."]


def test_undo_takes_the_reply_back_and_puts_its_text_in_the_box(signed_in, db, run_jobs, call_task, postmark,
                                                                held):
    client, token, _ = signed_in()
    number = answered_ticket(client, run_jobs, postmark)
    reply(client, token, number, "Oops, wrong customer.", status="resolved")
    db.session.expire_all()
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    assert ticket.status == "resolved"
    thread = db.session.scalar(select(Thread).where(Thread.direction == "outbound"))
    message_id = thread.rfc_message_id

    page = client.post(f"/tickets/{number}/replies/{thread.id}/undo", data={"csrf_token": token},
                       headers={"HX-Request": "true"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Reply taken back; it was not sent." in html
    assert ">Oops, wrong customer.</textarea>" in html
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.direction == "outbound")) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "reply")) == 0
    assert db.session.get(MessageId, message_id) is None
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == number))
    assert ticket.status == "open" and ticket.last_agent_reply_at is None  # as before the reply
    with time_machine.travel(utcnow() + timedelta(minutes=5), tick=False):
        call_task(tasks.sweep_outbox)
        run_jobs()
    assert replies_sent(postmark) == []


def test_undo_after_the_reply_left_is_refused_and_changes_nothing(signed_in, db, run_jobs, call_task, postmark,
                                                                  held):
    client, token, _ = signed_in()
    number = answered_ticket(client, run_jobs, postmark)
    reply(client, token, number, "On its way.")
    row = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    with time_machine.travel(row.next_attempt_at + timedelta(seconds=1), tick=False):
        call_task(tasks.sweep_outbox)
        run_jobs()
        response = client.post(f"/tickets/{number}/replies/{row.thread_id}/undo", data={"csrf_token": token},
                               headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "already left" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(Thread, row.thread_id) is not None
    assert db.session.get(OutboxMessage, row.id).state in ("sent", "delivered")
    assert replies_sent(postmark) == ["On its way."]


def test_only_the_author_can_undo(signed_in, db, held, agent_client):
    client, token, _ = signed_in()
    number = open_ticket(client)
    reply(client, token, number, "Mine.")
    thread = db.session.scalar(select(Thread).where(Thread.direction == "outbound"))
    other, other_token = agent_client(AgentFactory(email="ben@echo.local", display_name="Ben", role="ops"))
    response = other.post(f"/tickets/{number}/replies/{thread.id}/undo", data={"csrf_token": other_token},
                          headers={"HX-Request": "true"})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Thread, thread.id) is not None


def test_a_retried_reply_holds_back_the_next_one_so_they_arrive_in_order(client, db, run_jobs, call_task, postmark,
                                                                         agent_token):
    number = open_ticket(client)
    run_jobs()
    postmark.sent.clear()
    _, headers = agent_token()
    postmark.fail_next(status=500)
    assert client.post(f"/api/v1/agent/tickets/{number}/replies", headers=headers,
                       json={"body_text": "First answer."}).status_code == 201
    run_jobs()
    assert replies_sent(postmark) == []  # Postmark failed it: it waits for a retry
    assert client.post(f"/api/v1/agent/tickets/{number}/replies", headers=headers,
                       json={"body_text": "Second answer."}).status_code == 201
    run_jobs()
    assert replies_sent(postmark) == []  # the second does not overtake the first
    first = db.session.scalar(select(OutboxMessage).where(OutboxMessage.attempts == 1, OutboxMessage.kind == "reply"))
    with time_machine.travel(first.next_attempt_at + timedelta(seconds=1), tick=False):
        call_task(tasks.sweep_outbox)
        run_jobs()
    assert replies_sent(postmark) == ["First answer.", "Second answer."]


# --- Drafts -------------------------------------------------------------------------------------

def test_a_draft_survives_a_reload_others_see_it_and_sending_discards_it(signed_in, db, agent_client, run_jobs,
                                                                        postmark):
    client, token, me = signed_in()
    number = open_ticket(client)
    saved = client.post(f"/tickets/{number}/draft", data={"csrf_token": token, "body": "Half a thought",
                                                          "cc": "lead@example.com"}, headers={"HX-Request": "true"})
    assert saved.status_code == 200 and saved.get_data(as_text=True).startswith("Draft saved")
    page = client.get(f"/tickets/{number}").get_data(as_text=True)
    assert ">Half a thought</textarea>" in page and 'value="lead@example.com"' in page

    ben, _ = agent_client(AgentFactory(email="ben@echo.local", display_name="Ben", role="ops"))
    other = ben.get(f"/tickets/{number}").get_data(as_text=True)
    assert "Demo Agent has a draft reply on this ticket." in other
    assert "Half a thought" not in other  # a colleague sees that there is a draft, not its words
    assert "Demo Agent has a draft" in ben.get("/tickets").get_data(as_text=True)

    assert reply(client, token, number, "The whole thought.").status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Draft)) == 0
    assert "has a draft" not in ben.get(f"/tickets/{number}").get_data(as_text=True)


def test_an_empty_box_deletes_the_draft(signed_in, db):
    client, token, _ = signed_in()
    number = open_ticket(client)
    client.post(f"/tickets/{number}/draft", data={"csrf_token": token, "body": "x"}, headers={"HX-Request": "true"})
    client.post(f"/tickets/{number}/draft", data={"csrf_token": token, "body": "  "}, headers={"HX-Request": "true"})
    assert db.session.scalar(select(func.count()).select_from(Draft)) == 0


def test_a_reply_posted_after_the_session_lapsed_returns_to_the_ticket_after_sign_in(signed_in, db):
    client, token, _ = signed_in()
    number = open_ticket(client)
    db.session.execute(update(AgentSession).values(revoked_at=func.now()))
    db.session.commit()
    plain = client.post(f"/tickets/{number}/reply", data={"csrf_token": token, "body": "typed"})
    assert plain.status_code == 302
    assert plain.headers["Location"].endswith(f"/tickets/login?next=/tickets/{number}")  # a page, not the POST URL
    htmx = client.post(f"/tickets/{number}/draft", data={"csrf_token": token, "body": "typed"},
                       headers={"HX-Request": "true", "HX-Current-URL": f"https://help.raxx.app/tickets/{number}"})
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].endswith(f"next=/tickets/{number}")
    # The draft saved before the lapse is there after signing in again.


# --- Cc and Bcc ---------------------------------------------------------------------------------

def cc_payload(**kwargs):
    payload = inbound_payload(sender="ada@example.com", subject="Export fails", **kwargs)
    payload["ToFull"].append({"Email": "Bob@Example.com", "Name": "Bob", "MailboxHash": ""})
    payload["CcFull"] = [{"Email": "carol@example.org", "Name": "Carol", "MailboxHash": ""},
                         {"Email": "support+abc@raxx.app", "Name": "", "MailboxHash": "abc"},
                         {"Email": "ada@example.com", "Name": "Ada", "MailboxHash": ""}]
    return payload


def test_inbound_cc_is_kept_and_a_reply_goes_to_everyone_by_default(signed_in, db, run_jobs, postmark):
    client, token, _ = signed_in()
    assert post_inbound(client, cc_payload()).status_code == 200
    thread = db.session.scalar(select(Thread).where(Thread.direction == "inbound"))
    assert thread.cc == ["bob@example.com", "carol@example.org"]  # not support, not the sender
    page = client.get("/tickets/TKT-0001").get_data(as_text=True)
    assert "Cc: bob@example.com, carol@example.org" in page
    assert 'value="bob@example.com, carol@example.org"' in page  # the reply box's Cc, ready for reply-all
    run_jobs()
    postmark.sent.clear()
    response = client.post("/tickets/TKT-0001/reply", headers={"HX-Request": "true"}, data={
        "csrf_token": token, "body": "Looking into it.", "cc": "bob@example.com, Dee <dee@example.net>",
        "bcc": "audit@raxx-internal.com"})
    assert response.status_code == 200
    run_jobs()
    sent = [m for m in postmark.sent if m["To"] == "ada@example.com"]
    assert len(sent) == 1
    assert sent[0]["Cc"] == "bob@example.com, dee@example.net" and sent[0]["Bcc"] == "audit@raxx-internal.com"
    out = db.session.scalar(select(Thread).where(Thread.direction == "outbound"))
    assert out.cc == ["bob@example.com", "dee@example.net"] and out.bcc == ["audit@raxx-internal.com"]


def test_a_cc_that_is_not_an_address_is_refused_and_nothing_is_written(signed_in, db, run_jobs, postmark):
    client, token, _ = signed_in()
    number = open_ticket(client)
    response = client.post(f"/tickets/{number}/reply", headers={"HX-Request": "true"}, data={
        "csrf_token": token, "body": "Hello", "cc": "bob@example.com, not an address"})
    assert response.status_code == 422
    assert "is not an email address" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.direction == "outbound")) == 0
    assert db.session.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.kind == "reply")) == 0


def test_a_cc_d_colleague_replies_onto_the_ticket_but_never_owns_it(client, db, agent_token, run_jobs, postmark):
    assert post_inbound(client, cc_payload()).status_code == 200
    _, headers = agent_token()
    assert client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers,
                       json={"body_text": "On it."}).status_code == 201
    run_jobs()
    ours = next(m for m in postmark.sent if m["TextBody"].startswith("On it.") and m["To"] == "ada@example.com")
    assert "carol@example.org" in ours["Cc"]
    message_id = f"<{ours['MessageID']}@mtasv.net>"  # the id Postmark gives what it sends
    answer = inbound_payload(sender="carol@example.org", name="Carol", subject="Re: Export fails",
                             in_reply_to=message_id, text="Same problem here.")
    assert post_inbound(client, answer).status_code == 200
    db.session.expire_all()
    ticket = db.session.scalar(select(Ticket).where(Ticket.number == "TKT-0001"))
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 1
    assert ticket.customer.email == "ada@example.com"  # the owner stays the owner: Carol's portal never shows it
    assert [t.sender_email for t in ticket.threads if t.direction == "inbound"] == ["ada@example.com",
                                                                                      "carol@example.org"]
    assert outbound.reply_all(ticket) == ["carol@example.org"]  # the next answer goes to Carol too


# --- Signatures, saved replies, send and next -------------------------------------------------------

def test_the_agents_signature_goes_under_a_console_reply(signed_in, db, run_jobs, postmark):
    client, token, agent = signed_in()
    assert client.post("/tickets/settings", data={"csrf_token": token, "display_name": "Demo Agent",
                                                  "time_zone": "Europe/Berlin",
                                                  "signature": "Demo\nRaxx support"}).status_code == 302
    number = open_ticket(client)
    run_jobs()
    postmark.sent.clear()
    reply(client, token, number, "Fixed.")
    run_jobs()
    assert postmark.sent[0]["TextBody"].startswith("Fixed.\n\nDemo\nRaxx support")


def test_a_saved_reply_fills_its_placeholders(signed_in, db):
    client, token, _ = signed_in()
    number = open_ticket(client)  # from "Alice Example"
    page = client.post("/tickets/saved-replies", data={"csrf_token": token, "name": "Refund policy",
                                                       "body": "Hi {first_name}, about {ticket_number}: {unknown}."})
    assert page.status_code == 302
    clash = client.post("/tickets/saved-replies", data={"csrf_token": token, "name": "refund POLICY", "body": "x"})
    assert clash.status_code == 409 and "already a saved reply" in clash.get_data(as_text=True)
    filled = client.get(f"/tickets/{number}/saved-reply?name=refund%20policy")
    assert filled.get_data(as_text=True) == f"Hi Alice, about {number}: {{unknown}}."
    assert "Refund policy" in client.get(f"/tickets/{number}").get_data(as_text=True)  # in the reply box's picker


def test_send_and_next_opens_the_next_ticket_of_the_view(signed_in, db):
    client, token, _ = signed_in()
    for i in range(3):
        assert post_inbound(client, inbound_payload(sender=f"c{i}@example.com", subject=f"Q{i}")).status_code == 200
    # Newest customer message first: TKT-0003, TKT-0002, TKT-0001.
    response = client.post("/tickets/TKT-0002/reply", headers={"HX-Request": "true"}, data={
        "csrf_token": token, "body": "Answer.", "next": "1", "view": "/tickets?status=&sort="})
    assert response.status_code == 204 and response.headers["HX-Redirect"] == "/tickets/TKT-0001"
    last = client.post("/tickets/TKT-0001/reply", headers={"HX-Request": "true"}, data={
        "csrf_token": token, "body": "Answer.", "next": "1", "view": "/tickets"})
    assert last.status_code == 200  # the end of the view: the ticket again, with its reply


# --- Traffic cop --------------------------------------------------------------------------------

SEEN = re.compile(r'name="seen" value="([^"]+)"')


def test_a_reply_written_before_the_customer_wrote_again_is_held_back(signed_in, db, run_jobs, postmark):
    client, token, _ = signed_in()
    number = answered_ticket(client, run_jobs, postmark)
    seen = SEEN.search(client.get(f"/tickets/{number}").get_data(as_text=True)).group(1)
    first = db.session.scalar(select(Thread.rfc_message_id).where(Thread.direction == "inbound"))
    again = inbound_payload(sender="ada@example.com", subject="Re: Export fails", in_reply_to=f"<{first}>",
                            text="Never mind, it works now!")
    assert post_inbound(client, again).status_code == 200
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.direction == "inbound")) == 2

    held_back = client.post(f"/tickets/{number}/reply", headers={"HX-Request": "true"}, data={
        "csrf_token": token, "body": "Let me look into the export.", "seen": seen})
    html = held_back.get_data(as_text=True)
    assert held_back.status_code == 409 and "Not sent: the customer wrote again" in html
    assert "Never mind, it works now!" in html  # what arrived is on the page
    assert ">Let me look into the export.</textarea>" in html and "Send anyway" in html
    assert db.session.scalar(select(func.count()).select_from(Thread).where(Thread.direction == "outbound")) == 0
    seen_now = SEEN.search(html).group(1)
    sent = client.post(f"/tickets/{number}/reply", headers={"HX-Request": "true"}, data={
        "csrf_token": token, "body": "Glad it works!", "seen": seen_now})
    assert sent.status_code == 200
    run_jobs()
    assert replies_sent(postmark) == ["Glad it works!"]


def test_two_agents_pressing_send_at_once_send_one_answer(client, db, agent_token, run_jobs, postmark):
    number = answered_ticket(client, run_jobs, postmark)
    seen = db.session.scalar(select(func.max(Thread.created_at))).isoformat()
    headers = [agent_token()[1], agent_token(email="ben@raxx.app")[1]]
    barrier = threading.Barrier(2)
    results: list[int] = []

    def send(index: int) -> None:
        barrier.wait(timeout=10)
        try:
            response = client.application.test_client().post(
                f"/api/v1/agent/tickets/{number}/replies", headers=headers[index],
                json={"body_text": f"Answer {index}.", "seen_until": seen})
            results.append((response.status_code, response.get_json()))
        except Exception as exc:  # shown by the assertion below
            results.append((0, repr(exc)))

    workers = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(status for status, _ in results) == [201, 409], results
    run_jobs()
    assert len(replies_sent(postmark)) == 1
