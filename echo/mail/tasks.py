"""Delivery jobs: send each outbox entry through Postmark exactly once, retrying what is transient.

The outbox row is the source of truth. A send is marked `sending` (and committed) before
Postmark is called; if the worker dies before recording the result, or Postmark's answer is
lost, the sweeper finds the stale `sending` row and asks Postmark (by the Metadata we sent)
whether it went out, so neither a crash nor a lost answer causes a second email.

New email is delivered in batches (`deliver_due`), because the outbox is already a durable
queue and an rq job, even the worker's lightest (`self_recording`: three Redis round trips), costs
CPU that a batch pays once. Each email still gets its own rq job, named after it (`job_options`),
on its queue (`queue_for`: agents' replies on `replies`, which workers take first). The job that
runs first claims every due row it can lock, `DRAIN_BATCH` at a time with FOR UPDATE SKIP LOCKED
(so workers share a backlog without waiting on each other): its own row first, then replies, then
the oldest. It renders them, commits them `sending`, cancels their queued jobs, and hands them to
the job process's sender threads (`_Senders`), one chain per address, without waiting for the
answers. Each thread sends its chain one email after another and records each answer in its own
session, so a slow answer holds up only the emails after it to the same customer. The job claims
only as much as the threads have room for (`MAX_IN_FLIGHT`); a claimed row that is not on its way
to Postmark within `SEND_WINDOW` (far inside `STALE_SENDING`, so no sweeper is recovering it yet)
goes back to the queue unsent, with a job again. `deliver(outbox_id)` sends one named row in the
job itself: recovery of a stale send, which asks Postmark first.

`sweep_outbox` gives each due row that has no job waiting one (retries, lost enqueues, stale
sends), oldest first, and runs one at a time on its own queue.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import Flask, current_app
from redis import RedisError
from sqlalchemy import ARRAY, Integer, Select, Text, Uuid, any_, bindparam, exists, literal, null, or_, select, update
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.orm import aliased, lazyload
from sqlalchemy.orm.attributes import set_committed_value

from echo.customers.models import Customer
from echo.db import affected_rows, execute_compiled, utcnow
from echo.extensions import db
from echo.jobs import cancel_queued_jobs, exclusive, queue, redis_connection, self_recording, task, waiting_jobs
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
SEND_CONCURRENCY = 32  # sender threads in one job process: sends in flight at once (each mostly waits)
MAX_IN_FLIGHT = SEND_CONCURRENCY + DRAIN_BATCH  # claimed emails not yet recorded, at most
SWEEP_LIMIT = 500  # rows looked at by one sweep, oldest first
# An agent's answer to a customer: its jobs have their own queue, which workers take first, and a
# batch claims it before other mail, so it never waits behind acknowledgements and notifications.
PRIORITY_KINDS = frozenset({"reply"})


def queue_for(kind: str) -> str:
    """The queue of an email's delivery jobs."""
    return "replies" if kind in PRIORITY_KINDS else "mail"


def job_options(outbox_id: str | uuid.UUID) -> dict[str, Any]:
    """rq options for an email's delivery job: it is named after the email, so the batch that delivers
    the email can cancel it. Its result is kept briefly: rq 3 spends six more round trips deleting a
    job at once (`result_ttl=0`) than letting it expire."""
    return {"job_id": f"deliver-{outbox_id}", "result_ttl": 60}


def recovery_job_options(outbox_id: str | uuid.UUID) -> dict[str, Any]:
    """rq options for the job that recovers an email left `sending` (`deliver`)."""
    return {"job_id": f"recover-{outbox_id}", "result_ttl": 60}


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
        return _record_failure(_values(outbox), exc)
    return _record_sent(_values(outbox), postmark_id)


def _values(outbox: OutboxMessage) -> dict[str, Any]:
    """What recording a send needs of its row, read while the row is loaded (a sender thread has no ORM rows)."""
    return {"id": outbox.id, "ticket_id": outbox.ticket_id, "thread_id": outbox.thread_id, "kind": outbox.kind,
            "to_email": outbox.to_email, "attempts": outbox.attempts, "created_at": outbox.created_at}


def _bounced():
    """Whether the outbox row's recipient is a customer whose address bounced (read with the claim)."""
    return (select(Customer.email_bounced)
            .where(Customer.email == OutboxMessage.to_email, Customer.deleted_at.is_(None)).scalar_subquery())


BOUNCED_ERROR = "Not sent: this address bounced. Clear the bounce to send again."


def _fail_bounced(outbox: OutboxMessage) -> None:
    outbox.state = "failed"
    outbox.last_error = BOUNCED_ERROR


