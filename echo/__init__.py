"""Echo: a native help desk. `create_app()` builds it; `init_app()` mounts it in a host app."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from echo.config import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _blueprints():
    """Every blueprint Echo serves, in one visible list."""
    from echo.console.auth_views import bp as console_auth
    from echo.console.views import bp as console
    from echo.inbound.views import bp as inbound
    from echo.investigate.views import bp as investigate
    from echo.portal.api import bp as portal_api
    from echo.portal.sessions import bp as portal_sessions
    from echo.outbound.views import bp as outbound
    from echo.tickets.api import bp as agent_api

    # The webhooks and fixed paths come before the console, whose /tickets/<number> catches the rest.
    return [inbound, outbound, investigate, agent_api, portal_api, portal_sessions, console_auth, console]


def load_settings(config: Settings | Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment, optionally overridden by a mapping of variable names."""
    if isinstance(config, Settings):
        return config
    environ = dict(os.environ)
    if config:
        environ.update(config)
    return Settings.from_env(environ)


def limiter_storage_uri(redis_url: str) -> str:
    """The `limits` library spells a Redis socket `redis+unix://`."""
    return "redis+unix://" + redis_url[len("unix://"):] if redis_url.startswith("unix://") else redis_url


def create_app(config: Settings | Mapping[str, str] | None = None) -> Flask:
    """Build the standalone Echo application."""
    settings = load_settings(config)
    app = Flask("echo", template_folder=str(TEMPLATES), instance_path=str(settings.instance_path))
    init_app(app, settings)
    return app


def init_app(app: Flask, config: Settings | Mapping[str, str] | None = None) -> Flask:
    """Configure Echo's database, queues, storage and routes on `app` (standalone or a host console)."""
    from flask_wtf.csrf import CSRFProtect

    from echo import cli, errors, jobs, models, security  # noqa: F401  (models: every table on the metadata)
    from echo.attachments import storage
    from echo.extensions import db, limiter
    from echo.portal import api as portal_api

    settings = load_settings(config)
    if settings.database_url is None or settings.redis_url is None:
        from echo import embedded

        settings = embedded.ensure_services(settings)
    app.config.update(
        ECHO=settings,
        SESSION_COOKIE_NAME="echo_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        WTF_CSRF_CHECK_DEFAULT=False,  # checked by the console's blueprints; APIs use bearer tokens
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=settings.production,
        RATELIMIT_STORAGE_URI=limiter_storage_uri(settings.redis_url),
        RATELIMIT_HEADERS_ENABLED=True,
        SECRET_KEY=app.config.get("SECRET_KEY") or settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 10, "max_overflow": 10, "pool_recycle": 1800},
        MAX_CONTENT_LENGTH=settings.max_inbound_bytes,
    )
    logging.getLogger("echo").setLevel(logging.INFO)
    db.init_app(app)
    jobs.init_app(app)
    storage.init_app(app)
    errors.register_error_handlers(app)
    CSRFProtect(app)
    security.init_app(app)
    limiter.init_app(app)
    portal_api.init_app(app)
    for blueprint in _blueprints():
        app.register_blueprint(blueprint)
    cli.register(app)
    return app
