"""Echo mounted in a host console app (`echo.init_app(host_app)`): the host's pages, session and
errors stay the host's; Echo's console renders for the host's signed-in admin; Echo's APIs answer JSON."""

import re

import pytest
from flask import Flask, redirect, render_template, request, session
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select

from echo import HostAdmin, init_app
from echo.agents.models import Agent
from echo.agents.service import create_token
from echo.extensions import db
from echo.mail import emails
from echo.mail.models import OutboxMessage
from tests.mailbuilder import inbound_payload, post_inbound

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
HOST_USERS = {  # the host's own admins table, in miniature
    "ada@host.test": ("Ada Admin", "admin"),
    "olu@host.test": ("Olu Owner", "owner"),
    "mo@host.test": ("Mo Member", "member"),
}


def build_host(base_env, tmp_path, *, csrf=False, loader=True) -> Flask:
    """A small host console: its own template, pages, session cookie, sign-in and 404 page."""
    (tmp_path / "home.html").write_text("<h1>Host home</h1><p>{{ who or 'nobody' }}</p>")
    host = Flask("host_console", template_folder=str(tmp_path))
    host.config.update(SECRET_KEY="host-secret-0123456789abcdef0123", SESSION_COOKIE_NAME="host_session",
                       RATELIMIT_DEFAULT="2/minute")  # as if the host had a limiter of its own
    if csrf:
        CSRFProtect(host)

    @host.get("/")
    def home():
        return render_template("home.html", who=session.get("user"))

    @host.post("/login")
    def login():
        session["user"] = request.form["email"]
        return redirect("/")

    @host.get("/search")
    def search():
        return {"q": request.args.get("q")}

    @host.errorhandler(404)
    def not_found(exc):
        return "<h1>Host: no such page</h1>", 404

    def signed_in_admin():
        email = session.get("user")
        if email is None:
            return None
        name, role = HOST_USERS[email]
        return HostAdmin(email, name, role)

    init_app(host, base_env, agent_loader=signed_in_admin if loader else None,
             roles={"admin": "ops", "owner": "superadmin"}, login_url="/login")
    return host


@pytest.fixture
def host(base_env, tmp_path):
    app = build_host(base_env, tmp_path)
    yield app
    with app.app_context():
        db.engine.dispose()


def sign_in(client, email):
    assert client.post("/login", data={"email": email}).status_code == 302


def test_host_pages_keep_the_hosts_rules(host):
    client = host.test_client()
    for _ in range(5):  # Echo's limiter ignores the host's routes and the host's RATELIMIT_DEFAULT
        page = client.get("/")
        assert page.status_code == 200 and "Host home" in page.get_data(as_text=True)
    for name in ("Content-Security-Policy", "X-Frame-Options", "X-RateLimit-Limit"):
        assert name not in page.headers
    signed = client.post("/login", data={"email": "ada@host.test"})  # a host form: no Echo CSRF
    assert signed.status_code == 302 and signed.headers["Set-Cookie"].startswith("host_session=")
    assert host.config["SESSION_COOKIE_NAME"] == "host_session"
    missing = client.get("/no-such-page")
    assert missing.status_code == 404 and missing.get_data(as_text=True) == "<h1>Host: no such page</h1>"
    under_api = client.get("/api/host-things")  # /api/ in general is the host's
    assert under_api.status_code == 404 and "Host: no such page" in under_api.get_data(as_text=True)
    nul = client.get("/search", query_string={"q": "a\x00b"})
    assert nul.status_code == 200 and nul.get_json() == {"q": "a\x00b"}


def test_console_renders_for_the_hosts_signed_in_admin(host, postmark):
    client = host.test_client()
    anonymous = client.get("/tickets")
    assert anonymous.status_code == 302 and anonymous.headers["Location"].startswith("/tickets/login")
    assert client.get("/tickets/login").headers["Location"] == "/login"  # sign-in is the host's
    assert post_inbound(client, inbound_payload(subject="Export is broken")).status_code == 200

    sign_in(client, "ada@host.test")
    inbox = client.get("/tickets")
    body = inbox.get_data(as_text=True)
    assert inbox.status_code == 200 and "Export is broken" in body
    assert "default-src 'self'" in inbox.headers["Content-Security-Policy"]
    assert inbox.headers["X-Frame-Options"] == "DENY"
    assert client.get("/tickets/static/console.css").status_code == 200
    ticket = client.get("/tickets/TKT-0001")
    assert ticket.status_code == 200 and "Export is broken" in ticket.get_data(as_text=True)
    assert "echo_session" not in str(ticket.headers)

    token = CSRF.search(body).group(1)
    assert client.post("/tickets/TKT-0001/note", data={"body": "forged"}).status_code == 400
    assert client.post("/tickets/TKT-0001/note", data={"body": "Looking", "csrf_token": token}).status_code == 302

    with host.app_context():
        agent = db.session.scalar(select(Agent).where(Agent.email == "ada@host.test"))
        assert (agent.display_name, agent.role, agent.active) == ("Ada Admin", "ops", True)
        outbox = db.session.scalar(select(OutboxMessage).where(OutboxMessage.kind == "acknowledgement"))
        mail = emails.render(outbox)  # email templates come with Echo's package in a host app too
        assert "TKT-0001" in mail.subject and "TKT-0001" in mail.text_body


