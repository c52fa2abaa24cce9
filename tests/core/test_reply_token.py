"""Signed reply tokens: fixed length, case-insensitive, unforgeable without the key."""

import uuid

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


def test_malformed_tokens_fail_quietly():
    for token in ("", "a", "=" * 42, "0" * 42, "!" * 42, "a" * 41, "a" * 43, "ü" * 42):
        assert reply_token.verify("key-one", token) is None


def test_reply_address_keeps_the_support_mailbox():
    ticket_id = uuid.uuid4()
    address = reply_token.reply_address("k", "support@raxx.app", ticket_id)
    local, domain = address.split("@")
    assert domain == "raxx.app" and local.startswith("support+") and len(local) <= 64
