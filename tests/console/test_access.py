"""Console access: sign-in required, CSRF on every change, roles, sessions, security headers."""

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from echo.agents.models import AgentSession
from echo.console.auth_views import invitation_link
from echo.tickets.models import Thread, Ticket
from tests.console.conftest import csrf_token
from tests.factories import AgentFactory
from tests.mailbuilder import inbound_payload, post_inbound

PRODUCTION = {
    "ECHO_ENV": "production", "ECHO_SECRET_KEY": "s" * 40, "SESSION_KEY": "k" * 40, "POSTMARK_SERVER_TOKEN": "t",
    "ECHO_WEBHOOK_USER": "postmark-test", "ECHO_WEBHOOK_PASSWORD": "w" * 40,
}


@pytest.mark.parametrize("path", ["/tickets", "/tickets/TKT-0001", "/tickets/account",
                                  "/tickets/customers/00000000-0000-0000-0000-000000000000",
                                  "/tickets/attachments/00000000-0000-0000-0000-000000000000"])
def test_pages_need_a_signed_in_agent(client, path):
    response = client.get(path)
    assert response.status_code in (302, 401)
    if response.status_code == 302:
        assert response.headers["Location"].startswith("/tickets/login")


def test_htmx_requests_are_told_to_redirect(client):
    response = client.get("/tickets", headers={"HX-Request": "true"})
    assert response.status_code == 401 and response.headers["HX-Redirect"].startswith("/tickets/login")


def test_mutations_without_csrf_token_are_refused_and_change_nothing(signed_in, db):
    client, token, _ = signed_in()
    post_inbound(client, inbound_payload())
    for path, data in [("/tickets/TKT-0001/note", {"body": "x"}), ("/tickets/TKT-0001/status", {"status": "closed"}),
                       ("/tickets/TKT-0001/reply", {"body": "x"})]:
        assert client.post(path, data=data).status_code == 400
        assert client.post(path, data={**data, "csrf_token": "forged"}).status_code == 400
        assert client.post(path, data=data, headers={"X-CSRFToken": "forged", "HX-Request": "true"}).status_code == 400
    assert db.session.scalar(select(func.count()).select_from(Thread)) == 1
    assert db.session.scalar(select(Ticket.status)) == "open"
    ok = client.post("/tickets/TKT-0001/note", data={"body": "real", "csrf_token": token})
    assert ok.status_code == 302


def test_ops_agents_can_merge_and_undo_it(signed_in, db):
    client, token, _ = signed_in(role="ops")
    post_inbound(client, inbound_payload(subject="one"))
    post_inbound(client, inbound_payload(subject="two"))
    response = client.post("/tickets/TKT-0001/merge", data={"into": "TKT-0002", "csrf_token": token},
                           headers={"HX-Request": "true"})
    assert response.status_code == 200 and "Merged TKT-0001 into TKT-0002." in response.get_data(as_text=True)
    assert "Undo merge" in response.get_data(as_text=True)
    undone = client.post("/tickets/TKT-0001/unmerge", data={"csrf_token": token}, headers={"HX-Request": "true"})
    assert undone.status_code == 200 and "Merge undone" in undone.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Ticket).where(Ticket.merged_into_id.isnot(None))) == 0


def test_deactivated_agent_and_revoked_session_are_signed_out(signed_in, db):
    client, _, agent = signed_in()
    assert client.get("/tickets").status_code == 200
    agent.active = False
    db.session.commit()
    assert client.get("/tickets").status_code == 302
    agent.active = True
    db.session.commit()
    client.post("/tickets/login/dev", data={"csrf_token": csrf_token(client)})
    assert client.get("/tickets").status_code == 200
    db.session.execute(AgentSession.__table__.update().values(revoked_at=func.now()))
    db.session.commit()
    assert client.get("/tickets").status_code == 302


def test_sign_out_ends_the_session(signed_in):
    client, token, _ = signed_in()
    assert client.post("/tickets/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/tickets").status_code == 302


def test_production_refuses_the_development_sign_in(make_app, db):
    app = make_app(**PRODUCTION)
    with app.app_context():
        AgentFactory(email="demo@echo.local")
        client = app.test_client()
        page = client.get("/tickets/login").get_data(as_text=True)
        assert "dev-sign-in" not in page
        response = client.post("/tickets/login/dev", data={"csrf_token": csrf_token(client)})
        assert response.status_code == 404
        assert client.get("/tickets").status_code == 302


def test_security_headers(signed_in):
    client, _, _ = signed_in()
    headers = client.get("/tickets").headers
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "'unsafe-inline'" not in csp and "frame-ancestors 'none'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    cookie = client.get_cookie("echo_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_invitation_links_work_once(client, db, app):
    agent = AgentFactory()
    link = invitation_link(agent)
    db.session.commit()
    path = "/" + link.split("://", 1)[1].split("/", 1)[1]
    assert path.startswith("/tickets/enrol?token=")
    assert client.get(path).status_code == 200
    assert client.get("/tickets/enrol?token=guessed-token").status_code == 404
    from echo.agents.service import find_invitation, use_invitation

    invitation = find_invitation(path.split("token=", 1)[1])
    use_invitation(invitation)
    db.session.commit()
    assert client.get(path).status_code == 404


def test_cloudflare_access_header_signs_in_the_matching_agent(make_app, httpserver, db):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    httpserver.expect_request("/cdn-cgi/access/certs").respond_with_json(
        {"keys": [{**jwk, "kid": "k1", "alg": "RS256"}]})
    app = make_app(ECHO_CF_ACCESS_TEAM_DOMAIN="raxx.cloudflareaccess.com", ECHO_CF_ACCESS_AUD="aud-123",
                   ECHO_CF_ACCESS_CERTS_URL=httpserver.url_for("/cdn-cgi/access/certs"))
    with app.app_context():
        AgentFactory(email="ops@raxx.app")

        def assertion(**claims):
            body = {"email": "ops@raxx.app", "aud": "aud-123", "iss": "https://raxx.cloudflareaccess.com",
                    "exp": int(time.time()) + 300, **claims}
            return jwt.encode(body, key, algorithm="RS256", headers={"kid": "k1"})

        client = app.test_client()
        assert client.get("/tickets", headers={"Cf-Access-Jwt-Assertion": assertion()}).status_code == 200
        for bad in (assertion(aud="other"), assertion(email="stranger@raxx.app"), assertion(exp=int(time.time()) - 10),
                    "not-a-jwt", assertion(iss="https://evil.cloudflareaccess.com")):
            assert client.get("/tickets", headers={"Cf-Access-Jwt-Assertion": bad}).status_code == 302


@pytest.mark.parametrize("how", ["note", "search", "agent_api"])
def test_nul_characters_in_forms_and_queries_are_a_400_not_a_500(signed_in, agent_token, how):
    client, token, _ = signed_in()
    post_inbound(client, inbound_payload())
    if how == "note":
        response = client.post("/tickets/TKT-0001/note", data={"body": "a\x00b", "csrf_token": token})
    elif how == "search":
        response = client.get("/tickets", query_string={"q": "a\x00b"})
    else:
        _, headers = agent_token()
        response = client.get("/api/v1/agent/tickets", query_string={"tag": "a\x00b"}, headers=headers)
        assert response.get_json()["error"] == "bad_request"
    assert response.status_code == 400