@self_recording
@task
def deliver_due(outbox_id: str) -> int:
    """Claim what is due, oldest first, and hand it to the sender threads (see the module docstring).

    `outbox_id` is the email whose job this is. It goes first, so that whatever this job leaves
    undone when it stops still has its own job to come. The job does not wait for Postmark's
    answers: each sender thread records its own, so one slow answer holds up only its own email
    (and the emails to the same address after it), never the job, the worker or anyone else's mail.
    Returns how many emails it handed over.
    """
    started, handed = time.monotonic(), 0
    first: uuid.UUID | None = uuid.UUID(outbox_id)
    own_job = job_options(outbox_id)["job_id"]
    unrenderable: set[uuid.UUID] = set()
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    senders = _sender_pool()
    postmark.client()  # built here, once, not by the sender threads
    while True:
        room = senders.room()
        if room <= 0:  # the senders are busy (slow answers): the job's own email waits for room, at most SEND_WINDOW
            if not senders.wait_for_room(timeout=SEND_WINDOW if first else DRAIN_SECONDS):
                break
            continue
        want = min(DRAIN_BATCH, room)
        locked, batch, settled = _claim_due(utcnow(), unrenderable, first, want)
        first = None
        _cancel_jobs([*settled, *(item.row for item in batch)], own_job)
        for chain in _chains(batch):
            senders.submit(app, chain)
        handed += len(batch)
        if locked < want or time.monotonic() - started > DRAIN_SECONDS:
            return handed  # nothing more is due now, or the job has had its time
    return handed


@dataclass(frozen=True)
class _Claimed:
    row: dict[str, Any]  # `_values` of the row, as claimed
    message: postmark.OutgoingEmail
    claimed_at: datetime  # the row's `attempted_at`
    previous_attempt: datetime | None
    send_by: float  # time.monotonic() after which it is handed back unsent


def _chains(batch: list[_Claimed]) -> list[list[_Claimed]]:
    """The claimed emails as one chain per address, each in the order its emails were written (an
    acknowledgement before the reply that followed it): a chain is sent one email after another, so a
    customer's mail arrives in order. Chains in the claim's order, agents' replies first."""
    chains: dict[str, list[_Claimed]] = {}
    for item in batch:
        chains.setdefault(item.row["to_email"], []).append(item)
    for chain in chains.values():
        chain.sort(key=lambda item: item.row["created_at"])
    return list(chains.values())


def _cancel_jobs(rows: list[dict[str, Any]], own_job: str) -> None:
    """Drop the queued jobs of rows this job has taken care of (they would find nothing to do)."""
    by_queue: dict[str, list[str]] = {}
    for row in rows:
        job_id = job_options(row["id"])["job_id"]
        if job_id != own_job:
            by_queue.setdefault(queue_for(row["kind"]), []).append(job_id)
    for queue_name, job_ids in by_queue.items():
        cancel_queued_jobs(queue_name, job_ids)


class _Senders:
    """The job process's sender threads, and how many claimed emails they have yet to record.

    At most MAX_IN_FLIGHT claimed emails wait for these threads at once: a job claims no more than
    there is room for, so an email is not claimed long before a thread can send it."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(SEND_CONCURRENCY, thread_name_prefix="echo-send")
        self.pending = 0
        self.changed = threading.Condition()

    def room(self) -> int:
        with self.changed:
            return MAX_IN_FLIGHT - self.pending

    def wait_for_room(self, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.pending < MAX_IN_FLIGHT, timeout)

    def submit(self, app: Flask, chain: list[_Claimed]) -> None:
        with self.changed:
            self.pending += len(chain)
        self.pool.submit(self._send_chain, app, chain)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every claimed email has been recorded (a worker stopping, a test); whether they were."""
        with self.changed:
            return self.changed.wait_for(lambda: self.pending == 0, timeout)

    def _done(self, count: int = 1) -> None:
        with self.changed:
            self.pending -= count
            self.changed.notify_all()

    def _send_chain(self, app: Flask, chain: list[_Claimed]) -> None:
        left = len(chain)
        try:
            with app.app_context():  # a session of the thread's own; what it writes it commits itself
                for i, item in enumerate(chain):
                    try:
                        outcome = _send_one(item)
                    except Exception:  # whether Postmark has it is unknown: left `sending`, for the sweeper
                        log.exception("outbox %s: the send failed unexpectedly; left for the sweeper", item.row["id"])
                        db.session.rollback()
                        outcome = "sending"
                    left -= 1
                    self._done()
                    if outcome == "dead-address":  # Postmark says the address cannot receive mail
                        _fail_unsent(chain[i + 1:])
                        return
        except Exception:  # the database went away: what is left stays `sending`, for the sweeper to ask
            log.exception("sender thread stopped with %s emails of its chain unrecorded", left)
        finally:
            if left:
                self._done(left)


