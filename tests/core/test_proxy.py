"""Behind a proxy: ECHO_TRUSTED_PROXY_HOPS says how many X-Forwarded-For entries to believe, so
per-IP limits and audit networks are per client, and a client's own X-Forwarded-For is never believed."""

import shlex

import pytest
from flask import request
from gunicorn.config import Config
from sqlalchemy import select

from echo.audit.models import SupportAuditLog
from echo.config import ConfigError, Settings
from tests.conftest import ROOT
from tests.portal.conftest import bearer

ROUTER = "10.20.30.40"  # the one trusted proxy's address, as the app sees its peer


@pytest.fixture
def proxied(make_app):
    """Echo behind one trusted proxy, with a probe showing what it believes about the request."""
    app = make_app(ECHO_TRUSTED_PROXY_HOPS="1")
    app.add_url_rule("/probe", "probe", lambda: {"addr": request.remote_addr, "scheme": request.scheme,
                                                 "host": request.host})
    return app


def enrol(client, forwarded_for=None, peer=ROUTER):
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return client.post("/api/sessions/enrol", json={"email": "x@example.com"}, headers=headers,
                       environ_base={"REMOTE_ADDR": peer}).status_code


@pytest.mark.parametrize("value", ["-1", "two", "1.5"])
def test_hops_must_be_a_non_negative_whole_number(value):
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ECHO_TRUSTED_PROXY_HOPS": value})
    assert caught.value.problems == [f"ECHO_TRUSTED_PROXY_HOPS must be a non-negative whole number (got {value!r})"]
    assert Settings.from_env({}).trusted_proxy_hops == 0


def test_without_trusted_proxies_a_spoofed_forwarded_for_is_ignored(client, db):
    client.get("/api/v1/support/tickets", headers={**bearer("alice@example.com"), "X-Forwarded-For": "203.0.113.9"},
               environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert db.session.scalar(select(SupportAuditLog.ip_prefix)) == "198.51.100.0/24"
    # A new spoofed address per request earns no fresh allowance: the limit counts the real peer.
    codes = [enrol(client, f"192.0.2.{i}", peer="198.51.100.7") for i in range(6)]
    assert codes == [202] * 5 + [429]


def test_one_trusted_proxy_the_client_is_the_address_it_appended(proxied, db):
    client = proxied.test_client()
    seen = client.get("/probe", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.9", "X-Forwarded-Proto": "https",
                                         "X-Forwarded-Host": "evil.example", "Host": "desk.raxx.app"},
                      environ_base={"REMOTE_ADDR": ROUTER}).get_json()
    assert seen == {"addr": "203.0.113.9", "scheme": "https", "host": "desk.raxx.app"}
    client.get("/api/v1/support/tickets", headers={**bearer("alice@example.com"),
                                                   "X-Forwarded-For": "6.6.6.6, 203.0.113.9"},
               environ_base={"REMOTE_ADDR": ROUTER})
    assert db.session.scalar(select(SupportAuditLog.ip_prefix)) == "203.0.113.0/24"


def test_behind_the_proxy_sign_up_limits_are_per_client(proxied):
    client = proxied.test_client()
    assert [enrol(client, "203.0.113.9") for _ in range(6)] == [202] * 5 + [429]
    assert enrol(client, "203.0.113.10") == 202  # another client behind the same router
    assert enrol(client, "1.1.1.1, 203.0.113.9") == 429  # a spoofed earlier entry changes nothing


def test_gunicorn_trusts_no_forwarded_headers_itself():
    """Only ProxyFix (ECHO_TRUSTED_PROXY_HOPS) decides: with `*`, gunicorn would take the scheme (and
    SCRIPT_NAME) from any client's headers."""
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    argv = shlex.split(web.removeprefix("web:").replace("$PORT", "8000").replace("${WEB_CONCURRENCY:-5}", "5"))
    config = Config()
    for name, value in vars(config.parser().parse_args(argv[2:])).items():
        if name in config.settings and value is not None:
            config.set(name, value)
    assert config.forwarded_allow_ips == [] and config.forwarded_allow_networks() == []
