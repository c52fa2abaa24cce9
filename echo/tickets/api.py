"""The agent JSON API, /api/v1/agent (SPEC §7b): the console's use cases for scripts and integrations."""

from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from echo.actors import Actor
from echo.agents.models import Agent
from echo.agents.service import agent_for_token
from echo.errors import InvalidPayload, Unauthorized
from echo.extensions import db
from echo.http import json_body
from echo.outbound import service as outbound
from echo.outbound.service import send_reply
from echo.tickets import queries, service
from echo.tickets.models import Ticket
from echo.tickets.schemas import (
    BulkIn,
    ConversationIn,
    DraftIn,
    MergeIn,
    NoteIn,
    ReplyIn,
    SavedReplyIn,
    SnoozeIn,
    SpamIn,
    TicketPatch,
    outbox_json,
    parse,
    ticket_json,
)

bp = Blueprint("agent_api", __name__, url_prefix="/api/v1/agent")

def authenticate_bearer() -> Actor:
    """The agent behind an `Authorization: Bearer echo_pat_…` header, or 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, raw = header.partition(" ")
    agent = agent_for_token(raw.strip()) if scheme.lower() == "bearer" else None
    if agent is None:
        raise Unauthorized("A valid agent token is required (Authorization: Bearer echo_pat_…).")
    return Actor.agent(agent)


@bp.before_request
def _authenticate():
    g.actor = authenticate_bearer()


def _ticket_response(ticket, status=200):
    return jsonify(ticket_json(ticket, queries.conversation(ticket))), status


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidPayload(f"{name} must be a whole number.", code="invalid_query") from None
    if not low <= value <= high:
        raise InvalidPayload(f"{name} must be between {low} and {high}.", code="invalid_query")
    return value


@bp.get("/tickets")
def list_tickets():
    args = request.args
    assignee = args.get("assignee")
    if assignee == "me":
        assignee = db.session.get(Agent, g.actor.id).email
    filters = queries.TicketFilters(
        status=args.get("status"), assignee=assignee, tag=args.get("tag"), customer=args.get("customer"),
        q=(args.get("q") or "").strip()[:200] or None, quarantined=args.get("quarantined") in ("1", "true"),
        ranked=args.get("sort") == "relevance",
        page=_int_arg("page", 1, 1, 100_000), per_page=_int_arg("per_page", 25, 1, 100),
        order=args.get("sort") if args.get("sort") in queries.ORDERS else "updated",
    )
    found = queries.list_tickets(filters)
    tickets = []
    for ticket in found.tickets:
        body = ticket_json(ticket)
        if filters.q:
            body["snippet"] = found.snippets.get(ticket.id)
        tickets.append(body)
    # total_exact false: `total` is a lower bound (an inbox past 10 000) or an estimate (a very common search).
    response = jsonify(tickets=tickets, total=found.total, total_exact=not found.capped, page=filters.page,
                       per_page=filters.per_page)
    db.session.commit()  # the token's last-use stamp, once the page is built (a commit expires what it loaded)
    return response


@bp.post("/tickets")
def start_conversation():
    body = parse(ConversationIn, json_body())
    result = outbound.start_conversation(
        actor=g.actor, customer_email=body.customer_email, customer_name=body.customer_name, subject=body.subject,
        body_text=body.body_text, body_html=body.body_html, status=body.status)
    response = _ticket_response(db.session.get_one(Ticket, result.thread.ticket_id), 201)
    db.session.commit()
    return response


@bp.get("/tickets/<number>")
def get_ticket(number):
    ticket = service.get_ticket(number)
    response = _ticket_response(ticket)
    db.session.commit()
    return response


@bp.patch("/tickets/<number>")
def patch_ticket(number):
    data = json_body()
    patch = parse(TicketPatch, data)
    ticket = service.get_ticket(number)
    fields = set(data)
    if "status" in fields and patch.status:
        service.set_status(ticket, patch.status, actor=g.actor)
    if "assignee" in fields:
        service.assign(ticket, patch.assignee, actor=g.actor)
    if "tags" in fields and patch.tags is not None:
        service.set_tags(ticket, patch.tags, actor=g.actor)
    if "category" in fields:
        service.set_category(ticket, patch.category, actor=g.actor)
    db.session.commit()
    return _ticket_response(ticket)


@bp.post("/tickets/<number>/replies")
def reply(number):
    body = parse(ReplyIn, json_body())
    ticket = service.get_ticket(number)
    result = send_reply(ticket, actor=g.actor, body_text=body.body_text, body_html=body.body_html,
                        status=body.status, cc=body.cc, bcc=body.bcc, seen_until=body.seen_until)
    db.session.commit()
    return jsonify(thread_id=str(result.thread.id), outbox=outbox_json(result.outbox)), 201


@bp.post("/tickets/<number>/notes")
def note(number):
    body = parse(NoteIn, json_body())
    ticket = service.get_ticket(number)
    thread = service.add_note(ticket, actor=g.actor, body_text=body.body_text)
    db.session.commit()
    return jsonify(thread_id=str(thread.id)), 201


@bp.post("/tickets/<number>/merge")
def merge_ticket(number):
    body = parse(MergeIn, json_body())
    source = service.get_ticket(number)
    into = service.get_ticket(body.into)
    survivor = service.merge(source, into, actor=g.actor)
    db.session.commit()
    return _ticket_response(survivor)


@bp.get("/events")
def events():
    """Every ticket change as Server-Sent Events (resume with Last-Event-ID or ?since=)."""
    from echo.live.views import agent_stream

    return agent_stream()


@bp.post("/tickets/<number>/unmerge")
def unmerge_ticket(number):
    """Undo a merge: the ticket named (the one that was merged away) gets its threads back."""
    source = service.get_ticket(number, follow_merges=False)
    restored = service.unmerge(source, actor=g.actor)
    db.session.commit()
    return _ticket_response(restored)


@bp.post("/tickets/<number>/replies/<uuid:thread_id>/undo")
def undo_reply(number, thread_id):
    """Take back a reply still waiting in its undo window (409 `already_sent` once it left)."""
    ticket = service.get_ticket(number)
    text = outbound.undo_reply(ticket, thread_id, actor=g.actor)
    db.session.commit()
    return jsonify(undone=True, body_text=text)


def _on_ticket(number: str, work):
    """One use case on one ticket, committed, answered with the ticket as it is now."""
    ticket = service.get_ticket(number)
    work(ticket)
    db.session.commit()
    return _ticket_response(ticket)


@bp.post("/tickets/<number>/snooze")
def snooze_ticket(number):
    body = parse(SnoozeIn, json_body())
    return _on_ticket(number, lambda t: service.snooze(t, body.until, actor=g.actor))


@bp.post("/tickets/<number>/spam")
def spam_ticket(number):
    body = parse(SpamIn, json_body())
    return _on_ticket(number, lambda t: service.mark_spam(t, actor=g.actor, block=body.block))


@bp.post("/tickets/<number>/release")
def release_ticket(number):
    return _on_ticket(number, lambda t: service.release_from_quarantine(t, actor=g.actor))


@bp.delete("/tickets/<number>")
def delete_ticket(number):
    """Delete: into the quarantine as `deleted` (200, the ticket); a quarantined ticket is purged (204)."""
    ticket = service.get_ticket(number)
    purged = service.delete_ticket(ticket, actor=g.actor)
    if purged:
        db.session.commit()
        return "", 204
    response = _ticket_response(ticket)
    db.session.commit()
    return response


@bp.post("/tickets/bulk")
def bulk():
    body = parse(BulkIn, json_body())
    result = service.bulk(body.tickets, body.action, actor=g.actor, value=body.value, until=body.until)
    db.session.commit()
    return jsonify(changed=result.changed, skipped=[{"ticket": n, "reason": why} for n, why in result.skipped.items()])


@bp.get("/tickets/<number>/draft")
def get_draft(number):
    ticket = service.get_ticket(number)
    mine = next((d for d in outbound.drafts(ticket) if d.agent_id == g.actor.id), None)
    response = jsonify(draft_json(mine), others=[str(d.agent_id) for d in outbound.drafts(ticket)
                                                 if d.agent_id != g.actor.id])
    db.session.commit()
    return response


@bp.put("/tickets/<number>/draft")
def put_draft(number):
    body = parse(DraftIn, json_body())
    ticket = service.get_ticket(number)
    saved = outbound.save_draft(ticket, actor=g.actor, body_text=body.body_text, cc=body.cc, bcc=body.bcc)
    db.session.commit()
    return jsonify(draft_json(saved))


@bp.delete("/tickets/<number>/draft")
def delete_draft(number):
    ticket = service.get_ticket(number)
    outbound.discard_draft(ticket, actor=g.actor)
    db.session.commit()
    return "", 204


def draft_json(draft) -> dict:
    if draft is None:
        return {"draft": None}
    return {"draft": {"body_text": draft.body_text, "cc": draft.cc, "bcc": draft.bcc,
                      "updated_at": draft.updated_at.isoformat()}}


@bp.get("/saved-replies")
def list_saved_replies():
    rows = outbound.saved_replies(request.args.get("q"))
    response = jsonify(saved_replies=[saved_reply_json(r) for r in rows])
    db.session.commit()
    return response


@bp.post("/saved-replies")
def create_saved_reply():
    body = parse(SavedReplyIn, json_body())
    row = outbound.save_saved_reply(actor=g.actor, name=body.name, body_text=body.body_text)
    db.session.commit()
    return jsonify(saved_reply_json(row)), 201


@bp.put("/saved-replies/<uuid:saved_id>")
def update_saved_reply(saved_id):
    body = parse(SavedReplyIn, json_body())
    row = outbound.save_saved_reply(actor=g.actor, name=body.name, body_text=body.body_text, saved_id=saved_id)
    db.session.commit()
    return jsonify(saved_reply_json(row))


@bp.delete("/saved-replies/<uuid:saved_id>")
def delete_saved_reply(saved_id):
    outbound.delete_saved_reply(saved_id, actor=g.actor)
    db.session.commit()
    return "", 204


@bp.get("/tickets/<number>/saved-replies/<uuid:saved_id>")
def fill_saved_reply(number, saved_id):
    """A saved reply's text for this ticket, its placeholders filled in."""
    ticket = service.get_ticket(number)
    agent = db.session.get_one(Agent, g.actor.id)
    text = outbound.fill_saved_reply(saved_id, ticket, agent.display_name)
    db.session.commit()
    return jsonify(body_text=text)


def saved_reply_json(row) -> dict:
    return {"id": str(row.id), "name": row.name, "body_text": row.body_text,
            "updated_at": row.updated_at.isoformat()}
