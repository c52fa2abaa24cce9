"""WebAuthn ceremonies through the `webauthn` package: options out, verified credentials in.

Challenges live server-side in the caller's signed session for a few minutes; the relying
party id and origin come from configuration only (ECHO_CONSOLE_URL / ECHO_PORTAL_URL, with a
fixed development default), never from the request: a forged Host header must not choose them.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import select
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url
from webauthn.helpers.exceptions import InvalidAuthenticationResponse, InvalidRegistrationResponse
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from echo.db import utcnow
from echo.errors import EchoError
from echo.extensions import db
from echo.passkeys.models import Passkey

CHALLENGE_TTL = 300  # seconds


class PasskeyFailed(EchoError):
    status = 400
    code = "passkey_failed"


@dataclass(frozen=True)
class RelyingParty:
    id: str
    name: str
    origin: str

    @classmethod
    def for_url(cls, base_url: str, name: str) -> RelyingParty:
        parts = urlsplit(base_url)
        return cls(id=parts.hostname or "localhost", name=name, origin=f"{parts.scheme}://{parts.netloc}")


def registration_options(rp: RelyingParty, *, user_handle: bytes, user_name: str, display_name: str,
                         existing: list[Passkey]) -> tuple[str, dict]:
    """Options JSON for navigator.credentials.create(), and the challenge record to keep in the session."""
    options = generate_registration_options(
        rp_id=rp.id, rp_name=rp.name, user_id=user_handle, user_name=user_name, user_display_name=display_name,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id) for p in existing],
    )
    return options_to_json(options), _challenge_record(options.challenge)


def verify_registration(rp: RelyingParty, credential: dict, challenge: dict | None) -> tuple[bytes, bytes, int]:
    """Check an attestation; return (credential id, public key, sign count)."""
    expected = _take_challenge(challenge)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=expected, expected_rp_id=rp.id, expected_origin=rp.origin,
        )
    except (InvalidRegistrationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyFailed(f"That passkey could not be registered ({type(exc).__name__}).") from None
    if db.session.scalar(select(Passkey.id).where(Passkey.credential_id == verified.credential_id)):
        raise PasskeyFailed("That passkey is already registered.")
    return verified.credential_id, verified.credential_public_key, verified.sign_count


def authentication_options(rp: RelyingParty) -> tuple[str, dict]:
    """Options for navigator.credentials.get() with discoverable credentials (no user name asked)."""
    options = generate_authentication_options(
        rp_id=rp.id, user_verification=UserVerificationRequirement.PREFERRED,
    )
    return options_to_json(options), _challenge_record(options.challenge)


def verify_authentication(rp: RelyingParty, credential: dict, challenge: dict | None) -> Passkey:
    """Check an assertion against the stored passkey it names; return that passkey, counter updated."""
    expected = _take_challenge(challenge)
    try:
        raw_id = base64url_to_bytes(str(credential.get("rawId") or credential.get("id") or ""))
    except (ValueError, AttributeError):
        raise PasskeyFailed("That passkey is not recognised.") from None
    passkey = db.session.scalar(select(Passkey).where(Passkey.credential_id == raw_id))
    if passkey is None:
        raise PasskeyFailed("That passkey is not recognised.")
    try:
        verified = verify_authentication_response(
            credential=credential, expected_challenge=expected, expected_rp_id=rp.id, expected_origin=rp.origin,
            credential_public_key=passkey.public_key, credential_current_sign_count=passkey.sign_count,
        )
    except (InvalidAuthenticationResponse, ValueError, KeyError, TypeError) as exc:
        raise PasskeyFailed(f"That passkey could not be verified ({type(exc).__name__}).") from None
    passkey.sign_count, passkey.last_used_at = verified.new_sign_count, utcnow()
    return passkey


def add_passkey(credential: tuple[bytes, bytes, int], *, agent_id: uuid.UUID | None = None,
                customer_id: uuid.UUID | None = None, name: str = "Passkey") -> Passkey:
    credential_id, public_key, sign_count = credential
    passkey = Passkey(agent_id=agent_id, customer_id=customer_id, credential_id=credential_id,
                      public_key=public_key, sign_count=sign_count, name=(name or "Passkey")[:100])
    db.session.add(passkey)
    db.session.flush()
    return passkey


def parse_credential(raw: object) -> dict:
    """The browser's credential JSON as a dict, or a clear refusal."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, dict):
        raise PasskeyFailed("The passkey response is missing or malformed.")
    return raw


def _challenge_record(challenge: bytes) -> dict:
    return {"challenge": bytes_to_base64url(challenge), "expires": time.time() + CHALLENGE_TTL}


def _take_challenge(record: dict | None) -> bytes:
    if not record or record.get("expires", 0) < time.time():
        raise PasskeyFailed("The sign-in request expired. Try again.")
    return base64url_to_bytes(record["challenge"])