def test_host_roles_map_to_echo_roles_and_the_rest_are_refused(host):
    client = host.test_client()
    sign_in(client, "olu@host.test")
    assert client.get("/tickets").status_code == 200
    sign_in(client, "mo@host.test")
    refused = client.get("/tickets")
    assert refused.status_code == 403 and "may not use the help desk" in refused.get_data(as_text=True)
    assert refused.mimetype == "text/html"
    with host.app_context():
        roles = dict(db.session.execute(select(Agent.email, Agent.role)).all())
    assert roles == {"olu@host.test": "superadmin"}


def test_an_agent_deactivated_in_echo_stays_refused(host):
    client = host.test_client()
    sign_in(client, "ada@host.test")
    assert client.get("/tickets").status_code == 200
    with host.app_context():
        db.session.scalar(select(Agent).where(Agent.email == "ada@host.test")).active = False
        db.session.commit()
    refused = client.get("/tickets")
    assert refused.status_code == 403 and "switched off" in refused.get_data(as_text=True)
    with host.app_context():
        assert db.session.scalar(select(Agent.active).where(Agent.email == "ada@host.test")) is False


def test_echo_apis_answer_json_errors_in_the_host(host):
    client = host.test_client()
    for method, path, status in [("GET", "/api/v1/agent/tickets", 401), ("GET", "/api/v1/support/tickets", 401),
                                 ("GET", "/api/v1/support/no-such-thing", 404),
                                 ("DELETE", "/api/v1/support/health", 405)]:
        response = client.open(path, method=method)
        assert response.status_code == status and response.is_json, path
        assert set(response.get_json()) >= {"error", "message"}
    with host.app_context():
        db.session.add(Agent(email="bot@host.test", display_name="Bot", role="ops"))
        db.session.commit()
        _, raw = create_token("bot@host.test")
        db.session.commit()
    nul = client.get("/api/v1/agent/tickets", query_string={"tag": "a\x00b"},
                     headers={"Authorization": f"Bearer {raw}"})
    assert nul.status_code == 400 and nul.get_json()["error"] == "bad_request"
    assert client.get("/api/v1/support/health").get_json() == {"status": "ok"}


def test_a_host_with_its_own_csrf_protection_keeps_it_and_echos_webhooks_still_work(base_env, tmp_path):
    host = build_host(base_env, tmp_path, csrf=True)
    client = host.test_client()
    assert client.post("/login", data={"email": "ada@host.test"}).status_code == 400  # the host's own check
    assert post_inbound(client, inbound_payload()).status_code == 200  # Postmark sends no CSRF token
    with host.app_context():
        db.engine.dispose()


def test_without_a_loader_echo_signs_agents_in_on_the_hosts_session(base_env, tmp_path):
    host = build_host(base_env, tmp_path, loader=False)
    client = host.test_client()
    with host.app_context():
        db.session.add(Agent(email="demo@echo.local", display_name="Demo Agent", role="superadmin"))
        db.session.commit()
    login = client.get("/tickets/login")
    assert login.status_code == 200  # Echo's own sign-in page
    signed = client.post("/tickets/login/dev", data={"csrf_token": CSRF.search(login.get_data(as_text=True)).group(1)})
    assert signed.status_code == 302 and signed.headers["Set-Cookie"].startswith("host_session=")
    assert client.get("/tickets").status_code == 200
    with host.app_context():
        db.engine.dispose()


def test_a_role_map_onto_no_echo_role_is_refused_at_start_up(base_env):
    with pytest.raises(ValueError, match="admin→root"):
        init_app(Flask("host_console"), base_env, agent_loader=lambda: None, roles={"admin": "root"})
