"""Request plumbing shared by Echo's JSON endpoints: webhook auth and JSON bodies."""

from __future__ import annotations

import hmac
import re

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


# JSON escapes that can decode to what PostgreSQL text cannot hold: NUL, and UTF-16 surrogates
# (a valid pair decodes to one character; a lone one stays a surrogate, which UTF-8 cannot encode).
_UNSTORABLE_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def json_body(*, replace_unstorable: bool = False) -> object:
    """The request's JSON body, or a clear 4xx when it is not JSON.

    PostgreSQL text cannot hold NUL characters or lone surrogates (JSON carries them as \\u0000
    and \\ud800): they are a 422, or, with `replace_unstorable` (mail, which must never be refused
    for its content), replaced by U+FFFD."""
    if not request.is_json:
        raise InvalidPayload("Send the payload as application/json.", code="unsupported_media_type", status=415)
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # nesting no JSON of Echo's has; answered before anything walks it
        raise InvalidPayload("The body nests too deeply.", code="invalid_json", status=400) from None
    if data is None:
        raise InvalidPayload("The body is not valid JSON.", code="invalid_json", status=400)
    if _UNSTORABLE_ESCAPE.search(request.get_data()):
        try:
            cleaned = storable(data)
        except RecursionError:
            raise InvalidPayload("The body nests too deeply.", code="invalid_json", status=400) from None
        if cleaned != data and not replace_unstorable:
            raise InvalidPayload("The body contains a NUL character or an unpaired surrogate, which cannot be "
                                 "stored.", code="invalid_characters", status=422)
        data = cleaned
    return data


def storable(value):
    """`value` with every NUL character and lone surrogate in its strings (keys included) replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, list):
        return [storable(item) for item in value]
    if isinstance(value, dict):
        return {storable(key): storable(item) for key, item in value.items()}
    return value


def json_object() -> dict:
    data = json_body()
    if not isinstance(data, dict):
        raise InvalidPayload("The payload must be a JSON object.")
    return data
