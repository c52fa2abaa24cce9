"""Security headers on Echo's responses (a strict CSP with no inline script, no framing, no
sniffing, HTTPS only in production), and no NUL characters from query strings or forms
(PostgreSQL text cannot hold them).

Standalone that is every response; in a host app only Echo's own (`echo.hosting.is_echo_request`):
the host's pages keep the host's policies.
"""

import hashlib
import ipaddress

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
# The ticket page may show the remote images an agent asks to see ("Show images"): no image in
# customer HTML has a live `src` but Echo's own attachments (echo.inbound.sanitize), so `https:`
# lets through only the images the agent chose, and Echo's hosts are never among them (sanitiser
# and script both refuse them). Every other page keeps 'self'.
PAGE_CSP = {"console.ticket": CSP.replace("img-src 'self'", "img-src 'self' https:")}

HSTS = "max-age=31536000; includeSubDomains"  # a year, as browsers' preload lists ask


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
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP.get(request.endpoint or "", CSP))
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if current_app.config["ECHO"].production:  # production is served over HTTPS only: browsers remember it
            response.headers.setdefault("Strict-Transport-Security", HSTS)
        return response


def token_hash(raw: str) -> str:
    """SHA-256 hex of a bearer secret (tokens, invitation links, session ids): only this is ever stored."""
    return hashlib.sha256(raw.encode()).hexdigest()


def ip_prefix(address: str | None) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of an address: enough to spot abuse, not to name a person;
    None when it is not an address."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:  # a dual-stack socket's IPv4 client
        ip = ip.ipv4_mapped
    return str(ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False))
