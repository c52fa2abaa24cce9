"""Notifications from the event log: who hears of a new ticket, a reply, an assignment and an @mention, in the
bell and by email as each agent chose; each change once, however often the notifier runs."""

from sqlalchemy import select

from echo.notifications.models import Notification
from echo.notifications.tasks import notify
from tests.factories import AgentFactory
from tests.mailbuilder import inbound_payload, post_inbound


def told(db) -> list[tuple[str, str]]:
    db.session.expire_all()
    from echo.agents.models import Agent

    return sorted((agent.email, n.kind) for n, agent in db.session.execute(
        select(Notification, Agent).join(Agent, Agent.id == Notification.agent_id)))


def mails_to(postmark, address) -> list[str]:
    return [m["Subject"] for m in postmark.sent if m["To"] == address]


def team():
    return (AgentFactory(email="ana@raxx.app", display_name="Ana", notify_new="all"),
            AgentFactory(email="ben@raxx.app", display_name="Ben", notify_new="unassigned", notify_email=False),
            AgentFactory(email="cy@raxx.app", display_name="Cy", notify_new="none"))


def test_new_tickets_and_replies_reach_whoever_asked(client, db, call_task, run_jobs, postmark):
    ana, ben, cy = team()
    call_task(notify)  # the notifier starts from now
    first = inbound_payload(sender="ada@example.com", subject="Export fails", message_id="<e1@mail.example.com>")
    assert post_inbound(client, first).status_code == 200
    call_task(notify)
    assert told(db) == [("ana@raxx.app", "new_ticket"), ("ben@raxx.app", "new_ticket")]
    call_task(notify)  # a second run tells nobody again
    assert len(told(db)) == 2
    run_jobs()
    assert mails_to(postmark, "ana@raxx.app") == ["[TKT-0001] New ticket: Export fails"]
    assert mails_to(postmark, "ben@raxx.app") == [] and mails_to(postmark, "cy@raxx.app") == []

    again = inbound_payload(sender="ada@example.com", subject="Re: Export fails", in_reply_to="<e1@mail.example.com>")
    assert post_inbound(client, again).status_code == 200
    call_task(notify)
    assert told(db).count(("ana@raxx.app", "customer_reply")) == 1  # unassigned: "all" hears of replies
    assert ("ben@raxx.app", "customer_reply") not in told(db)


def test_assignment_and_a_reply_on_an_assigned_ticket_tell_the_assignee(client, db, call_task, agent_token):
    ana, ben, cy = team()
    boss, headers = agent_token(email="boss@raxx.app", notify_new="none")
    call_task(notify)
    post_inbound(client, inbound_payload(sender="ada@example.com", subject="Export", message_id="<e2@x.example>"))
    client.patch("/api/v1/agent/tickets/TKT-0001", headers=headers, json={"assignee": "cy@raxx.app"})
    call_task(notify)
    assert ("cy@raxx.app", "assigned") in told(db)
    post_inbound(client, inbound_payload(sender="ada@example.com", subject="Re: Export", in_reply_to="<e2@x.example>"))
    call_task(notify)
    replies = [who for who, kind in told(db) if kind == "customer_reply"]
    assert replies == ["cy@raxx.app"]  # the assignee, whatever their choice for unassigned mail


def test_an_at_mention_in_a_note_tells_that_colleague(client, db, call_task, run_jobs, postmark, agent_token):
    ana, ben, cy = team()
    author, headers = agent_token(email="dee@raxx.app", notify_new="none")
    call_task(notify)
    post_inbound(client, inbound_payload(subject="Refund"))
    run_jobs()
    postmark.sent.clear()
    client.post("/api/v1/agent/tickets/TKT-0001/notes", headers=headers,
                json={"body_text": "@cy can you check the refund? (cc me, @dee; not mail@example.com)"})
    call_task(notify)
    mentions = [who for who, kind in told(db) if kind == "mention"]
    assert mentions == ["cy@raxx.app"]  # not the author, not an address that contains @
    run_jobs()
    assert mails_to(postmark, "cy@raxx.app") == ["[TKT-0001] You were mentioned: Refund"]
