"""Domain errors and the JSON error responses every API and webhook shares."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

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
    code = "invalid_payload"


class PayloadTooLarge(EchoError):
    status = 413
    code = "payload_too_large"


class Forbidden(EchoError):
    status = 403
    code = "forbidden"


class NotFound(EchoError):
    status = 404
    code = "not_found"


def error_response(code: str, message: str, status: int, details=None):
    body = {"error": code, "message": message}
    if details:
        body["details"] = details
    return jsonify(body), status


JSON_PREFIXES = ("/api/", "/tickets/inbound", "/tickets/webhooks/", "/tickets/from-snapshot")


def wants_json(path: str) -> bool:
    return path.startswith(JSON_PREFIXES)


def register_error_handlers(app: Flask) -> None:
    from flask import request

    @app.errorhandler(EchoError)
    def _echo_error(exc: EchoError):
        return error_response(exc.code, exc.message, exc.status, exc.details)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if not wants_json(request.path):
            return exc
        code = (exc.name or "error").lower().replace(" ", "_")
        response, status = error_response(code, exc.description or exc.name, exc.code or 500)
        if exc.code == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="echo"'
        return response, status

    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError):
        # A 5xx makes Postmark retry later, which is what we want while the database is away.
        log.error("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)
        return error_response("unavailable", "The service is temporarily unavailable; please retry.", 503)

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError):
        log.exception("database error")
        return error_response("internal_error", "Something went wrong on our side; please retry.", 500)
