"""/api/v1/support: the customer portal's API (SPEC §8). Every request is authenticated, checked and audited."""

from __future__ import annotations

import functools

from flask import Blueprint, Response, current_app, jsonify, request
from flask_cors import CORS
from sqlalchemy import insert

from echo.attachments.service import content_disposition
from echo.attachments.storage import storage
from echo.audit.models import SupportAuditLog
from echo.errors import EchoError, error_response
from echo.extensions import db, limiter
from echo.http import json_body
from echo.portal import schemas, service
from echo.portal.auth import PortalIdentity, identify, refreshed_token
from echo.security import ip_prefix

bp = Blueprint("portal_api", __name__, url_prefix="/api/v1/support")
PER_PAGE_MAX = 50
MAX_PAGE = 10_000


def _rate_key() -> str:
    """Limits count per customer (the token's email); requests without a valid token count per IP."""
    try:
        return "customer:" + _identity().email
    except EchoError:
        return "ip:" + (request.remote_addr or "unknown")


overall = limiter.shared_limit("60/minute", scope="portal", key_func=_rate_key)


def _identity() -> PortalIdentity:
    """Verified once per request (cached in its WSGI environ, not on g: an app context may outlive one)."""
    if "echo.portal_identity" not in request.environ:
        request.environ["echo.portal_identity"] = identify()
    return request.environ["echo.portal_identity"]


