"""The whole email loop against the local Postmark: customer writes, agent answers, customer replies."""

import base64
import uuid

from sqlalchemy import select

from echo.mail import reply_token
from echo.mail.models import OutboxMessage
from echo.tickets.models import Thread, Ticket
from tests.conftest import SECRET
from tests.mailbuilder import inbound_payload, post_inbound


def test_full_loop_threads_both_ways(client, db, run_jobs, postmark, agent_token):
    agent, headers = agent_token()
    first = post_inbound(client, inbound_payload(
        subject="Cannot export my trades", message_id="<CAF=first@mail.gmail.com>",
    )).get_json()
    run_jobs()  # acknowledgement
    ack = postmark.sent[0]

    reply = client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers,
                        json={"body_text": "Hi Alice, please try the new export button."})
    assert reply.status_code == 201
    assert reply.get_json()["outbox"]["state"] == "queued"
    assert len(postmark.sent) == 1  # nothing leaves before the worker runs
    run_jobs()
    email = postmark.sent[1]
    number = first["ticket_number"]
    assert email["From"] == '"Raxx Support" <support@raxx.app>'
    assert email["To"] == "alice@example.com"
    assert email["Subject"] == f"Re: Cannot export my trades [{number}]"
    assert "please try the new export button" in email["TextBody"]
    assert "please try the new export button" in email["HtmlBody"]
    assert f"https://support.raxx.app/tickets/{first['ticket_id']}" in email["TextBody"]
    token = email["ReplyTo"].split("+", 1)[1].split("@")[0]
    assert reply_token.verify(SECRET, token) == uuid.UUID(first["ticket_id"])
    sent_headers = {h["Name"]: h["Value"] for h in email["Headers"]}
    # The parent is the customer's message (RFC 5322 §3.6.4), not our automatic acknowledgement.
    # Each id goes back exactly as the customer's client spelled it (clients compare them exactly).
    assert sent_headers["In-Reply-To"] == "<CAF=first@mail.gmail.com>"
    assert sent_headers["References"] == "<CAF=first@mail.gmail.com>"
    assert ack["MessageID"] not in sent_headers["References"]
    assert "Auto-Submitted" not in sent_headers  # a person wrote this one
    outbox = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "reply"))
    assert email["Metadata"] == {"echo_outbox_id": str(outbox.id), "echo_ticket_id": first["ticket_id"]}
    assert outbox.state == "sent" and outbox.postmark_message_id == email["MessageID"]

    second = client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "And also…"})
    assert second.status_code == 201
    run_jobs()
    chained = {h["Name"]: h["Value"] for h in postmark.sent[2]["Headers"]}
    assert chained["In-Reply-To"] == f"<{email['MessageID']}@mtasv.net>"
    assert chained["References"] == f"<CAF=first@mail.gmail.com> <{email['MessageID']}@mtasv.net>"

    answer = post_inbound(client, inbound_payload(
        in_reply_to=f"<{email['MessageID']}@mtasv.net>", subject=f"Re: Cannot export my trades [{number}]",
        text="Thanks, that worked!",
    )).get_json()
    assert answer["status"] == "appended" and answer["ticket_id"] == first["ticket_id"]

    headerless = post_inbound(client, inbound_payload(subject="no headers at all", mailbox_hash=token)).get_json()
    assert headerless["status"] == "appended" and headerless["ticket_id"] == first["ticket_id"]


def test_reply_moves_ticket_to_pending_by_default_and_shows_outbox_state(client, db, run_jobs, agent_token):
    _, headers = agent_token()
    post_inbound(client, inbound_payload())
    client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "On it."})
    run_jobs()
    ticket = client.get("/api/v1/agent/tickets/TKT-0001", headers=headers).get_json()
    assert ticket["status"] == "pending"
    outbound = [t for t in ticket["threads"] if t["direction"] == "outbound"]
    assert outbound[0]["outbox"]["state"] == "sent"
    kept_open = client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers,
                            json={"body_text": "More soon.", "status": "open"})
    assert kept_open.status_code == 201
    assert db.session.scalar(select(Ticket.status)) == "open"


def test_agent_html_reply_is_sanitised_before_it_is_stored_or_sent(client, db, run_jobs, postmark, agent_token):
    _, headers = agent_token()
    post_inbound(client, inbound_payload())
    client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers,
                json={"body_html": '<p>Hello <b>there</b><script>alert(1)</script><img src=x onerror=alert(1)></p>'})
    run_jobs()
    html = postmark.sent[-1]["HtmlBody"]
    assert "<b>there</b>" in html and "<script" not in html and "onerror" not in html
    assert "Hello there" in postmark.sent[-1]["TextBody"]


def test_reply_attachments_travel_with_the_email(client, db, run_jobs, postmark, agent_token, app):
    from echo.actors import Actor
    from echo.attachments.service import IncomingFile
    from echo.outbound.service import send_reply
    from echo.tickets.service import get_ticket

    agent, _ = agent_token()
    post_inbound(client, inbound_payload())
    send_reply(get_ticket("TKT-0001"), actor=Actor.agent(agent), body_text="See attached.",
               files=[IncomingFile("guide.pdf", "application/pdf", b"%PDF-1.4 guide", None)])
    db.session.commit()
    run_jobs()
    attachments = postmark.sent[-1]["Attachments"]
    assert attachments == [{"Name": "guide.pdf", "Content": base64.b64encode(b"%PDF-1.4 guide").decode(),
                            "ContentType": "application/pdf"}]


def test_internal_notes_never_leave_echo(client, db, run_jobs, postmark, agent_token):
    _, headers = agent_token()
    post_inbound(client, inbound_payload())
    run_jobs()
    response = client.post("/api/v1/agent/tickets/TKT-0001/notes", headers=headers,
                           json={"body_text": "SECRET-NOTE: customer is on the legacy plan"})
    assert response.status_code == 201
    client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "Looking into it."})
    run_jobs()
    assert len(postmark.sent) == 2
    assert all("SECRET-NOTE" not in (m["TextBody"] + m["HtmlBody"]) for m in postmark.sent)
    note = db.session.scalar(select(Thread).where(Thread.direction == "internal"))
    assert note.body_text.startswith("SECRET-NOTE")
    assert db.session.scalar(select(OutboxMessage).where(OutboxMessage.thread_id == note.id)) is None


def test_closed_ticket_rejects_agent_replies(client, db, agent_token):
    _, headers = agent_token()
    post_inbound(client, inbound_payload())
    assert client.patch("/api/v1/agent/tickets/TKT-0001", headers=headers, json={"status": "closed"}).status_code == 200
    response = client.post("/api/v1/agent/tickets/TKT-0001/replies", headers=headers, json={"body_text": "late"})
    assert response.status_code == 409 and response.get_json()["error"] == "ticket_closed"
    assert db.session.scalar(select(Thread).where(Thread.direction == "outbound")) is None