def _send_one(item: _Claimed) -> str:
    """Send one claimed email and record what happened, in the sender thread's session."""
    if time.monotonic() > item.send_by:
        _release([item])  # claimed too long ago: no sweeper is recovering it yet, and it goes back unsent
        return "queued"
    try:
        postmark_id = postmark.send(item.message)
    except postmark.SendError as exc:
        state = _record_failure(item.row, exc)
        return "dead-address" if state == "failed" and exc.error_code in postmark.DEAD_ADDRESS_CODES else state
    return _record_sent(item.row, postmark_id)


def _fail_unsent(chain: list[_Claimed]) -> None:
    if chain:
        db.session.execute(update(_outbox).where(_outbox.c.id.in_([item.row["id"] for item in chain]))
                           .values(state="failed", last_error=BOUNCED_ERROR))
        db.session.commit()


_senders: tuple[int, _Senders] | None = None


def _sender_pool() -> _Senders:
    """This process's senders (made anew in a forked process, whose parent's threads did not come with it)."""
    global _senders
    if _senders is None or _senders[0] != os.getpid():
        _senders = (os.getpid(), _Senders())
    return _senders[1]


def wait_for_sends(timeout: float | None = None) -> bool:
    """Wait until every email this process has claimed is sent and recorded (or left for the sweeper)."""
    return _senders is None or _senders[0] != os.getpid() or _senders[1].wait_idle(timeout)


@functools.cache
def _claim_due_statement() -> Select:
    """The claim, built once (on first use, when every model is mapped): constructing it cost about as
    much as running it. A NULL `first` orders nothing; agents' replies come before other mail. Each row
    comes with its ticket, for the builders' `get_one` to find, but not with the ticket's customer and
    assignee (joined by default), which no email shows. An email waits while an earlier one to the
    same address is being sent or waits for a retry (or for its undo window to end), so a customer
    gets their replies in the order they were written."""
    earlier = aliased(OutboxMessage)
    return (
        select(OutboxMessage, _bounced(), Ticket)
        .outerjoin(Ticket, Ticket.id == OutboxMessage.ticket_id)
        .options(lazyload(Ticket.customer), lazyload(Ticket.assignee))
        .where(OutboxMessage.state == "queued", OutboxMessage.next_attempt_at <= bindparam("now"),
               OutboxMessage.id.not_in(bindparam("unrenderable", expanding=True)),
               ~exists().where(earlier.to_email == OutboxMessage.to_email,
                               earlier.created_at < OutboxMessage.created_at,
                               earlier.state.in_(("queued", "sending")),
                               or_(earlier.state == "sending", earlier.next_attempt_at > bindparam("now"))))
        .order_by(OutboxMessage.id != bindparam("first"), OutboxMessage.kind.not_in(sorted(PRIORITY_KINDS)),
                  OutboxMessage.next_attempt_at)
        .limit(bindparam("batch", type_=Integer)).with_for_update(skip_locked=True, of=OutboxMessage)
    )


def _claim_due(now: datetime, unrenderable: set[uuid.UUID], first: uuid.UUID | None = None,
               limit: int = DRAIN_BATCH) -> tuple[int, list[_Claimed], list[dict[str, Any]]]:
    """Lock up to `limit` due rows (`first` before the others), render them and commit them `sending`.

    Returns how many rows were locked, the claimed ones, and the rows settled without a send (their
    recipient bounced). Rows are rendered before they are marked, as in `deliver`, so an
    email that cannot be built is left queued, not half-sent."""
    send_by = time.monotonic() + SEND_WINDOW
    params = {"now": now, "unrenderable": list(unrenderable), "first": first, "batch": limit}
    rows = db.session.execute(_claim_due_statement(), params).all()  # held while rendering, with their tickets
    rendered: list[tuple[OutboxMessage, postmark.OutgoingEmail, datetime | None]] = []
    settled: list[dict[str, Any]] = []
    for outbox, bounced, _ticket in rows:
        if bounced:
            _fail_bounced(outbox)
            settled.append(_values(outbox))
            continue
        try:
            rendered.append((outbox, emails.render(outbox), outbox.attempted_at))
        except Exception:
            log.exception("outbox %s: could not build the email; left queued", outbox.id)
            db.session.rollback()  # and the batch is claimed again without it
            unrenderable.add(outbox.id)
            return limit, [], []
    _mark_sending([outbox for outbox, _message, _previous in rendered], now)
    db.session.commit()
    # Read once marked: `attempts` counts the attempt under way.
    batch = [_Claimed(_values(outbox), message, now, previous, send_by) for outbox, message, previous in rendered]
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


