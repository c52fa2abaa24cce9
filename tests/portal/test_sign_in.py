"""Customer sign-in with passkeys: enrolment by emailed link, sign-in, refresh, sign-out."""

from datetime import timedelta

import time_machine
from sqlalchemy import func, select

from echo.db import utcnow
from echo.mail.models import OutboxMessage
from echo.passkeys.models import Passkey
from echo.portal.models import CustomerEnrolment
from tests.fakes.authenticator import SoftAuthenticator
from tests.mailbuilder import inbound_payload, post_inbound
from tests.statements import statements_during

PORTAL = "https://support.raxx.app"


def enrol_link(client, run_jobs, postmark, email="alice@example.com"):
    response = client.post("/api/sessions/enrol", json={"email": email})
    assert response.status_code == 202
    run_jobs()
    mails = [m for m in postmark.sent if m["Tag"] == "portal_enrol"]
    return mails[-1]["TextBody"].split("token=", 1)[1].split()[0] if mails else None


def enrol(client, run_jobs, postmark, device: SoftAuthenticator):
    token = enrol_link(client, run_jobs, postmark)
    options = client.post("/api/sessions/enrol/options", json={"token": token}).get_json()
    response = client.post("/api/sessions/enrol/verify", json={"token": token, "credential": device.create(options)})
    assert response.status_code == 201, response.get_json()
    return token, response.get_json()


def sign_in(client, device):
    challenge = client.get("/api/sessions/webauthn/challenge").get_json()
    return client.post("/api/sessions", json={"challenge_id": challenge["challenge_id"],
                                              "credential": device.get(challenge["options"])})


def test_enrolment_answers_the_same_for_known_and_unknown_addresses(client, db, run_jobs, postmark):
    post_inbound(client, inbound_payload())
    run_jobs()
    known = client.post("/api/sessions/enrol", json={"email": "alice@example.com"})
    unknown = client.post("/api/sessions/enrol", json={"email": "nobody@example.com"})
    assert known.status_code == unknown.status_code == 202 and known.get_json() == unknown.get_json()
    run_jobs()
    assert [m["To"] for m in postmark.sent if m["Tag"] == "portal_enrol"] == ["alice@example.com"]


def test_enrol_sign_in_use_and_sign_out(client, db, run_jobs, postmark):
    post_inbound(client, inbound_payload(subject="My ticket"))
    device = SoftAuthenticator(PORTAL)
    token, session = enrol(client, run_jobs, postmark, device)
    assert set(session) == {"jwt", "expires_at", "user_id"}
    stored = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "portal_enrol"))
    assert token not in str(stored.context)  # the link leaves the database once it is sent
    again = client.post("/api/sessions/enrol/options", json={"token": token})
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_token"

    signed = sign_in(client, device)
    assert signed.status_code == 201
    jwt = signed.get_json()["jwt"]
    listing = client.get("/api/v1/support/tickets", headers={"Authorization": f"Bearer {jwt}"})
    assert listing.status_code == 200 and listing.get_json()["tickets"][0]["subject"] == "My ticket"
    assert client.delete("/api/sessions/current", headers={"Authorization": f"Bearer {jwt}"}).status_code == 204
    revoked = client.get("/api/v1/support/tickets", headers={"Authorization": f"Bearer {jwt}"})
    assert revoked.status_code == 401


def test_several_passkeys_and_wrong_ones(client, db, run_jobs, postmark):
    post_inbound(client, inbound_payload())
    phone, laptop, stranger = SoftAuthenticator(PORTAL), SoftAuthenticator(PORTAL), SoftAuthenticator(PORTAL)
    enrol(client, run_jobs, postmark, phone)
    enrol(client, run_jobs, postmark, laptop)
    assert len(db.session.scalars(select(Passkey)).all()) == 2
    assert sign_in(client, phone).status_code == 201 and sign_in(client, laptop).status_code == 201
    challenge = client.get("/api/sessions/webauthn/challenge").get_json()
    stranger.create({"rp": {"id": "support.raxx.app"}, "user": {"id": "AA"}, "challenge": "x"})
    refused = client.post("/api/sessions", json={"challenge_id": challenge["challenge_id"],
                                                 "credential": stranger.get(challenge["options"])})
    assert refused.status_code == 400 and refused.get_json()["error"] == "passkey_failed"
    phishing = SoftAuthenticator("https://evil.test")
    phishing.credentials = phone.credentials
    challenge = client.get("/api/sessions/webauthn/challenge").get_json()
    assert client.post("/api/sessions", json={"challenge_id": challenge["challenge_id"],
                                              "credential": phishing.get(challenge["options"])}).status_code == 400
    replay = client.get("/api/sessions/webauthn/challenge").get_json()
    credential = phone.get(replay["options"])
    answer = {"challenge_id": replay["challenge_id"], "credential": credential}
    assert client.post("/api/sessions", json=answer).status_code == 201
    assert client.post("/api/sessions", json=answer).status_code == 400


