"""Delivery jobs: send each outbox entry through Postmark exactly once, retrying what is transient.

The outbox row is the source of truth. A send is marked `sending` (and committed) before
Postmark is called; if the worker dies before recording the result, the sweeper finds the
stale `sending` row and asks Postmark (by the Metadata we sent) whether it went out, so a
crash never causes a second email.

New email is delivered in batches (`deliver_due`), because the outbox is already a durable
queue and an rq job, even the worker's lightest (`self_recording`: three Redis round trips), costs
CPU that a batch pays once. Each email still gets its own rq job, named after it (`job_options`), but the
job that runs first claims every due row it can lock, `DRAIN_BATCH` at a time with FOR UPDATE
SKIP LOCKED (so workers share a backlog without waiting on each other), and cancels the queued
jobs of the emails it handled. When mail piles up, rq is paid once per batch; an email that
arrives alone still costs one job. Each row goes through the same steps as in `deliver`:
rendered and claimed, committed as `sending`, sent, recorded, one row at a time. A claimed row
that is not on its way to Postmark within `SEND_WINDOW` (far inside `STALE_SENDING`, so no
sweeper is recovering it yet) goes back to the queue unsent. `deliver(outbox_id)` sends one
named row: retries from the sweeper, recovery of a dead worker's sends, an agent's retry.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ARRAY, Integer, Select, Text, Uuid, any_, bindparam, literal, null, or_, select, update
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.orm import lazyload
from sqlalchemy.orm.attributes import set_committed_value

from echo.customers.models import Customer
from echo.db import affected_rows, execute_compiled, utcnow
from echo.extensions import db
from echo.jobs import cancel_queued_jobs, queue, self_recording, task
from echo.mail import emails, postmark
from echo.mail.models import CUSTOMER_EMAILS, OutboxMessage
from echo.tickets.models import MessageId, Ticket

log = logging.getLogger(__name__)

RETRY_DELAYS = [15, 60, 300, 900, 1800, 3600]  # seconds; then hourly
GIVE_UP_AFTER = timedelta(hours=24)
STALE_SENDING = timedelta(minutes=2)
DRAIN_BATCH = 20  # rows claimed (and committed `sending`) at a time
DRAIN_SECONDS = 10.0  # a batch job stops claiming after this; the jobs of what is still due carry on
SEND_WINDOW = 30.0  # seconds after its claim by which a row must be on its way to Postmark, or go back


def job_options(outbox_id: str | uuid.UUID) -> dict[str, Any]:
    """rq options for an email's delivery job: it is named after the email, so the batch that delivers
    the email can cancel it. Its result is kept briefly: rq 3 spends six more round trips deleting a
    job at once (`result_ttl=0`) than letting it expire."""
    return {"job_id": f"deliver-{outbox_id}", "result_ttl": 60}


def retry_delay(attempts: int) -> int:
    return RETRY_DELAYS[min(max(attempts, 1) - 1, len(RETRY_DELAYS) - 1)]


@self_recording
@task
def deliver(outbox_id: str) -> str:
    """Send one outbox entry if it is due; safe to run any number of times for the same id."""
    now = utcnow()
    row = db.session.execute(
        select(OutboxMessage, _bounced()).where(OutboxMessage.id == uuid.UUID(outbox_id))
        .with_for_update(skip_locked=True, of=OutboxMessage)
    ).first()
    if row is None:
        db.session.rollback()
        return "busy-or-missing"
    outbox, bounced = row
    if outbox.state == "sending" and outbox.attempted_at and now - outbox.attempted_at >= STALE_SENDING:
        return _recover(outbox)
    if outbox.state != "queued" or outbox.next_attempt_at > now:
        state = outbox.state
        db.session.rollback()
        return state
    if bounced:
        _fail_bounced(outbox)
        db.session.commit()
        return outbox.state

    message = emails.render(outbox)
    _mark_sending([outbox], now)
    _commit_keeping_values()

    try:
        postmark_id = postmark.send(message)
    except postmark.SendError as exc:
        return _record_failure(outbox, exc)
    return _record_sent(_values(outbox), postmark_id)


def _values(outbox: OutboxMessage) -> dict[str, Any]:
    return {"id": outbox.id, "ticket_id": outbox.ticket_id, "thread_id": outbox.thread_id, "kind": outbox.kind}


def _bounced():
    """Whether the outbox row's recipient is a customer whose address bounced (read with the claim)."""
    return (select(Customer.email_bounced)
            .where(Customer.email == OutboxMessage.to_email, Customer.deleted_at.is_(None)).scalar_subquery())


