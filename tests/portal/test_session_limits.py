"""Every portal token, whoever minted it, lives at most 12 hours from its `iat`, and any session,
Echo's or the host platform's, can be revoked (`echo-desk portal revoke-session`)."""

import time
from datetime import timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from echo.db import utcnow
from echo.portal.models import CustomerSession, RevokedPortalSession
from echo.security import token_hash
from tests.fakes.authenticator import SoftAuthenticator
from tests.mailbuilder import inbound_payload, post_inbound
from tests.portal.conftest import SESSION_KEY, bearer
from tests.portal.test_sign_in import PORTAL, enrol

YEAR = 365 * 24 * 3600


def tickets(client, headers):
    return client.get("/api/v1/support/tickets", headers=headers)


@pytest.fixture
def alice(client, db):
    post_inbound(client, inbound_payload())
    return "alice@example.com"


def test_a_host_token_valid_for_a_year_is_refused(client, alice):
    response = tickets(client, bearer(alice, sid="host-1", ttl=YEAR))
    assert response.status_code == 401 and response.get_json()["error"] == "unauthorized"
    assert tickets(client, bearer(alice, sid="host-1", ttl=12 * 3600)).status_code == 200  # the maximum itself


def test_a_token_issued_more_than_twelve_hours_ago_is_refused_even_before_its_exp(client, alice):
    now = int(time.time())
    stale = bearer(alice, sid="host-1", iat=now - 13 * 3600, exp=now + 600)
    assert tickets(client, stale).status_code == 401


@pytest.mark.parametrize("claims", [
    {"iat": None}, {"iat": str(int(time.time()))}, {"exp": str(int(time.time()) + 600)}, {"iat": True},
    {"iat": int(time.time()) + 3600},  # issued in the future
])
def test_odd_iat_and_exp_claims_are_a_401_never_a_500(client, alice, claims):
    import jwt

    now = int(time.time())
    payload = {"sub": "x", "customer_email": alice, "sid": "host-1", "iat": now, "exp": now + 600, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    token = jwt.encode(payload, SESSION_KEY, algorithm="HS256")
    assert tickets(client, {"Authorization": f"Bearer {token}"}).status_code == 401


def revoke(app, *args):
    options = [a for a in args if a.startswith("--") and a != "--"]
    ids = [a for a in args if a not in options]
    result = app.test_cli_runner().invoke(args=["portal", "revoke-session", *options, "--", *ids])
    assert result.exit_code == 0, result.output
    return result.output


def test_a_revoked_host_session_is_refused_and_others_are_not(app, client, db, alice):
    stolen, other = bearer(alice, sid="host-stolen"), bearer(alice, sid="host-other")
    assert tickets(client, stolen).status_code == 200
    assert "host-issued" in revoke(app, "host-stolen")
    refused = tickets(client, stolen)
    assert refused.status_code == 401 and refused.get_json()["error"] == "session_expired"
    assert tickets(client, bearer(alice, sid="host-stolen")).status_code == 401  # newly minted ones too
    assert tickets(client, other).status_code == 200
    stored = db.session.scalars(select(RevokedPortalSession)).all()
    assert [row.id for row in stored] == [token_hash("host-stolen")]  # only the hash is kept
    with time_machine.travel(utcnow() + timedelta(hours=12, minutes=1), tick=False):
        # Past the session maximum every token minted before the revocation has expired; the row goes
        # the next time anything is revoked.
        assert tickets(client, bearer(alice, sid="host-stolen")).status_code == 200
        revoke(app, "host-other")
        assert db.session.scalars(select(RevokedPortalSession.id)).all() == [token_hash("host-other")]


def test_revoking_by_the_hash_in_the_audit_log(app, client, db, alice):
    from echo.audit.models import SupportAuditLog

    headers = bearer(alice, sid="host-seen")
    tickets(client, headers)
    recorded = db.session.scalar(select(SupportAuditLog.session_id_hash))
    revoke(app, "--hashed", recorded.upper())
    assert tickets(client, headers).status_code == 401
    refused = app.test_cli_runner().invoke(args=["portal", "revoke-session", "--hashed", "not-a-hash"])
    assert refused.exit_code != 0 and "64 hexadecimal" in refused.output


def test_echos_own_sessions_are_revoked_as_before(app, client, db, run_jobs, postmark, alice):
    device = SoftAuthenticator(PORTAL)
    _, first = enrol(client, run_jobs, postmark, device)
    headers = {"Authorization": f"Bearer {first['jwt']}"}
    assert tickets(client, headers).status_code == 200
    import jwt

    sid = jwt.decode(first["jwt"], options={"verify_signature": False})["sid"]
    assert "Echo session" in revoke(app, sid)
    assert tickets(client, headers).status_code == 401
    session = db.session.get(CustomerSession, token_hash(sid))
    db.session.refresh(session)
    assert session.revoked_at is not None
    assert db.session.scalar(select(func.count()).select_from(RevokedPortalSession)) == 0  # not a host id