def test_tokens_refresh_near_expiry_but_not_past_twelve_hours(client, db, run_jobs, postmark):
    post_inbound(client, inbound_payload())
    device = SoftAuthenticator(PORTAL)
    _, session = enrol(client, run_jobs, postmark, device)
    headers = {"Authorization": f"Bearer {session['jwt']}"}
    assert "X-Session-Token" not in client.get("/api/v1/support/tickets", headers=headers).headers
    with time_machine.travel(utcnow() + timedelta(minutes=11), tick=False):
        fresh = client.get("/api/v1/support/tickets", headers=headers)
        assert fresh.status_code == 200 and fresh.headers["X-Session-Token"] != session["jwt"]
        renewed = {"Authorization": f"Bearer {fresh.headers['X-Session-Token']}"}
    with time_machine.travel(utcnow() + timedelta(minutes=20), tick=False):
        assert client.get("/api/v1/support/tickets", headers=headers).status_code == 401  # the old one expired
        assert client.get("/api/v1/support/tickets", headers=renewed).status_code == 200
    with time_machine.travel(utcnow() + timedelta(hours=12, minutes=1), tick=False):
        assert client.get("/api/v1/support/tickets", headers=renewed).status_code == 401


def test_expired_enrolment_links_are_refused(client, db, run_jobs, postmark):
    post_inbound(client, inbound_payload())
    token = enrol_link(client, run_jobs, postmark)
    with time_machine.travel(utcnow() + timedelta(hours=2), tick=False):
        assert client.post("/api/sessions/enrol/options", json={"token": token}).status_code == 400


def test_enrolment_takes_the_same_path_for_known_and_unknown_addresses(client, db, run_jobs, postmark, redis_url):
    """Nothing the request does depends on whether the address is a customer's: no lookup, no write,
    one queued job either way; the job decides, after the answer has left."""
    from redis import Redis
    from rq import Queue

    post_inbound(client, inbound_payload())
    run_jobs()
    postmark.reset()
    paths = {}
    for email in ("alice@example.com", "nobody@example.com"):
        before = Queue("default", connection=Redis.from_url(redis_url)).count
        statements = statements_during(
            db.engine, lambda email=email: client.post("/api/sessions/enrol", json={"email": email}))
        queued = Queue("default", connection=Redis.from_url(redis_url)).count - before
        paths[email] = (statements, queued)
    assert paths["alice@example.com"] == paths["nobody@example.com"]
    assert paths["alice@example.com"] == ([], 1)  # no statement at all, one job
    assert db.session.scalar(select(func.count()).select_from(CustomerEnrolment)) == 0  # nothing written yet
    run_jobs()
    assert [m["To"] for m in postmark.sent if m["Tag"] == "portal_enrol"] == ["alice@example.com"]


def test_one_address_gets_at_most_three_enrolment_mails_an_hour(client, db, run_jobs, postmark):
    post_inbound(client, inbound_payload())
    run_jobs()
    postmark.reset()
    for i in range(5):
        assert client.post("/api/sessions/enrol", json={"email": "alice@example.com"},
                           environ_base={"REMOTE_ADDR": f"192.0.2.{i + 1}"}).status_code == 202
    run_jobs()
    assert len([m for m in postmark.sent if m["Tag"] == "portal_enrol"]) == 3
    with time_machine.travel(utcnow() + timedelta(hours=1, minutes=1), tick=False):
        client.post("/api/sessions/enrol", json={"email": "alice@example.com"},
                    environ_base={"REMOTE_ADDR": "192.0.2.9"})
        run_jobs()
    assert len([m for m in postmark.sent if m["Tag"] == "portal_enrol"]) == 4