def _fail_bounced(outbox: OutboxMessage) -> None:
    outbox.state = "failed"
    outbox.last_error = "Not sent: this address bounced. Clear the bounce to send again."


@self_recording
@task
def deliver_due(outbox_id: str) -> int:
    """Deliver what is due, oldest first, a claimed batch at a time (see the module docstring); how many were sent.

    `outbox_id` is the email whose job this is. It goes first, so that whatever this job leaves
    undone when it stops still has its own job to come.
    """
    started, own_job, sent = time.monotonic(), job_options(outbox_id)["job_id"], 0
    first: uuid.UUID | None = uuid.UUID(outbox_id)
    unrenderable: set[uuid.UUID] = set()
    db.session().expire_on_commit = False  # rows stay loaded across the batch's commits (the session ends with the job)
    while True:
        locked, batch, settled = _claim_due(utcnow(), unrenderable, first)
        first = None
        batch_sent, attempted, complete = _send_batch(batch)
        sent += batch_sent
        cancel_queued_jobs("mail", [job_options(i)["job_id"] for i in settled + attempted
                                    if job_options(i)["job_id"] != own_job])
        if not complete or locked < DRAIN_BATCH or time.monotonic() - started > DRAIN_SECONDS:
            return sent


@dataclass(frozen=True)
class _Claimed:
    outbox: OutboxMessage
    message: postmark.OutgoingEmail
    claimed_at: datetime  # the row's `attempted_at`
    previous_attempt: datetime | None
    send_by: float  # time.monotonic() after which it is handed back unsent


@functools.cache
def _claim_due_statement() -> Select:
    """The claim, built once (on first use, when every model is mapped): constructing it cost about as
    much as running it. A NULL `first` orders nothing. Each row comes with its ticket, for the
    builders' `get_one` to find, but not with the ticket's customer and assignee (joined by default),
    which no email shows."""
    return (
        select(OutboxMessage, _bounced(), Ticket)
        .outerjoin(Ticket, Ticket.id == OutboxMessage.ticket_id)
        .options(lazyload(Ticket.customer), lazyload(Ticket.assignee))
        .where(OutboxMessage.state == "queued", OutboxMessage.next_attempt_at <= bindparam("now"),
               OutboxMessage.id.not_in(bindparam("unrenderable", expanding=True)))
        .order_by(OutboxMessage.id != bindparam("first"), OutboxMessage.next_attempt_at)
        .limit(bindparam("batch", type_=Integer)).with_for_update(skip_locked=True, of=OutboxMessage)
    )


def _claim_due(now: datetime, unrenderable: set[uuid.UUID],
               first: uuid.UUID | None = None) -> tuple[int, list[_Claimed], list[uuid.UUID]]:
    """Lock up to DRAIN_BATCH due rows (`first` before the others), render them and commit them `sending`.

    Returns how many rows were locked, the claimed ones, and the ids of rows settled without a send
    (their recipient bounced). Rows are rendered before they are marked, as in `deliver`, so an
    email that cannot be built is left queued, not half-sent."""
    send_by = time.monotonic() + SEND_WINDOW
    params = {"now": now, "unrenderable": list(unrenderable), "first": first, "batch": DRAIN_BATCH}
    rows = db.session.execute(_claim_due_statement(), params).all()  # held while rendering, with their tickets
    batch: list[_Claimed] = []
    settled: list[uuid.UUID] = []
    for outbox, bounced, _ticket in rows:
        if bounced:
            _fail_bounced(outbox)
            settled.append(outbox.id)
            continue
        try:
            message = emails.render(outbox)
        except Exception:
            log.exception("outbox %s: could not build the email; left queued", outbox.id)
            db.session.rollback()  # and the batch is claimed again without it
            unrenderable.add(outbox.id)
            return DRAIN_BATCH, [], []
        batch.append(_Claimed(outbox, message, now, outbox.attempted_at, send_by))
    _mark_sending([item.outbox for item in batch], now)
    db.session.commit()
    return len(rows), batch, settled


