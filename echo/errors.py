"""Domain errors and the JSON error responses every API and webhook shares.

One vocabulary everywhere: the same failure answers the same code on the webhook, the agent API,
the portal and Investigate (`unauthorized`, `forbidden`, `not_found`, `invalid_request`,
`invalid_json`, `unsupported_media_type`, `payload_too_large`, `rate_limited`, …), and every 401
says how to authenticate (`WWW-Authenticate`)."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, jsonify, make_response, render_template, request
from redis import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, default_exceptions
from werkzeug.routing import RoutingException

log = logging.getLogger(__name__)


class EchoError(Exception):
    """A refusal the caller can act on; views map it to a status and a JSON body."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None, details=None):
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.status = status or self.status
        self.details = details


class InvalidPayload(EchoError):
    status = 422
    code = "invalid_request"


class PayloadTooLarge(EchoError):
    status = 413
    code = "payload_too_large"


class Unauthorized(EchoError):
    """No credentials, or wrong ones; `challenge` is the WWW-Authenticate value naming the scheme."""

    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, challenge: str = 'Bearer realm="echo"', code: str | None = None):
        super().__init__(message, code=code)
        self.challenge = challenge


class Forbidden(EchoError):
    status = 403
    code = "forbidden"


class NotFound(EchoError):
    status = 404
    code = "not_found"


# Codes for the HTTP errors Flask, werkzeug and Flask-Limiter raise, in Echo's vocabulary.
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
              422: "invalid_request", 429: "rate_limited", 503: "unavailable"}


def error_response(code: str, message: str, status: int, details=None, *, challenge: str | None = None):
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify(body)
    if status == 401:
        response.headers["WWW-Authenticate"] = challenge or 'Bearer realm="echo"'
    return response, status


JSON_PREFIXES = ("/api/", "/tickets/inbound", "/tickets/webhooks/", "/tickets/from-snapshot")


def wants_json(path: str) -> bool:
    return path.startswith(JSON_PREFIXES)


def register_error_handlers(blueprint: Blueprint) -> None:
    """Echo's error answers, on one of Echo's blueprints so that a host app's pages keep the host's:
    JSON on Echo's JSON paths; on console pages Flask's HTTP error pages and a message page for a refusal."""
    blueprint.register_error_handler(EchoError, _echo_error)
    # By code too: a host's app-wide handler for a code (say its 404 page) is looked up before any
    # handler by class alone, and must not answer Echo's JSON paths.
    for code in default_exceptions:
        blueprint.register_error_handler(code, _http_error)
    blueprint.register_error_handler(HTTPException, _http_error)
    blueprint.register_error_handler(OperationalError, _database_unavailable)
    blueprint.register_error_handler(RedisError, _redis_unavailable)
    blueprint.register_error_handler(DBAPIError, _database_error)


def answer_unrouted(app: Flask, json_paths, page_paths) -> None:
    """A path that matches no route, or not with this method, is answered in JSON under `json_paths`
    and with an Echo page under `page_paths` (predicates on the path). Such a request belongs to no
    blueprint; this keeps the answer off the app's own error handlers, which in a host app are the host's."""

    @app.before_request
    def _unrouted():
        exc = request.routing_exception
        if exc is None or isinstance(exc, RoutingException) or not isinstance(exc, HTTPException):
            return None
        if json_paths(request.path):
            return _http_error(exc)
        if page_paths(request.path) and exc.code and exc.code >= 400:
            return page_error(_PAGE_MESSAGES.get(exc.code, exc.description or exc.name), exc.code, _allowed(exc))
        return None


def _echo_error(exc: EchoError):
    if wants_json(request.path):
        return error_response(exc.code, exc.message, exc.status, exc.details,
                              challenge=getattr(exc, "challenge", None))
    return page_error(exc.message, exc.status)


def page_error(message: str, status: int, allow: str | None = None):
    """A refusal on Echo's pages: an Echo page, or, for an HTMX request, the message alone, put in the
    page's `#flash` region (console.js swaps 4xx answers), where the agent is looking."""
    if request.headers.get("HX-Request"):
        response = make_response(render_template("console/_error.html", message=message), status)
        response.headers["HX-Retarget"] = "#flash"
        response.headers["HX-Reswap"] = "innerHTML"
    else:
        title = {401: "Sign in", 403: "Not allowed", 404: "Not found", 405: "Not here"}.get(status, "That did not work")
        response = make_response(render_template("console/message.html", title=title, message=message, home=True),
                                 status)
    if allow:
        response.headers["Allow"] = allow
    return response


def _allowed(exc: HTTPException) -> str | None:
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        return ", ".join(sorted(exc.valid_methods))
    return None


_PAGE_MESSAGES = {404: "There is nothing at this address.", 405: "This page cannot be used that way.",
                  413: "That upload is too large."}


def _http_error(exc: HTTPException):
    if not wants_json(request.path):
        if exc.code is None or exc.code < 400:
            return exc
        return page_error(_PAGE_MESSAGES.get(exc.code, exc.description or exc.name), exc.code, _allowed(exc))
    status = exc.code or 500
    code = HTTP_CODES.get(status) or (exc.name or "error").lower().replace(" ", "_")
    response, status = error_response(code, exc.description or exc.name, status)
    if status == 405 and (allow := _allowed(exc)):
        response.headers["Allow"] = allow
    return response, status


def _database_unavailable(exc: OperationalError):
    # A 5xx makes Postmark retry later, which is what we want while the database is away.
    log.error("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
    return error_response("unavailable", "The service is temporarily unavailable; please retry.", 503)


def _redis_unavailable(exc: RedisError):
    log.error("Redis unavailable: %s", type(exc).__name__)
    return error_response("unavailable", "The service is temporarily unavailable; please retry.", 503)


def _database_error(exc: DBAPIError):
    log.exception("database error")
    return error_response("internal_error", "Something went wrong on our side; please retry.", 500)
