"""Small leaks and crashes an attacker could reach (issue 11.8): url_for's own arguments in a query
string, HTTPS in production, database errors that quote their parameters, and gunicorn's log of a
malformed request naming the client."""

from __future__ import annotations

import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from flask import g
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.console.conftest import CSRF
from tests.factories import AgentFactory

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "ECHO_ENV": "production", "ECHO_SECRET_KEY": "s" * 40, "SESSION_KEY": "k" * 40, "POSTMARK_SERVER_TOKEN": "t",
    "ECHO_WEBHOOK_USER": "postmark-test", "ECHO_WEBHOOK_PASSWORD": "w" * 40,
}


def signed_in(client, base_url: str):
    AgentFactory(email="demo@echo.local", display_name="Demo Agent", role="superadmin")
    g.pop("csrf_token", None)
    token = CSRF.search(client.get("/tickets/login", base_url=base_url).get_data(as_text=True)).group(1)
    assert client.post("/tickets/login/dev", data={"csrf_token": token}, base_url=base_url).status_code == 302
    return client


@pytest.mark.parametrize("query", ["_method=POST", "_external=1&_scheme=javascript", "_anchor=x&status=open",
                                   "_scheme=https", "page=2&_method=DELETE"])
def test_url_fors_own_arguments_in_the_inbox_query_are_ignored(client, db, query):
    page = signed_in(client, "http://evil.example").get(f"/tickets?{query}", base_url="http://evil.example")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "evil.example" not in html and "javascript:" not in html and "_method" not in html
    assert re.search(r'href="/tickets\?[^"]*status=open', html)  # the status tabs still link to the inbox


def test_hsts_in_production_only(make_app, client):
    assert "Strict-Transport-Security" not in client.get("/api/v1/support/health").headers
    app = make_app(**PRODUCTION)
    with app.app_context():
        production = app.test_client()
        for path in ("/api/v1/support/health", "/tickets/login"):
            hsts = production.get(path, base_url="https://help.raxx.app").headers["Strict-Transport-Security"]
            assert hsts.startswith("max-age=31536000")


def test_database_errors_never_quote_their_parameters(app, db, caplog):
    with pytest.raises(DBAPIError) as caught:
        db.session.execute(text("SELECT CAST(:body AS text), 1 / 0"), {"body": "SECRET-BODY alice@example.com"})
    db.session.rollback()
    assert "SECRET-BODY" not in str(caught.value) and "hide_parameters" in str(caught.value)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def send_raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(data)
        return connection.recv(200)


def test_gunicorn_from_the_procfile_logs_no_client_address_or_token_for_a_malformed_request(base_env, tmp_path):
    web = next(line for line in (ROOT / "Procfile").read_text().splitlines() if line.startswith("web:"))
    port = free_port()
    env = {**os.environ, **base_env, "PORT": str(port), "WEB_CONCURRENCY": "1",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    log = tmp_path / "web.log"
    with log.open("w") as output:
        server = subprocess.Popen(shlex.split(web.removeprefix("web:").replace("$PORT", str(port))
                                              .replace("${WEB_CONCURRENCY:-5}", "1")),
                                  cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if send_raw(port, b"GET /api/v1/support/health HTTP/1.0\r\n\r\n").split(b" ")[1] == b"200":
                    break
            except OSError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        for malformed in (b"GET /tickets/enrol?token=SECRET-TOKEN HTTP/1.1 junk\r\n\r\n",
                          b"PROXY TCP4 198.51.100.23 10.0.0.1 4000 443\r\nGET / HTTP/1.1\r\n\r\n",
                          b"GET /tickets HTTP/1.1\r\nBad Header: x\r\n\r\n"):
            assert send_raw(port, malformed).startswith(b"HTTP/1.1 400")
    finally:
        server.terminate()
        server.wait(timeout=30)
    logged = log.read_text()
    assert logged.count("Invalid request from ip=127.0.0.0/24") == 3, logged
    for secret in ("ip=127.0.0.1", "198.51.100.23", "SECRET-TOKEN"):
        assert secret not in logged