def _mark_sending(outboxes: list[OutboxMessage], now: datetime) -> None:
    """Mark claimed rows `sending` in one once-compiled UPDATE (not an ORM flush), and the loaded rows with them."""
    if not outboxes:
        return
    execute_compiled(db.session.connection(), _MARK_SENDING, {"ids": [outbox.id for outbox in outboxes], "now": now})
    for outbox in outboxes:
        set_committed_value(outbox, "state", "sending")
        set_committed_value(outbox, "attempted_at", now)
        set_committed_value(outbox, "attempts", outbox.attempts + 1)


def _send_batch(batch: list[_Claimed]) -> tuple[int, list[uuid.UUID], bool]:
    """Send and record each claimed row in turn: (sent, ids of the rows attempted, whether all were).

    Rows still unsent when the batch stops early (`SEND_WINDOW` passed, or an error other than
    Postmark's answer, such as the job's timeout) go back to the queue. The row being sent then is
    left `sending`: whether Postmark has it is unknown, and the sweeper will ask."""
    sent, attempted, dead_addresses = 0, list[uuid.UUID](), set[str]()
    for i, item in enumerate(batch):
        if time.monotonic() > item.send_by:
            _release(batch[i:])
            return sent, attempted, False
        outbox = item.outbox
        try:
            if outbox.to_email in dead_addresses:  # an earlier email of this batch found the address dead
                _fail_bounced(outbox)
                db.session.commit()
            else:
                try:
                    postmark_id = postmark.send(item.message)
                except postmark.SendError as exc:
                    if _record_failure(outbox, exc) == "failed" and exc.error_code in (300, 406):
                        dead_addresses.add(outbox.to_email)
                else:
                    _record_sent(_values(outbox), postmark_id)
                    sent += 1
        except BaseException:
            _release(batch[i + 1:])
            raise
        attempted.append(outbox.id)
    return sent, attempted, True


def _release(unsent: list[_Claimed]) -> None:
    """Hand claimed rows that were never sent back to the queue, as they were (unless someone else has them now)."""
    if not unsent:
        return
    table = OutboxMessage.__table__
    try:
        db.session.rollback()
        for item in unsent:
            db.session.execute(
                update(table).where(table.c.id == item.outbox.id, table.c.state == "sending",
                                    table.c.attempted_at == item.claimed_at)
                .values(state="queued", attempts=table.c.attempts - 1, attempted_at=item.previous_attempt)
            )
        db.session.commit()
    except Exception:  # they stay `sending`; the sweeper recovers them, asking Postmark first
        log.exception("could not hand back %s claimed outbox entries", len(unsent))
        return
    log.warning("%s claimed outbox entries handed back unsent", len(unsent))


# Context values that grant access (sign-up links) are kept only until the email is out.
SECRET_CONTEXT_KEYS = ("link",)

_outbox = OutboxMessage.__table__
_MARK_SENDING = (update(_outbox).where(_outbox.c.id == any_(bindparam("ids", type_=ARRAY(Uuid))))
                 .values(state="sending", attempted_at=bindparam("now"), attempts=_outbox.c.attempts + 1))
_MARK_SENT = (update(_outbox).where(_outbox.c.id == bindparam("id"))
              .values(state="sent", sent_at=bindparam("sent_at"), last_error=null(),
                      postmark_message_id=bindparam("postmark_id"),
                      context=_outbox.c.context.op("-")(array([literal(k, Text) for k in SECRET_CONTEXT_KEYS]))))
# Postmark's id of a customer email, registered so the customer's reply threads.
_MARK_SENT_AND_REGISTER = insert(MessageId.__table__).from_select(
    ["message_id", "ticket_id", "thread_id", "origin"],
    select(bindparam("message_id", type_=Text), bindparam("ticket_id"), bindparam("thread_id"), literal("outbound")),
    include_defaults=False,
).on_conflict_do_nothing(index_elements=["message_id"]).add_cte(_MARK_SENT.cte("marked"))


