"""No Host header can choose where Echo's links point or which site its passkeys belong to (issue 11.2).

Links in email and the WebAuthn relying party come from ECHO_PORTAL_URL / ECHO_CONSOLE_URL;
unset (development, tests) they fall back to a fixed address, never to the request's."""

import pytest
from flask import g

from echo.console.auth_views import invitation_link
from echo.extensions import db
from echo.jobs import QUEUES, worker_connection
from tests.conftest import BurstWorker
from tests.console.conftest import CSRF
from tests.factories import AgentFactory
from tests.fakes.authenticator import SoftAuthenticator
from tests.mailbuilder import inbound_payload, post_inbound

EVIL = "http://evil.example"


@pytest.fixture(params=["configured", "unset"])
def site(request, make_app):
    """An app with both URLs configured, or with neither; yields (app, portal URL, console URL) it must use."""
    if request.param == "configured":
        app, portal, console = make_app(), "https://support.raxx.app", "https://help.raxx.app"
    else:
        app = make_app(ECHO_PORTAL_URL="", ECHO_CONSOLE_URL="")
        portal = console = "http://localhost:5000"
    with app.app_context():
        yield app, portal, console


def work_jobs():
    BurstWorker(list(QUEUES), connection=worker_connection()).work(burst=True)
    db.session.expire_all()


def test_a_forged_host_cannot_redirect_the_enrolment_link(site, postmark):
    app, portal, _ = site
    client = app.test_client()
    post_inbound(client, inbound_payload())
    work_jobs()
    postmark.reset()
    response = client.post("/api/sessions/enrol", json={"email": "alice@example.com"}, base_url=EVIL,
                           headers={"X-Forwarded-Host": "evil.example"})
    assert response.status_code == 202
    work_jobs()
    [mail] = [m for m in postmark.sent if m["Tag"] == "portal_enrol"]
    assert "evil.example" not in mail["TextBody"] + mail["HtmlBody"]
    assert f"{portal}/enrol?token=" in mail["TextBody"]


def test_a_forged_host_cannot_choose_the_portals_relying_party(site, postmark):
    app, portal, _ = site
    client = app.test_client()
    post_inbound(client, inbound_payload())
    client.post("/api/sessions/enrol", json={"email": "alice@example.com"})
    work_jobs()
    token = next(m for m in postmark.sent if m["Tag"] == "portal_enrol")["TextBody"].split("token=", 1)[1].split()[0]
    host = portal.split("://", 1)[1].split(":")[0]
    challenge = client.get("/api/sessions/webauthn/challenge", base_url=EVIL).get_json()
    assert challenge["options"]["rpId"] == host
    options = client.post("/api/sessions/enrol/options", json={"token": token}, base_url=EVIL).get_json()
    assert options["rp"]["id"] == host
    # A passkey made for the forged site (a phishing page on evil.example) is refused.
    phished = SoftAuthenticator(EVIL).create({**options, "rp": {"id": "evil.example"}})
    refused = client.post("/api/sessions/enrol/verify", json={"token": token, "credential": phished}, base_url=EVIL)
    assert refused.status_code == 400 and refused.get_json()["error"] == "passkey_failed"
    # The real site's passkey, answering the same options, works.
    options = client.post("/api/sessions/enrol/options", json={"token": token}).get_json()
    good = SoftAuthenticator(portal).create(options)
    assert client.post("/api/sessions/enrol/verify", json={"token": token, "credential": good}).status_code == 201


def test_a_forged_host_cannot_choose_the_consoles_relying_party_or_links(site):
    app, _, console = site
    client = app.test_client()
    host = console.split("://", 1)[1].split(":")[0]
    g.pop("csrf_token", None)  # as tests.console.conftest.csrf_token does, at the forged host
    token = CSRF.search(client.get("/tickets/login", base_url=EVIL).get_data(as_text=True)).group(1)
    options = client.post("/tickets/login/options", headers={"X-CSRFToken": token}, base_url=EVIL)
    assert options.status_code == 200 and options.get_json()["rpId"] == host
    agent = AgentFactory(email="kim@raxx.app")
    with app.test_request_context("/tickets/login", base_url=EVIL):
        link = invitation_link(agent)
    assert link.startswith(f"{console}/tickets/enrol?token=")
    invitation = link.split("token=", 1)[1]
    enrol = client.post("/tickets/enrol/options", json={"token": invitation}, headers={"X-CSRFToken": token},
                        base_url=EVIL)
    assert enrol.status_code == 200 and enrol.get_json()["rp"]["id"] == host
