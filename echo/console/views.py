"""The agent console at /tickets: inbox, ticket, customer pages and their actions (SPEC §7).

Views parse the form, call the same service functions as the agent API, and render either the
whole page or, for HTMX requests, just the changed fragment.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, abort, current_app, g, make_response, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from echo.actors import Actor
from echo.agents.models import Agent
from echo.agents.service import zone_named
from echo.attachments import service as attachments
from echo.attachments.models import Attachment
from echo.attachments.storage import storage
from echo.audit import service as audit
from echo.console.auth import NotSignedIn, current_agent, require_agent, signed_in_agent
from echo.customers.models import Customer
from echo.db import utcnow
from echo.errors import EchoError, InvalidPayload, page_error
from echo.extensions import csrf, db
from echo.inbound import sanitize
from echo.mail.models import OutboxMessage
from echo.notifications import service as notifications
from echo.outbound import service as outbound
from echo.outbound.service import clear_bounce, retry_outbox, send_reply
from echo.search.service import shortcut
from echo.tickets import queries, service
from echo.tickets.models import STATUSES, BlockedSender, Thread, Ticket, TicketRead
from echo.tickets.schemas import ConversationIn, parse

bp = Blueprint("console", __name__, url_prefix="/tickets", static_folder="../static",
               static_url_path="/static")
PUBLIC_ENDPOINTS = {"console.static"}
PER_PAGE = 25
FILTER_ARGS = ("status", "assignee", "tag", "customer", "q", "quarantined", "snoozed", "sort", "page")


@bp.before_request
def guard():
    """Every console view needs a signed-in agent; every mutating request needs a CSRF token.

    The sign-in is checked first: a lapsed session also lost its CSRF token, and the agent should be
    sent to sign in (and back), not shown a token error."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            csrf.protect()
        return None
    try:
        g.actor = require_agent()
    except NotSignedIn:
        if request.headers.get("HX-Request"):
            # Back to the page the agent was on, not to the URL of the action (a POST).
            response = make_response("", 401)
            response.headers["HX-Redirect"] = url_for("console_auth.login", next=_current_page())
            return response
        # After signing in, back to a page: a form's POST URL (a reply) has no page of its own.
        target = request.full_path.rstrip("?") if request.method == "GET" else _page_of(request.path)
        return redirect(url_for("console_auth.login", next=target))
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    return None


def _page_of(path: str) -> str:
    """The console page an action's URL belongs to (/tickets/TKT-1/reply → /tickets/TKT-1)."""
    adapter = current_app.url_map.bind("localhost")
    while path.count("/") > 1:
        path = path.rsplit("/", 1)[0]
        try:
            adapter.match(path, method="GET")
            return path
        except HTTPException:
            continue
    return url_for("console.inbox")


def _current_page() -> str:
    """The console page an HTMX request came from (its path and query), or the inbox."""
    current = urlsplit(request.headers.get("HX-Current-URL", ""))
    path = current.path + (f"?{current.query}" if current.query else "")
    return path if current.path.startswith(bp.url_prefix or "/tickets") and "//" not in current.path else url_for(
        "console.inbox")


def render(template: str, partial: str | None = None, **context):
    """The whole page, or only `partial` when HTMX asked for a fragment."""
    if partial and request.headers.get("HX-Request") and not request.headers.get("HX-Boosted"):
        return render_template(partial, **context)
    return render_template(template, **context)


def _filters(args: MultiDict | None = None) -> queries.TicketFilters:
    args = request.args if args is None else args
    assignee = args.get("assignee") or None
    if assignee == "mine":
        assignee = signed_in_agent().email
    page = args.get("page", "1")
    q = (args.get("q") or "").strip()[:200] or None
    status = args.get("status") or ""
    sort = args.get("sort") or ""
    snoozed = args.get("snoozed") == "1"
    return queries.TicketFilters(
        # "All open" by default; a search looks through every status unless one is chosen.
        status=(status if status in STATUSES else None if snoozed or status == "all" or (q and not status)
                else "active"), snoozed=snoozed,
        assignee=assignee, tag=(args.get("tag") or "").strip().lower() or None,
        customer=(args.get("customer") or "").strip().lower() or None,
        q=q, quarantined=args.get("quarantined") == "1",
        ranked=sort == "relevance", page=int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1,
        per_page=PER_PAGE, order=sort if sort in queries.ORDERS else "newest",
    )