def _record_sent(row: dict[str, Any], postmark_id: str) -> str:
    """Mark the row sent, in one once-compiled statement (the hottest write of a delivery), and commit."""
    params = {"id": row["id"], "sent_at": utcnow(), "postmark_id": postmark_id}
    if row["ticket_id"] is not None and row["kind"] in CUSTOMER_EMAILS:
        params.update(message_id=f"{postmark_id.lower()}@mtasv.net", ticket_id=row["ticket_id"],
                      thread_id=row["thread_id"])
        execute_compiled(db.session.connection(), _MARK_SENT_AND_REGISTER, params)
    else:
        execute_compiled(db.session.connection(), _MARK_SENT, params)
    db.session.commit()
    return "sent"


def _commit_keeping_values() -> None:
    """Commit without expiring the loaded rows: they hold what was just written, and reading
    them again after the send would cost a query per row."""
    session = db.session()
    expire, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire


def _recover(outbox: OutboxMessage) -> str:
    """A worker died mid-send: ask Postmark before sending again."""
    try:
        postmark_id = postmark.find_sent(str(outbox.id))
    except postmark.SendError as exc:
        outbox.last_error = f"Could not confirm an interrupted send: {exc}"[:1000]
        db.session.commit()
        return outbox.state
    if postmark_id:
        log.info("outbox %s: interrupted send had reached Postmark; recorded without resending", outbox.id)
        return _record_sent(_values(outbox), postmark_id)
    outbox.state, outbox.next_attempt_at = "queued", utcnow()
    db.session.commit()
    return deliver(str(outbox.id))


def _record_failure(outbox: OutboxMessage, exc: postmark.SendError) -> str:
    outbox.last_error = str(exc)[:1000]
    if exc.maybe_sent:
        # Left `sending`: once stale, the sweeper's recovery asks Postmark (by the outbox id in the
        # metadata) and records the email it finds, or sends it then; never a blind second copy.
        outbox.state = "sending"
    elif exc.permanent:
        outbox.state = "failed"
        if exc.error_code in (300, 406):
            _flag_recipient(outbox.to_email)
    elif utcnow() - outbox.created_at >= GIVE_UP_AFTER:
        outbox.state = "expired"
    else:
        outbox.state = "queued"
        outbox.next_attempt_at = utcnow() + timedelta(seconds=retry_delay(outbox.attempts))
    db.session.commit()
    log.warning("outbox %s %s after attempt %s (%s)", outbox.id, outbox.state, outbox.attempts,
                f"error {exc.error_code}" if exc.error_code is not None else "transient")
    return outbox.state


def _flag_recipient(address: str) -> None:
    """Postmark says this address can never receive mail: stop writing to it until an agent clears it."""
    db.session.execute(
        Customer.__table__.update().where(Customer.email == address, Customer.deleted_at.is_(None))
        .values(email_bounced=True)
    )


@task
def sweep_outbox(now: datetime | None = None) -> int:
    """Enqueue every outbox entry that is due: retries, lost enqueues, and sends a dead worker left."""
    now = now or utcnow()
    due = db.session.scalars(
        select(OutboxMessage.id).where(or_(
            (OutboxMessage.state == "queued") & (OutboxMessage.next_attempt_at <= now),
            (OutboxMessage.state == "sending") & (OutboxMessage.attempted_at <= now - STALE_SENDING),
        )).limit(500)
    ).all()
    db.session.rollback()
    expired = affected_rows(db.session.execute(
        OutboxMessage.__table__.update()
        .where(OutboxMessage.state == "queued", OutboxMessage.created_at <= now - GIVE_UP_AFTER)
        .values(state="expired", last_error="Gave up after 24 hours of failed attempts.")
    ))
    db.session.commit()
    mail = queue("mail")
    for outbox_id in due:
        mail.enqueue(deliver, str(outbox_id), **job_options(outbox_id))
    if expired:
        log.warning("%s outbox entries expired after 24 hours", expired)
    return len(due)
