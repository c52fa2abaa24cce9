"""The one module that talks to Postmark's API (through postmarker)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import requests
import urllib3
from flask import current_app
from postmarker.core import PostmarkClient
from postmarker.exceptions import ClientError

# Bounded time per attempt: Postmark answers in well under a second; one that does not is left to the
# sweeper's recovery (a read time-out may mean Postmark has the email, and it is asked, not resent).
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 10.0

# Postmark ErrorCodes that no retry will fix: inactive recipient, invalid address, and friends.
PERMANENT_ERROR_CODES = {300, 406, 409, 411, 412, 413, 415, 416, 422, 1000, 1001}
# Of those, the ones that say the address itself can never receive mail (invalid, inactive recipient).
DEAD_ADDRESS_CODES = frozenset({300, 406})


class SendError(Exception):
    """A send that did not succeed. `maybe_sent`: the request may have reached Postmark (its answer
    was lost or unreadable), so the email must be looked up, never sent again blindly."""

    def __init__(self, message: str, *, permanent: bool, error_code: int | None = None, maybe_sent: bool = False):
        super().__init__(message)
        self.permanent = permanent
        self.error_code = error_code
        self.maybe_sent = maybe_sent


def _never_reached(exc: requests.RequestException) -> bool:
    """Whether the error proves the request never reached Postmark: the connection was never made."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        reason = exc.args[0] if exc.args else None
        reason = getattr(reason, "reason", reason)
        return isinstance(reason, (urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.NewConnectionError))
    return False


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text_body: str
    html_body: str
    reply_to: str
    headers: dict[str, str]
    metadata: dict[str, str]
    tag: str
    attachments: list[dict] | None = None
    cc: str = ""
    bcc: str = ""


def client() -> PostmarkClient:
    """The app's Postmark client, built once: its HTTP session keeps the connection to Postmark alive between sends."""
    postmark = current_app.extensions.get("echo_postmark")
    if postmark is None:
        settings = current_app.config["ECHO"]
        api_url = settings.postmark_api_url.rstrip("/") + "/"
        postmark = PostmarkClient(server_token=settings.postmark_server_token, root_api_url=api_url,
                                  timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        # The proxy and CA-bundle variables requests honours, read once here: with trust_env it
        # re-reads the whole environment on every send, half the CPU of a send.
        session = postmark.session
        session.proxies = requests.utils.get_environ_proxies(api_url)
        session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        session.trust_env = False
        current_app.extensions["echo_postmark"] = postmark
    return postmark


def find_sent(outbox_id: str) -> str | None:
    """Postmark's MessageID of a message we sent for this outbox entry, if Postmark has one.

    Used after a worker died between Postmark accepting a message and Echo recording it:
    the Metadata we send lets us ask instead of sending twice.
    """
    try:
        response = client().messages.outbound.call(
            "GET", "/messages/outbound", count=1, offset=0, metadata_echo_outbox_id=outbox_id,
        )
    except ClientError as exc:
        raise SendError(str(exc), permanent=False, error_code=getattr(exc, "error_code", None)) from None
    except requests.RequestException as exc:
        raise SendError(f"could not reach Postmark: {type(exc).__name__}", permanent=False) from None
    messages = response.get("Messages") or []
    return messages[0]["MessageID"] if messages else None


def send(email: OutgoingEmail) -> str:
    """Send one email and return Postmark's MessageID, or raise SendError saying whether to retry."""
    settings = current_app.config["ECHO"]
    try:
        response = client().emails.send(
            From=f'"{settings.from_name}" <{settings.support_address}>',
            To=email.to,
            Cc=email.cc or None,
            Bcc=email.bcc or None,
            Subject=email.subject,
            TextBody=email.text_body,
            HtmlBody=email.html_body,
            ReplyTo=email.reply_to,
            Headers=email.headers,
            Metadata=email.metadata,
            Tag=email.tag,
            Attachments=email.attachments or None,
            TrackOpens=False,
        )
    except ClientError as exc:
        code = getattr(exc, "error_code", None)
        raise SendError(str(exc), permanent=code in PERMANENT_ERROR_CODES, error_code=code) from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        raise SendError(f"Postmark answered HTTP {status}", permanent=False) from None
    except requests.RequestException as exc:
        # A read time-out, a connection lost after the request was written, an unreadable 2xx:
        # Postmark may have the email. Only a connection never made is safe to retry blindly.
        if _never_reached(exc):
            raise SendError(f"could not reach Postmark: {type(exc).__name__}", permanent=False) from None
        raise SendError(f"Postmark's answer was lost ({type(exc).__name__}); it is asked before any resend",
                        permanent=False, maybe_sent=True) from None
    if not isinstance(response, dict) or "MessageID" not in response:
        raise SendError("Postmark's answer had no MessageID; it is asked before any resend", permanent=False,
                        maybe_sent=True)
    return response["MessageID"]