def _view_name(filters: queries.TicketFilters) -> str:
    """What the list shows, in words, for its count and its empty state ("open tickets assigned to you")."""
    kind = {"active": "open or pending", None: ""}.get(filters.status, filters.status or "")
    noun = " ".join(filter(None, ["quarantined" if filters.quarantined else "", "snoozed" if filters.snoozed else "",
                                  kind, "tickets"]))
    if filters.assignee == "none":
        noun += " nobody is assigned to"
    elif filters.assignee and filters.assignee == signed_in_agent().email:
        noun += " assigned to you"
    elif filters.assignee:
        noun += f" assigned to {filters.assignee}"
    if filters.tag:
        noun += f" tagged “{filters.tag}”"
    if filters.customer:
        noun += f" from {filters.customer}"
    return noun


def _link_args(args: MultiDict | None = None) -> dict[str, str]:
    """The inbox's own filters, for the links that keep them: never url_for's `_method`, `_external`…"""
    return {name: value for name, value in (request.args if args is None else args).items() if name in FILTER_ARGS}


@bp.get("", strict_slashes=False)
def inbox():
    filters = _filters()
    if filters.q and (jump := shortcut(filters.q)) is not None:
        if jump.kind == "ticket":
            return redirect(url_for("console.ticket", number=jump.target))
        return redirect(url_for("console.customer", customer_id=jump.target))
    return _list_response(request.args)


def _list_response(args: MultiDict, flash: str | None = None):
    """The inbox for these filters: the page, or the list alone for HTMX."""
    filters = _filters(args)
    page = queries.list_tickets(filters)
    agent = signed_in_agent()
    reads = dict(db.session.execute(
        select(TicketRead.ticket_id, TicketRead.read_at)
        .where(TicketRead.agent_id == agent.id, TicketRead.ticket_id.in_([t.id for t in page.tickets]))
    ).all())
    agents = db.session.scalars(select(Agent).where(Agent.active).order_by(Agent.display_name)).all()
    ids = [t.id for t in page.tickets]
    response = render(
        "console/inbox.html", "tickets/_list.html", page=page, filters=filters, reads=reads, agents=agents,
        counts=queries.status_counts(filters), args=_link_args(args), previews=queries.previews(ids),
        view=_view_name(filters), drafts=queries.draft_marks(ids, agent.id), flash=flash,
    )
    db.session.commit()
    return response


def _load(number: str) -> Ticket:
    try:
        ticket = service.get_ticket(number)
    except EchoError:
        abort(404)
    if ticket.number != number:
        abort(redirect(url_for("console.ticket", number=ticket.number)))
    return ticket


