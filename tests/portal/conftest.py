"""Portal fixtures: customers with tickets, and bearer JWTs as the host platform would mint them."""

import time
import uuid

import jwt
import pytest

SESSION_KEY = "test-session-key-0123456789abcdef"


def token_for(email: str, *, sub: str | None = None, sid: str = "host-session", ttl: int = 900, key: str = SESSION_KEY,
              **extra) -> str:
    now = int(time.time())
    claims = {"sub": sub or str(uuid.uuid4()), "customer_email": email, "sid": sid, "iat": now, "exp": now + ttl,
              **extra}
    return jwt.encode(claims, key, algorithm="HS256")


def bearer(email: str, **kwargs) -> dict:
    return {"Authorization": f"Bearer {token_for(email, **kwargs)}"}


@pytest.fixture
def as_customer():
    return bearer
