"""Browser fixtures: a live Echo server on a free local port, driven by headless Debian Chromium via Playwright."""

from __future__ import annotations

import base64
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.serving import WSGIRequestHandler, make_server

from echo import create_app
from echo.extensions import db as _db
from tests.browser.support import CHROMIUM, CHROMIUM_ARGS, DEMO_AGENT, HERE, INBOX


def _missing_browser() -> str | None:
    """Why browser tests cannot run here, or None when they can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config, items):
    """Skip every test in this directory, with the reason, when there is no browser to drive."""
    reason = _missing_browser()
    if reason is None:
        return
    marker = pytest.mark.skip(reason=f"browser tests skipped: {reason}")
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(marker)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # errors are still logged
        pass


def _not_ready(environ, start_response):
    start_response("503 Service Unavailable", [("Content-Type", "text/plain")])
    return [b"starting"]


@dataclass(frozen=True)
class LiveServer:
    app: Flask
    url: str


@pytest.fixture(scope="session")
def live_server(base_env):
    """Echo served for real by werkzeug on 127.0.0.1 in a background thread; ECHO_CONSOLE_URL is its own address."""
    server = make_server("127.0.0.1", 0, _not_ready, threaded=True, request_handler=_QuietHandler)
    url = f"http://localhost:{server.server_port}"  # a WebAuthn RP id must be a domain, never an IP
    app = create_app({**base_env, "ECHO_CONSOLE_URL": url})
    server.app = app  # the port had to be known before the app's settings could name it
    thread = threading.Thread(target=server.serve_forever, name="echo-live-server", daemon=True)
    thread.start()
    yield LiveServer(app=app, url=url)
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()
    with app.app_context():
        _db.engine.dispose()


@pytest.fixture
def app(live_server):
    """Here `app` (and so `client`, `db`, `run_jobs`, `agent_token`) is the live server's own app."""
    with live_server.app.app_context():
        yield live_server.app


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def viewport() -> dict:
    """The window size; parametrize `viewport` to change it (below 600 px wide the context is a touch phone)."""
    return {"width": 1280, "height": 800}


@pytest.fixture
def context(browser, live_server, viewport):
    """A fresh browser profile (no cookies, no storage) per test, with relative URLs on the live server."""
    phone = viewport["width"] < 600
    ctx = browser.new_context(base_url=live_server.url, viewport=viewport, is_mobile=phone, has_touch=phone)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def js_errors() -> list[str]:
    """Uncaught JavaScript errors seen by `page`."""
    return []


@pytest.fixture
def page(context, js_errors):
    page = context.new_page()
    page.on("pageerror", lambda error: js_errors.append(str(error)))
    yield page
    page.close()


class VirtualAuthenticator:
    """Chromium's CDP virtual authenticator: a platform passkey that always verifies the user."""

    def __init__(self, page) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable")
        self.id = self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": "internal", "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True,
        }})["authenticatorId"]

    def credentials(self) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.id})["credentials"]

    @staticmethod
    def credential_id(credential: dict) -> bytes:
        return base64.b64decode(credential["credentialId"])


@pytest.fixture
def authenticator(page) -> VirtualAuthenticator:
    return VirtualAuthenticator(page)


@pytest.fixture
def demo_agent(db):
    """The agent the development sign-in button signs in as (a superadmin)."""
    from echo.agents.service import ensure_agent

    agent = ensure_agent(DEMO_AGENT, "Demo Agent", "superadmin")
    db.session.commit()
    return agent


@pytest.fixture
def signed_in(page, demo_agent):
    """`page`, signed in through the development sign-in button and showing the inbox."""
    page.goto("/tickets/login")
    page.click("#dev-sign-in")
    page.wait_for_url(INBOX)
    return page