def _ticket_context(ticket: Ticket, **extra) -> dict:
    from echo.live import presence as live_presence

    other: Sequence[Ticket] = []
    if ticket.customer_id:
        other = db.session.scalars(
            select(Ticket).where(Ticket.customer_id == ticket.customer_id, Ticket.id != ticket.id,
                                 Ticket.merged_into_id.is_(None))
            .order_by(Ticket.updated_at.desc()).limit(20)
        ).all()
    agents = db.session.scalars(select(Agent).where(Agent.active).order_by(Agent.display_name)).all()
    notices = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.ticket_id == ticket.id, OutboxMessage.kind != "reply",
                                    OutboxMessage.state.in_(("failed", "expired")))
    ).all()
    me = signed_in_agent()
    drafts = outbound.drafts(ticket)
    mine = next((d for d in drafts if d.agent_id == me.id), None)
    if "reply_text" not in extra:
        extra["reply_text"] = mine.body_text if mine else ""
    if "reply_cc" not in extra:
        extra["reply_cc"] = mine.cc if mine else ", ".join(outbound.reply_all(ticket))
    extra.setdefault("reply_bcc", mine.bcc if mine else "")
    merged_from = db.session.scalars(select(Ticket).where(Ticket.merged_into_id == ticket.id)
                                     .order_by(Ticket.seq)).all()
    blocked = bool(ticket.customer and db.session.get(BlockedSender, ticket.customer.email))
    conversation = queries.conversation(ticket)
    seen = max((t.created_at for t, _ in conversation if t.direction != "internal"), default=ticket.created_at)
    return {"ticket": ticket, "conversation": conversation, "other_tickets": other, "seen_until": seen.isoformat(),
            "drafting": [agent_name(d.agent_id) for d in drafts if d.agent_id != me.id],
            "merged_from": merged_from, "sender_blocked": blocked, "my_signature": bool(me.signature.strip()),
            "timeline": queries.timeline(ticket), "present": live_presence.here(ticket.id, besides=me.id),
            "mentionable": notifications.mentionable(),
            "saved_replies": outbound.saved_reply_names(),
            "agents": agents, "categories": service.CATEGORIES, "statuses": STATUSES,
            "failed_notices": notices, "inline_image": attachments.is_inline_image, "now": utcnow(), **extra}


@bp.get("/<number>")
def ticket(number):
    ticket = _load(number)
    agent = signed_in_agent()
    last = db.session.get(TicketRead, (agent.id, ticket.id))
    if last is None or utcnow() - last.read_at > VIEW_EVENT_EVERY:
        # "Ana opened this ticket" is an event of the log too (at most every few minutes per agent and ticket).
        audit.record(g.actor, "tickets.viewed", "ticket", ticket.id)
    db.session.merge(TicketRead(agent_id=agent.id, ticket_id=ticket.id, read_at=db.func.now()))
    db.session.commit()
    return render_template("console/ticket.html", **_ticket_context(ticket))


VIEW_EVENT_EVERY = timedelta(minutes=5)


def _after_action(ticket: Ticket, message: str | None = None, error: str | None = None, status: int = 200,
                  **extra):
    """Commit, then show the ticket again (its main panel for HTMX, a redirect otherwise).

    A refusal changes nothing: for HTMX only its message is sent, shown over the page where the
    agent is looking, and the page keeps what the agent typed."""
    if error is None:
        db.session.commit()
    else:
        db.session.rollback()
        if request.headers.get("HX-Request"):
            return page_error(error, status)
        ticket = service.get_ticket(ticket.number)
    if request.headers.get("HX-Request"):
        return render_template("tickets/_detail.html", **_ticket_context(ticket, flash=message, error=error,
                                                                          **extra)), status
    return redirect(url_for("console.ticket", number=ticket.number))


def _action(number: str, work, done: str):
    """Run one use case against a ticket, turning domain refusals into a visible message."""
    return _action_on(_load(number), work, done)


def _load_any(number: str) -> Ticket:
    """A ticket by its own number, even one merged into another (to undo the merge)."""
    try:
        return service.get_ticket(number, follow_merges=False)
    except EchoError:
        abort(404)


def _action_on(ticket: Ticket, work, done: str):
    try:
        work(ticket)
    except EchoError as exc:
        return _after_action(ticket, error=exc.message, status=exc.status if exc.status < 500 else 400)
    return _after_action(ticket, done)


def _uploaded_files() -> list[attachments.IncomingFile]:
    limit = current_app.config["ECHO"].max_attachment_bytes
    files = []
    for index, upload in enumerate(request.files.getlist("attachments"), start=1):
        if not upload or not upload.filename:
            continue
        data = upload.read()
        if not data:
            continue
        if len(data) > limit:
            raise EchoError(f"Attachments are limited to {limit // (1024 * 1024)} MB each.", status=413)
        files.append(attachments.IncomingFile(
            filename=attachments.clean_filename(upload.filename, index),
            content_type=attachments.checked_content_type(upload.mimetype or "application/octet-stream", data),
            data=data, content_id=None,
        ))
    return files