def _release(unsent: list[_Claimed]) -> None:
    """Hand claimed rows that were never sent back to the queue, as they were (unless someone else has them now)."""
    if not unsent:
        return
    table = OutboxMessage.__table__
    try:
        db.session.rollback()
        for item in unsent:
            db.session.execute(
                update(table).where(table.c.id == item.row["id"], table.c.state == "sending",
                                    table.c.attempted_at == item.claimed_at)
                .values(state="queued", attempts=table.c.attempts - 1, attempted_at=item.previous_attempt)
            )
        db.session.commit()
    except Exception:  # they stay `sending`; the sweeper recovers them, asking Postmark first
        log.exception("could not hand back %s claimed outbox entries", len(unsent))
        return
    log.warning("%s claimed outbox entries handed back unsent", len(unsent))
    try:  # their jobs were dropped when they were claimed: each gets one again
        with redis_connection().pipeline() as pipe:
            for item in unsent:
                queue(queue_for(item.row["kind"])).enqueue(deliver_due, str(item.row["id"]), pipeline=pipe,
                                                           **job_options(item.row["id"]))
            pipe.execute()
    except RedisError:
        pass  # the sweeper gives them jobs


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


def _record_failure(row: dict[str, Any], exc: postmark.SendError) -> str:
    """Record a send that did not succeed (in one UPDATE, by id) and commit; the row's new state."""
    values: dict[str, Any] = {"last_error": str(exc)[:1000]}
    if exc.maybe_sent:
        # Left `sending`: once stale, the sweeper's recovery asks Postmark (by the outbox id in the
        # metadata) and records the email it finds, or sends it then; never a blind second copy.
        values["state"] = "sending"
    elif exc.permanent:
        values["state"] = "failed"
        if exc.error_code in postmark.DEAD_ADDRESS_CODES:
            _flag_recipient(row["to_email"])
    elif utcnow() - row["created_at"] >= GIVE_UP_AFTER:
        values["state"] = "expired"
    else:
        values["state"] = "queued"
        values["next_attempt_at"] = utcnow() + timedelta(seconds=retry_delay(row["attempts"]))
    db.session.execute(update(_outbox).where(_outbox.c.id == row["id"]).values(**values))
    db.session.commit()
    log.warning("outbox %s %s after attempt %s (%s)", row["id"], values["state"], row["attempts"],
                f"error {exc.error_code}" if exc.error_code is not None else "transient")
    return values["state"]


def _flag_recipient(address: str) -> None:
    """Postmark says this address can never receive mail: stop writing to it until an agent clears it."""
    db.session.execute(
        Customer.__table__.update().where(Customer.email == address, Customer.deleted_at.is_(None))
        .values(email_bounced=True)
    )


@task
@exclusive
def sweep_outbox(now: datetime | None = None) -> int:
    """Give a job to each due outbox entry that has none; how many jobs it enqueued.

    Due: queued and past its next attempt (a retry, or an enqueue that Redis lost), or `sending` for
    longer than STALE_SENDING (a worker died, or Postmark's answer was lost: `deliver` asks Postmark
    before sending again). An entry whose job is still waiting, or running, is left alone: each
    entry has one job at a time, however long the queue and however often the sweep runs. The
    oldest come first, agents' replies before them, SWEEP_LIMIT per sweep; a batch delivers any
    due entry, so those past the limit go out with the others' jobs. The clock runs one sweep at a
    time (`echo.jobs.exclusive`), on its own queue."""
    now = now or utcnow()
    due = db.session.execute(
        select(OutboxMessage.id, OutboxMessage.kind, OutboxMessage.state).where(or_(
            (OutboxMessage.state == "queued") & (OutboxMessage.next_attempt_at <= now),
            (OutboxMessage.state == "sending") & (OutboxMessage.attempted_at <= now - STALE_SENDING),
        )).order_by(OutboxMessage.kind.not_in(sorted(PRIORITY_KINDS)), OutboxMessage.next_attempt_at)
        .limit(SWEEP_LIMIT)
    ).all()
    db.session.rollback()
    expired = affected_rows(db.session.execute(
        OutboxMessage.__table__.update()
        .where(OutboxMessage.state == "queued", OutboxMessage.created_at <= now - GIVE_UP_AFTER)
        .values(state="expired", last_error="Gave up after 24 hours of failed attempts.")
    ))
    db.session.commit()
    if expired:
        log.warning("%s outbox entries expired after 24 hours", expired)
    # A stale send is recovered by `deliver`, which asks Postmark first (its own job id: a batch job
    # still waiting for the row would find it `sending` and leave it); the rest go out in batches.
    jobs = [(deliver, str(outbox_id), kind, recovery_job_options(outbox_id)) if state == "sending"
            else (deliver_due, str(outbox_id), kind, job_options(outbox_id)) for outbox_id, kind, state in due]
    waiting = waiting_jobs(options["job_id"] for _func, _id, _kind, options in jobs)
    enqueued = 0
    with redis_connection().pipeline() as pipe:
        for func, outbox_id, kind, options in jobs:
            if options["job_id"] not in waiting:
                queue(queue_for(kind)).enqueue(func, outbox_id, pipeline=pipe, **options)
                enqueued += 1
        pipe.execute()
    return enqueued
