"""Request plumbing shared by Echo's JSON endpoints: webhook auth and JSON bodies."""

from __future__ import annotations

import hmac

from flask import current_app, request

from echo.errors import InvalidPayload, Unauthorized


def require_webhook_auth() -> None:
    """Check Postmark's HTTP Basic credentials in constant time (both parts, always)."""
    settings = current_app.config["ECHO"]
    auth = request.authorization
    basic = auth if auth is not None and auth.type == "basic" else None
    user = (basic.username or "") if basic is not None else ""
    password = (basic.password or "") if basic is not None else ""
    user_ok = hmac.compare_digest(user.encode(), settings.webhook_user.encode())
    password_ok = hmac.compare_digest(password.encode(), settings.webhook_password.encode())
    if not (user_ok and password_ok):
        raise Unauthorized("Missing or wrong webhook credentials.", challenge='Basic realm="echo-webhooks"')


def json_body(*, replace_nul: bool = False) -> object:
    """The request's JSON body, or a clear 4xx when it is not JSON.

    PostgreSQL text cannot hold NUL characters (JSON carries them as \\u0000): they are a 422,
    or, with `replace_nul` (mail, which must never be refused for it), replaced by U+FFFD."""
    if not request.is_json:
        raise InvalidPayload("Send the payload as application/json.", code="unsupported_media_type", status=415)
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidPayload("The body is not valid JSON.", code="invalid_json", status=400)
    if b"\\u0000" in request.get_data():
        if not replace_nul:
            raise InvalidPayload("The body contains a NUL character, which cannot be stored.",
                                 code="invalid_characters", status=422)
        data = without_nul(data)
    return data


def without_nul(value):
    """`value` with every NUL character in its strings (keys included) replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [without_nul(item) for item in value]
    if isinstance(value, dict):
        return {without_nul(key): without_nul(item) for key, item in value.items()}
    return value


def json_object() -> dict:
    data = json_body()
    if not isinstance(data, dict):
        raise InvalidPayload("The payload must be a JSON object.")
    return data
