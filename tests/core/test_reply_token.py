"""Signed reply tokens: fixed length, case-insensitive, unforgeable without the key, strong for a year."""

import base64
import hashlib
import hmac
import uuid
from datetime import date, timedelta

from echo.mail import reply_token


def test_round_trip_and_case_folding():
    ticket_id = uuid.uuid4()
    token = reply_token.mint("key-one", ticket_id)
    assert len(token) == reply_token.TOKEN_LENGTH
    assert reply_token.verify("key-one", token) == ticket_id
    assert reply_token.verify("key-one", token.upper()) == ticket_id


def test_other_key_or_other_ticket_fails():
    a, b = uuid.uuid4(), uuid.uuid4()
    token_a = reply_token.mint("key-one", a)
    assert reply_token.verify("key-two", token_a) is None
    swapped = reply_token.mint("key-one", b)[:26] + token_a[26:]  # b's id with a's MAC
    assert reply_token.verify("key-one", swapped) is None


def test_the_issue_day_is_signed_and_ages_the_token():
    ticket_id, minted = uuid.uuid4(), date(2027, 3, 1)
    token = reply_token.mint("key-one", ticket_id, issued_on=minted)
    found = reply_token.check("key-one", token)
    assert found == reply_token.Token(ticket_id, minted)
    assert not found.expired(minted + reply_token.LIFETIME)
    assert found.expired(minted + reply_token.LIFETIME + timedelta(days=1))
    redated = reply_token.mint("key-one", ticket_id, issued_on=date(2031, 1, 1))[:29] + token[29:]
    assert reply_token.check("key-one", redated) is None  # a later day with the old MAC


def legacy_token(secret, ticket_id):
    """A token as Echo minted them before they carried a date."""
    key = hmac.new(secret.encode(), b"echo.reply-token.v1", hashlib.sha256).digest()
    mac = hmac.new(key, ticket_id.bytes, hashlib.sha256).digest()[:10]
    return "".join(base64.b32encode(part).decode().rstrip("=").lower() for part in (ticket_id.bytes, mac))


def test_tokens_of_the_first_format_still_verify_for_a_transition():
    ticket_id = uuid.uuid4()
    token = legacy_token("key-one", ticket_id)
    assert len(token) == reply_token.LEGACY_TOKEN_LENGTH
    found = reply_token.check("key-one", token.upper())
    assert found is not None and found.ticket_id == ticket_id
    assert not found.expired(reply_token.LEGACY_ISSUED_ON + reply_token.LIFETIME)
    assert found.expired(reply_token.LEGACY_ISSUED_ON + reply_token.LIFETIME + timedelta(days=1))
    assert reply_token.verify("key-two", token) is None


def test_malformed_tokens_fail_quietly():
    for token in ("", "a", "=" * 42, "0" * 42, "!" * 42, "a" * 41, "a" * 43, "ü" * 42,
                  "=" * 45, "0" * 45, "!" * 45, "a" * 44, "a" * 46, "ü" * 45, "a" * 45):
        assert reply_token.verify("key-one", token) is None


def test_reply_address_keeps_the_support_mailbox():
    ticket_id = uuid.uuid4()
    address = reply_token.reply_address("k", "support@raxx.app", ticket_id)
    local, domain = address.split("@")
    assert domain == "raxx.app" and local.startswith("support+") and len(local) <= 64


def test_only_the_canonical_spelling_verifies():
    """base32 leaves spare bits in the last character; a second spelling of a token is not ours."""
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    for _ in range(20):
        token = reply_token.mint("key-one", uuid.uuid4())
        spare = alphabet[alphabet.index(token[-1]) ^ 1]  # the last character's spare (lowest) bit flipped
        assert reply_token.verify("key-one", token[:-1] + spare) is None
        legacy = legacy_token("key-one", uuid.uuid4())
        respelt = legacy[:25] + alphabet[alphabet.index(legacy[25]) ^ 1] + legacy[26:]
        assert reply_token.verify("key-one", respelt) is None