@bp.get("/events")
def events():
    """The console's live stream: ticket changes and who is viewing or replying."""
    from echo.live.views import agent_stream

    return agent_stream()


@bp.get("/new")
def new_conversation():
    return render_template("console/new_conversation.html", form={}, error=None)


@bp.post("/new")
def start_conversation():
    """An agent writes to a customer first (the agent API's `POST /api/v1/agent/tickets`, as a form)."""
    form = {name: request.form.get(name, "") for name in ("customer_email", "customer_name", "subject", "body")}
    try:
        body = parse(ConversationIn, {"customer_email": form["customer_email"],
                                      "customer_name": form["customer_name"].strip() or None,
                                      "subject": form["subject"].strip(), "body_text": form["body"]})
        result = outbound.start_conversation(actor=g.actor, customer_email=body.customer_email,
                                            customer_name=body.customer_name, subject=body.subject,
                                            body_text=body.body_text)
    except EchoError as exc:
        db.session.rollback()
        labels = {"customer_email": "Customer email", "customer_name": "Name", "subject": "Subject",
                  "body_text": "Message"}
        problems = [f"{labels.get(d.get('field', ''), d.get('field', ''))}: {d.get('problem', '')}"
                    for d in (exc.details or [])]
        message = " ".join([exc.message if not problems else "Please check:", *problems])
        return render_template("console/new_conversation.html", form=form, error=message), exc.status
    number = db.session.get_one(Ticket, result.thread.ticket_id).number
    db.session.commit()
    return redirect(url_for("console.ticket", number=number))


@bp.post("/<number>/reply")
def reply(number):
    status = request.form.get("status") or "pending"
    hold = current_app.config["ECHO"].undo_send_seconds
    ticket = _load(number)
    form = request.form
    following = _next_ticket(ticket) if form.get("next") == "1" else None  # where it stood before the reply
    try:
        result = send_reply(ticket, actor=g.actor, body_text=form.get("body", ""), files=_uploaded_files(),
                            status=status if status in ("open", "pending", "resolved") else "pending",
                            hold_seconds=hold, cc=form.get("cc", ""), bcc=form.get("bcc", ""), sign=True,
                            seen_until=_seen_until(form.get("seen", "")))
    except outbound.ConversationChanged as exc:
        # The traffic cop: the page again, with what arrived, the agent's words still in the box.
        db.session.rollback()
        ticket = service.get_ticket(ticket.number)
        return render_template("tickets/_detail.html", **_ticket_context(
            ticket, error=exc.message, conflict=True, reply_text=form.get("body", ""),
            reply_cc=form.get("cc", ""), reply_bcc=form.get("bcc", ""))), 409
    except EchoError as exc:
        return _after_action(ticket, error=exc.message, status=exc.status if exc.status < 500 else 400)
    if following is not None:
        db.session.commit()
        return _go(url_for("console.ticket", number=following.number))
    if not hold:
        return _after_action(ticket, "Reply queued. It leaves in a moment.")
    return _after_action(ticket, f"Reply sends in {hold} seconds.", undo=result.thread.id)


def _seen_until(raw: str) -> datetime | None:
    """The reply form's mark of the latest message on the page when it was shown (none: no check)."""
    try:
        seen = datetime.fromisoformat(raw[:40]) if raw else None
    except ValueError:
        return None
    return seen if seen is not None and seen.tzinfo is not None else None


