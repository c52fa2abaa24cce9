"""Security headers on Echo's responses (a strict CSP with no inline script, no framing, no
sniffing), and no NUL characters from query strings or forms (PostgreSQL text cannot hold them).

Standalone that is every response; in a host app only Echo's own (`echo.hosting.is_echo_request`):
the host's pages keep the host's policies.
"""

import hashlib

from flask import Flask, Response, abort, current_app, request

from echo.hosting import is_echo_request, mount

FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",  # remote images in mail would tell senders when and where an agent read it
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])


def init_app(app: Flask) -> None:
    @app.before_request
    def _check_request():
        if not is_echo_request():
            return
        if getattr(mount(), "hosted", False):  # the host's MAX_CONTENT_LENGTH is the host's, not Echo's
            request.max_content_length = current_app.config["ECHO"].max_inbound_bytes
        # JSON bodies are checked by echo.http.json_body (mail has them replaced: it is never refused).
        fields = list(request.args.lists())
        if request.mimetype in FORM_TYPES:
            fields += list(request.form.lists())
        if any("\x00" in key or any("\x00" in value for value in values) for key, values in fields):
            abort(400, description="The request contains a NUL character, which cannot be stored.")

    @app.after_request
    def _headers(response: Response) -> Response:
        if not is_echo_request():
            return response
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        return response


def token_hash(raw: str) -> str:
    """SHA-256 hex of a bearer secret (tokens, invitation links, session ids): only this is ever stored."""
    return hashlib.sha256(raw.encode()).hexdigest()
