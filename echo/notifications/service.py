"""Making notifications from the event log (the worker's `notify` job), and reading them (the console).

Each ticket change is an audit row (`echo.live.stream`); the notifier reads them in order from where it
stopped, in one transaction with the notifications it writes and its new position, so a change
notifies once, however often the job runs or fails."""

from __future__ import annotations

import re
import uuid

from sqlalchemy import func, select, update

from echo.agents.models import Agent
from echo.db import utcnow
from echo.extensions import db
from echo.live import stream
from echo.live.stream import Cursor, Row
from echo.mail.service import queue_email
from echo.notifications.models import Notification, NotifyCursor
from echo.tickets.models import Thread, Ticket

BATCH = 500
MENTION = re.compile(r"(?<![\w.@])@([a-z0-9][a-z0-9._+-]{0,63})", re.IGNORECASE)


def notify_from_events(limit: int = BATCH) -> int:
    """Handle the next changes of the event log; how many rows were read. The caller commits."""
    position = db.session.scalar(select(NotifyCursor).with_for_update())
    conn = db.session.connection()
    if position is None:  # the first run starts now: nothing from before is announced
        start = stream.head(conn)
        position = NotifyCursor(id=1, xid=start.xid, row_id=start.id)
        db.session.add(position)
    rows = stream.read_after(conn, Cursor(position.xid, position.row_id), limit)
    if not rows:
        return 0
    agents = list(db.session.scalars(select(Agent).where(Agent.active)))
    if agents:  # with nobody to tell there is nothing to do; else the batch's tickets in one query
        tickets = {t.id: t for t in db.session.scalars(
            select(Ticket).where(Ticket.id.in_({row.ticket_id for row in rows if row.ticket_id})))}
        for row in rows:
            if (ticket := tickets.get(row.ticket_id)) is not None:  # type: ignore[arg-type]
                _handle(row, ticket, agents)
    position.xid, position.row_id = rows[-1].cursor.xid, rows[-1].cursor.id
    return len(rows)


def _handle(row: Row, ticket: Ticket, agents: list[Agent]) -> None:
    payload = row.payload
    human = not payload.get("auto_reply") and not payload.get("quarantined")
    by = row.actor
    if row.action in ("tickets.inbound", "tickets.portal_create", "tickets.portal_message", "tickets.portal_reply"):
        if not human:
            return
        created = row.action == "tickets.portal_create" or (row.action == "tickets.inbound" and payload.get("created"))
        if ticket.quarantined:
            return
        if created:
            _tell([a for a in agents if a.notify_new in ("all", "unassigned")], ticket, "new_ticket", by, email=True)
        elif ticket.assigned_to is not None:  # the assignee's email went with the reply itself
            _tell([a for a in agents if a.id == ticket.assigned_to], ticket, "customer_reply", by, email=False)
        else:
            _tell([a for a in agents if a.notify_new == "all"], ticket, "customer_reply", by, email=True)
    elif row.action == "tickets.assign" and payload.get("new"):
        assignee = uuid.UUID(payload["new"])
        if by != f"agent:{assignee}":  # the assignment email is sent by `assign` itself
            _tell([a for a in agents if a.id == assignee], ticket, "assigned", by, email=False)
    elif row.action == "tickets.note" and payload.get("thread_id"):
        thread = db.session.get(Thread, uuid.UUID(payload["thread_id"]))
        if thread is None:
            return
        handles = {m.lower() for m in MENTION.findall(thread.body_text)}
        named = [a for a in agents if a.email.partition("@")[0].lower() in handles and f"agent:{a.id}" != by]
        _tell(named, ticket, "mention", by, email=True)


def _tell(agents: list[Agent], ticket: Ticket, kind: str, actor: str, *, email: bool) -> None:
    for agent in agents:
        if actor == f"agent:{agent.id}":
            continue  # nobody is told of what they did themselves
        db.session.add(Notification(agent_id=agent.id, ticket_id=ticket.id, kind=kind, actor=actor))
        if email and agent.notify_email:
            queue_email(f"notify_{kind}", to_email=agent.email, ticket=ticket, context={"kind": kind})


def unread_count(agent_id: uuid.UUID) -> int:
    return db.session.scalar(select(func.count()).select_from(
        select(Notification.id).where(Notification.agent_id == agent_id, Notification.read_at.is_(None))
        .limit(100).subquery())) or 0


def latest(agent_id: uuid.UUID, limit: int = 50) -> list[tuple[Notification, Ticket]]:
    return [(n, t) for n, t in db.session.execute(
        select(Notification, Ticket).join(Ticket, Ticket.id == Notification.ticket_id)
        .where(Notification.agent_id == agent_id).order_by(Notification.created_at.desc()).limit(limit)).all()]


def mark_read(agent_id: uuid.UUID, notification_id: uuid.UUID | None = None) -> int:
    """Mark one of the agent's notifications read, or all of them."""
    query = update(Notification).where(Notification.agent_id == agent_id, Notification.read_at.is_(None))
    if notification_id is not None:
        query = query.where(Notification.id == notification_id)
    return db.session.execute(query.values(read_at=utcnow())).rowcount  # type: ignore[attr-defined]


def mentionable() -> list[tuple[str, str]]:
    """(handle, name) of every active agent, for the note box's @ completion."""
    return [(email.partition("@")[0].lower(), name) for email, name in db.session.execute(
        select(Agent.email, Agent.display_name).where(Agent.active).order_by(Agent.display_name))]