@bp.post("/<number>/replies/<uuid:thread_id>/undo")
def undo(number, thread_id):
    """Take back a reply still in its undo window: it is not sent, and its text is back in the reply box."""
    ticket = _load(number)
    try:
        text = outbound.undo_reply(ticket, thread_id, actor=g.actor)
    except EchoError as exc:
        return _after_action(ticket, error=exc.message, status=exc.status if exc.status < 500 else 400)
    return _after_action(ticket, "Reply taken back; it was not sent.", reply_text=text)


@bp.post("/<number>/presence")
def presence(number):
    """The page's heartbeat: this agent is viewing, replying, or has left (nothing is stored in the database)."""
    from echo.live import presence as live_presence

    ticket = _load(number)
    me = signed_in_agent()
    live_presence.beat(ticket.id, ticket.number, me.id, me.display_name, request.form.get("state", "viewing"))
    db.session.commit()
    return "", 204


@bp.post("/<number>/draft")
def draft(number):
    """What the agent is typing, saved as they type (HTMX, every pause); answers with when it was saved."""
    ticket = _load(number)
    form = request.form
    try:
        saved = outbound.save_draft(ticket, actor=g.actor, body_text=form.get("body", ""), cc=form.get("cc", ""),
                                    bcc=form.get("bcc", ""))
    except EchoError as exc:
        db.session.rollback()
        return page_error(exc.message, exc.status)
    db.session.commit()
    return f"Draft saved {local_time(saved.updated_at, '%H:%M')}" if saved else ""


@bp.get("/<number>/saved-reply")
def fill_saved_reply(number):
    """A saved reply's text for this ticket, placeholders filled in, for the reply box (by name or id)."""
    ticket = _load(number)
    wanted = request.args.get("name", "").strip().lower()
    match = next((saved_id for saved_id, name in outbound.saved_reply_names() if name.lower() == wanted), None)
    if match is None:
        return page_error("No saved reply by that name.", 404)
    return Response(outbound.fill_saved_reply(match, ticket, signed_in_agent().display_name), mimetype="text/plain")


@bp.get("/<number>/threads/<uuid:thread_id>/original")
def original(number, thread_id):
    """A message's HTML as it was sent (sanitised, remote images still held), alone in a sandbox: no
    script, no forms, nothing from the console's origin; links open in a new tab, their addresses shown."""
    ticket = _load(number)
    thread = db.session.get(Thread, thread_id)
    if thread is None or thread.ticket_id != ticket.id or thread.erased_at is not None:
        abort(404)
    response = make_response(render_template("console/original.html", thread=thread))
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none';"
        " frame-ancestors 'self'; sandbox allow-popups allow-popups-to-escape-sandbox")
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<number>/note")
def note(number):
    return _action(number, lambda t: service.add_note(t, actor=g.actor, body_text=request.form.get("body", "")),
                   "Note added.")


@bp.post("/<number>/status")
def status(number):
    return _action(number, lambda t: service.set_status(t, request.form.get("status", ""), actor=g.actor),
                   "Status updated.")


@bp.post("/<number>/assign")
def assign(number):
    return _action(number, lambda t: service.assign(t, request.form.get("assignee") or None, actor=g.actor),
                   "Assignment updated.")


@bp.post("/<number>/tags")
def tags(number):
    return _action(number, lambda t: service.set_tags(t, request.form.get("tags", "").split(","), actor=g.actor),
                   "Tags saved.")


@bp.post("/<number>/category")
def category(number):
    return _action(number, lambda t: service.set_category(t, request.form.get("category") or None, actor=g.actor),
                   "Category saved.")


@bp.post("/<number>/snooze")
def snooze(number):
    """Snooze until a choice ("4h", "tomorrow", "nextweek") or a local date and time; "wake" ends it."""
    choice = request.form.get("until", "")
    return _action(number, lambda t: service.snooze(t, None if choice == "wake" else _snooze_time(choice),
                                                    actor=g.actor),
                   "Snooze ended." if choice == "wake" else "Snoozed.")