def audited(action: str):
    """Record this request in support_audit_log, whatever its outcome."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            request.environ["echo.portal_action"] = action
            request.environ["echo.portal_resource"] = kwargs.get("ticket_id")
            return view(*args, **kwargs)

        return inner

    return wrap


@bp.before_request
def _flag():
    if not current_app.config["ECHO"].flag_support_portal_api:
        return error_response("maintenance", "Support tickets are briefly unavailable. Email us meanwhile.", 503)
    return None


@bp.errorhandler(service.TicketUnavailable)
def _unavailable(exc: service.TicketUnavailable):
    request.environ["echo.portal_error_code"] = "privacy_violation" if exc.privacy_violation else "not_found"
    return error_response("not_found", service.UNAVAILABLE, 403)


@bp.after_request
def _after(response: Response) -> Response:
    if "echo.portal_action" in request.environ:
        _write_audit(response)
    identity = request.environ.get("echo.portal_identity")
    if identity is not None and response.status_code < 400:
        fresh = refreshed_token(identity)
        if fresh:
            response.headers["X-Session-Token"] = fresh[0]
            response.headers["X-Session-Expires-At"] = fresh[1].isoformat()
    return response


def _write_audit(response: Response) -> None:
    """The request's audit row, committed with the request's own work when it succeeded (a read's
    `customer_read_at` stamp rides on this commit); after a refusal or failure, everything the request
    did is rolled back first and the audit row alone is kept."""
    identity = request.environ.get("echo.portal_identity")
    error = request.environ.get("echo.portal_error_code")
    if error is None and response.status_code >= 400:
        body = response.get_json(silent=True) or {}
        error = str(body.get("error") or response.status_code)
    if response.status_code >= 400:
        db.session.rollback()
    db.session.execute(insert(SupportAuditLog).values(
        customer_id=identity.customer_id if identity else None, action=request.environ["echo.portal_action"],
        resource_id=str(request.environ.get("echo.portal_resource") or "")[:64] or None,
        ip_prefix=ip_prefix(request.remote_addr), session_id_hash=identity.session_hash if identity else None,
        success=response.status_code < 400, error_code=error,
    ))
    db.session.commit()


def _page_args() -> tuple[int, int]:
    try:
        page, per_page = int(request.args.get("page", 1)), int(request.args.get("per_page", 20))
    except ValueError:
        raise EchoError("page and per_page must be whole numbers.", code="invalid_request", status=400) from None
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= PER_PAGE_MAX:
        raise EchoError(f"page is 1 to {MAX_PAGE}; per_page is 1 to {PER_PAGE_MAX}.", code="invalid_request",
                        status=400)
    return page, per_page


@bp.get("/health")
@limiter.exempt
def health():
    return jsonify(status="ok")


@bp.get("/openapi.json")
@limiter.exempt
def openapi():
    from echo.portal.openapi import document

    return jsonify(document())


@bp.get("/session")
@overall
def session_info():
    identity = _identity()
    return jsonify(customer_id=str(identity.customer_id) if identity.customer_id else None,
                   linked=identity.customer_id is not None)


@bp.get("/events")
@overall
@audited("events.stream")
def events():
    """The customer's own tickets as Server-Sent Events: support replied, the status changed (never a
    note, never an operator field). Resume with Last-Event-ID or ?since=. Read it with fetch and the
    Authorization header (EventSource cannot send one)."""
    from echo.live.views import customer_stream, empty_stream

    identity = _identity()
    if identity.customer_id is None:
        return empty_stream()
    return customer_stream(identity.customer_id)


@bp.get("/tickets")
@overall
@audited("ticket.list")
def list_tickets():
    page, per_page = _page_args()
    found = service.list_tickets(_identity(), page, per_page)
    return jsonify(tickets=[schemas.ticket_summary(t) for t in found.tickets], total=found.total,
                   page=page, per_page=per_page)


@bp.get("/tickets/<ticket_id>")
@overall
@audited("ticket.read")
def get_ticket(ticket_id):
    ticket, threads = service.read_ticket(_identity(), ticket_id)
    return jsonify(schemas.ticket_detail(ticket, threads))  # the read stamp commits with the audit row


@bp.post("/tickets")
@overall
@limiter.limit("10/minute", key_func=_rate_key)
@audited("ticket.create")
def create_ticket():
    identity = _identity()
    data = schemas.parse(schemas.CreateTicketIn, json_body())
    ticket = service.create_ticket(identity, data.subject, data.body, data.category)
    request.environ["echo.portal_resource"] = ticket.id
    body = schemas.created(ticket)
    db.session.commit()
    return jsonify(body), 201


@bp.post("/tickets/<ticket_id>/replies")
@overall
@limiter.limit("20/minute", key_func=_rate_key)
@audited("ticket.reply")
def reply(ticket_id):
    identity = _identity()
    data = schemas.parse(schemas.ReplyIn, json_body())
    recorded = service.reply(identity, ticket_id, data.body)
    db.session.commit()
    return jsonify(thread_id=str(recorded.thread_id), sent_at=recorded.created_at.isoformat()), 201


@bp.put("/tickets/<ticket_id>/resolve")
@overall
@limiter.limit("10/minute", key_func=_rate_key)
@audited("ticket.resolve")
def resolve(ticket_id):
    ticket = service.resolve(_identity(), ticket_id)
    db.session.commit()
    return jsonify(id=str(ticket.id), status="resolved")


@bp.get("/tickets/<ticket_id>/attachments/<attachment_id>")
@overall
@limiter.limit("30/minute", key_func=_rate_key)
@audited("attachment.read")
def attachment(ticket_id, attachment_id):
    row = service.attachment(_identity(), ticket_id, attachment_id)
    data = storage().get(row.s3_key)
    response = Response(data, mimetype=row.content_type)
    response.headers["Content-Disposition"] = content_disposition("attachment", row.filename)
    response.headers["Content-Length"] = str(len(data))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


def init_app(app) -> None:
    """CORS for the portal's origins only."""
    origins = list(app.config["ECHO"].cors_origins)
    CORS(app, resources={r"/api/v1/support/*": {"origins": origins}, r"/api/sessions*": {"origins": origins}},
         allow_headers=["Authorization", "Content-Type"], expose_headers=["X-Session-Token", "X-Session-Expires-At",
                                                                          "Retry-After"], max_age=600)