def _snooze_time(choice: str) -> datetime:
    """When a snooze choice ends, read in the agent's own time zone (a morning is their morning)."""
    zone, now = agent_zone(), utcnow()
    local = now.astimezone(zone)
    morning = local.replace(hour=9, minute=0, second=0, microsecond=0)
    presets = {"1h": now + timedelta(hours=1), "4h": now + timedelta(hours=4),
               "tomorrow": morning + timedelta(days=1),
               "nextweek": morning + timedelta(days=7 - local.weekday())}
    if choice in presets:
        return presets[choice]
    try:
        moment = datetime.fromisoformat(choice[:40])
    except ValueError:
        raise InvalidPayload("Choose when the ticket should come back.", code="invalid_snooze") from None
    return moment.replace(tzinfo=zone) if moment.tzinfo is None else moment


@bp.post("/<number>/spam")
def spam(number):
    block = request.form.get("block") == "1"
    return _action(number, lambda t: service.mark_spam(t, actor=g.actor, block=block),
                   "Marked as spam; the sender is blocked." if block else "Marked as spam.")


@bp.post("/<number>/block")
def block(number):
    return _action(number, lambda t: service.block_sender(t.customer.email if t.customer else "", actor=g.actor),
                   "Sender blocked: their mail goes to the quarantine, unanswered.")


@bp.post("/<number>/unblock")
def unblock(number):
    return _action(number, lambda t: service.unblock_sender(t.customer.email if t.customer else "", actor=g.actor),
                   "Sender unblocked.")


@bp.post("/<number>/delete")
def delete(number):
    ticket = _load(number)
    try:
        purged = service.delete_ticket(ticket, actor=g.actor)
    except EchoError as exc:
        return _after_action(ticket, error=exc.message, status=exc.status if exc.status < 500 else 400)
    if purged:
        db.session.commit()
        return _go(url_for("console.inbox", quarantined="1"))
    return _after_action(ticket, "Deleted: it is in the quarantine until someone releases or purges it.")


@bp.post("/<number>/unmerge")
def unmerge(number):
    ticket = _load_any(number)
    return _action_on(ticket, lambda t: service.unmerge(t, actor=g.actor), f"Merge undone: {number} is its own again.")


@bp.post("/bulk")
def bulk():
    """One action on the tickets chosen in the list; the list comes back with what happened."""
    form = request.form
    action = form.get("action", "")
    value = form.get("value") or None
    if action.split(":", 1)[0] in ("status", "assign", "snooze"):
        action, _, choice = action.partition(":")
        value = choice or value
    until = None
    try:
        if action == "snooze":
            until = _snooze_time(value or "")
        result = service.bulk(form.getlist("tickets"), action, actor=g.actor, value=value, until=until)
    except EchoError as exc:
        db.session.rollback()
        return page_error(exc.message, exc.status if exc.status < 500 else 400)
    db.session.commit()
    message = f"{len(result.changed)} ticket{'' if len(result.changed) == 1 else 's'} updated."
    if result.skipped:
        message += " Left alone: " + "; ".join(f"{n} ({why})" for n, why in list(result.skipped.items())[:10]) + "."
    view = urlsplit(request.headers.get("HX-Current-URL", "")).query
    return _list_response(MultiDict(parse_qsl(view)), flash=message)


@bp.post("/<number>/merge")
def merge(number):
    ticket = _load(number)
    try:
        survivor = service.merge(ticket, service.get_ticket(request.form.get("into", "")), actor=g.actor)
    except EchoError as exc:
        return _after_action(ticket, error=exc.message, status=exc.status)
    return _after_action(survivor, f"Merged {number} into {survivor.number}.")


@bp.post("/<number>/release")
def release(number):
    return _action(number, lambda t: service.release_from_quarantine(t, actor=g.actor), "Released to the inbox.")


@bp.post("/<number>/outbox/<uuid:outbox_id>/retry")
def retry(number, outbox_id):
    return _action(number, lambda t: retry_outbox(outbox_id, ticket_id=t.id, actor=g.actor), "Queued to send again.")


@bp.post("/<number>/clear-bounce")
def unbounce(number):
    return _action(number, lambda t: clear_bounce(t.customer_id, actor=g.actor), "Bounce cleared.")


@bp.get("/customers/<uuid:customer_id>")
def customer(customer_id):
    person = db.session.get(Customer, customer_id)
    if person is None:
        abort(404)
    tickets = db.session.scalars(
        select(Ticket).where(Ticket.customer_id == person.id, Ticket.merged_into_id.is_(None))
        .order_by(Ticket.updated_at.desc())
    ).all()
    return render_template("console/customer.html", person=person, tickets=tickets)


@bp.get("/attachments/<uuid:attachment_id>")
def attachment(attachment_id):
    """Attachment bytes through Echo: safe raster images inline, everything else as a download."""
    row = db.session.get(Attachment, attachment_id)
    if row is None or row.erased_at is not None:
        abort(404)
    inline = attachments.is_inline_image(row.content_type) and request.args.get("download") != "1"
    response = Response(storage().get(row.s3_key), mimetype=row.content_type)
    response.headers["Content-Disposition"] = attachments.content_disposition(
        "inline" if inline else "attachment", row.filename)
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


def agent_zone() -> ZoneInfo:
    """The signed-in agent's time zone (UTC when none is set or it is not a zone this system knows)."""
    if "echo.zone" not in request.environ:
        agent = current_agent()
        request.environ["echo.zone"] = zone_named(agent.time_zone if agent else "UTC")
    return request.environ["echo.zone"]


@bp.app_template_filter("local_time")
def local_time(moment: datetime | None, fmt: str = "%b %d, %H:%M", zone: bool = False) -> str:
    """A stored (UTC) time as the agent reads it, in their own zone; `zone` names the zone after it."""
    if moment is None:
        return ""
    local = moment.astimezone(agent_zone())
    return local.strftime(fmt) + (f" {local.tzname()}" if zone else "")


@bp.app_template_filter("filesize")
def filesize(size: int) -> str:
    if size < 1024:
        return f"{size} bytes"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


@bp.app_template_filter("filename")
def shown_filename(name: str, index: int = 1) -> str:
    """An attachment's name as shown, cleaned again: names stored before bidi controls were removed."""
    return attachments.clean_filename(name, index)


@bp.app_template_filter("message_html")
def message_html(body_html: str) -> Markup:
    """Stored message HTML, its images held or dropped again: HTML stored by older rules is shown as safely."""
    return Markup(sanitize.hold_images(body_html, sanitize.echo_hosts()))


@bp.app_template_filter("thread_kind")
def thread_kind(thread: Thread) -> str:
    return {"inbound": "customer", "outbound": "reply", "internal": "note"}[thread.direction]


@bp.app_template_global("viewer")
def viewer():
    """The signed-in agent a page is for (also on pages no console view rendered: a 404, a 405), or None."""
    actor = g.get("actor")
    if actor is not None:
        return actor
    try:
        agent = current_agent()
    except Exception:  # the database away while drawing an error page: draw it without the header
        return None
    return Actor.agent(agent) if agent is not None else None


@bp.app_template_global("agent_name")
def agent_name(agent_id: uuid.UUID | None) -> str:
    if agent_id is None:
        return "Echo"
    agent = db.session.get(Agent, agent_id)
    return agent.display_name if agent else "A former agent"


def _next_ticket(ticket: Ticket) -> Ticket | None:
    """The ticket after this one in the view the agent came from (the inbox's filters ride along as
    `view`, its query string), for "send and next"."""
    view = urlsplit(request.form.get("view", "")[:2000]).query
    return queries.next_after(_filters(MultiDict(parse_qsl(view))), ticket)


def _go(url: str):
    """Open another page: HTMX follows HX-Location, a plain form a redirect."""
    if request.headers.get("HX-Request"):
        response = make_response("", 204)
        response.headers["HX-Redirect"] = url
        return response
    return redirect(url)
