"""Echo: a native help desk. `create_app()` builds it; `init_app()` mounts it in a host app."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import cache

from flask import Blueprint, Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from echo.config import Settings
from echo.hosting import DEFAULT_ROLES, AgentLoader, HostAdmin, Mount

__all__ = ["HostAdmin", "create_app", "init_app"]

# Echo's templates (console pages and fragments, emails) live in the package and reach the app
# through this route-less blueprint: they render the same in create_app's app, in a host app and
# in the worker. The console's blueprint serves echo/static at /tickets/static.
templates = Blueprint("echo_templates", __name__, template_folder="templates")

# What Echo answers in JSON in a host app, even for a path no route matches (elsewhere `/api/` is
# the host's); standalone, echo.errors.wants_json decides.
HOSTED_JSON_PATHS = ("/api/v1/support", "/api/v1/agent", "/api/sessions", "/tickets/inbound", "/tickets/webhooks",
                     "/tickets/from-snapshot")


@cache
def _blueprints() -> tuple[Blueprint, ...]:
    """Every blueprint Echo serves, in one visible list, each carrying Echo's error handlers.

    Handlers sit on the blueprints so that a host app's own pages keep the host's. Blueprints are
    module singletons that take handlers only before their first registration: hence once per process.
    """
    from echo import errors
    from echo.console.admin_views import bp as console_admin
    from echo.console.auth_views import bp as console_auth
    from echo.console.views import bp as console
    from echo.inbound.views import bp as inbound
    from echo.investigate.views import bp as investigate
    from echo.outbound.views import bp as outbound
    from echo.portal.api import bp as portal_api
    from echo.portal.sessions import bp as portal_sessions
    from echo.tickets.api import bp as agent_api

    # The webhooks and fixed paths come before the console, whose /tickets/<number> catches the rest.
    routed = (inbound, outbound, investigate, agent_api, portal_api, portal_sessions, console_auth, console_admin,
              console)
    for blueprint in routed:
        errors.register_error_handlers(blueprint)
    return (templates, *routed)


def _blueprint_names() -> frozenset[str]:
    return frozenset(blueprint.name for blueprint in _blueprints())


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
    """Build the standalone Echo application: Echo owns the whole app, its session cookie and WSGI stack."""
    from echo.extensions import csrf

    settings = _with_services(load_settings(config))
    assert settings.redis_url is not None  # set by _with_services
    # No app-level templates or static folder: they come with Echo's blueprints, as in a host app.
    app = Flask("echo", template_folder=None, static_folder=None, instance_path=str(settings.instance_path))
    app.config.update(
        SESSION_COOKIE_NAME="echo_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        SECRET_KEY=settings.secret_key,
        WTF_CSRF_CHECK_DEFAULT=False,  # the console's blueprints check their forms; APIs use bearer tokens
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=settings.production,
        RATELIMIT_STORAGE_URI=limiter_storage_uri(settings.redis_url),
        MAX_CONTENT_LENGTH=settings.max_inbound_bytes,
    )
    csrf.init_app(app)
    _install(app, settings, Mount(hosted=False, blueprints=_blueprint_names()))
    if settings.trusted_proxy_hops:
        # Only the addresses the trusted proxies appended are believed; Host is never taken from a
        # proxy (links use ECHO_CONSOLE_URL / ECHO_PORTAL_URL).
        hops = settings.trusted_proxy_hops
        # Wrapping wsgi_app is how Flask installs middleware; mypy refuses any assignment to a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)
    return app


def init_app(app: Flask, config: Settings | Mapping[str, str] | None = None, *,
             agent_loader: AgentLoader | None = None, roles: Mapping[str, str] | None = None,
             login_url: str | None = None) -> Flask:
    """Mount Echo on a host "console" Flask app, next to the host's own pages.

    Echo's rules (security headers, NUL refusal, CSRF, rate limits, JSON errors) apply to Echo's
    blueprints only; Echo uses the host's session and secret key and leaves the host's cookie,
    error pages and WSGI stack alone (behind a proxy, wrap the host's own wsgi_app in ProxyFix;
    ECHO_TRUSTED_PROXY_HOPS is create_app's).

    `agent_loader()` returns the host's signed-in admin as a HostAdmin or (email, display name,
    host role), or None; that admin is the acting agent (found or created by email in `agents`),
    with the Echo role `roles[host role]` (default: the host already speaks `ops`/`superadmin`;
    unmapped roles are refused). With a loader, Echo's own sign-in is not consulted, and Echo's
    sign-in page sends people to `login_url`. A host that uses Flask-WTF's CSRFProtect must set it
    up before calling this, so that Echo can exempt its own blueprints (they check their own forms).
    """
    settings = _with_services(load_settings(config))
    assert settings.redis_url is not None  # set by _with_services
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = settings.secret_key
    # What csrf.protect() reads, at Flask-WTF's defaults, should the host not use Flask-WTF itself
    # (the host's values win if it does).
    for name, default in (("WTF_CSRF_METHODS", {"POST", "PUT", "PATCH", "DELETE"}),
                          ("WTF_CSRF_FIELD_NAME", "csrf_token"), ("WTF_CSRF_HEADERS", ["X-CSRFToken", "X-CSRF-Token"]),
                          ("WTF_CSRF_SSL_STRICT", True)):
        app.config.setdefault(name, default)
    app.config.setdefault("RATELIMIT_STORAGE_URI", limiter_storage_uri(settings.redis_url))
    host_csrf = app.extensions.get("csrf")
    if host_csrf is not None:
        for blueprint in _blueprints():
            host_csrf.exempt(blueprint)
    mount = Mount(hosted=True, blueprints=_blueprint_names(), agent_loader=agent_loader,
                  roles=dict(DEFAULT_ROLES if roles is None else roles), login_url=login_url)
    _install(app, settings, mount)
    _scope_csrf_token(app)
    return app


def _with_services(settings: Settings) -> Settings:
    """Start the embedded PostgreSQL/Redis for whichever URL is unset (development)."""
    if settings.database_url is None or settings.redis_url is None:
        from echo import embedded

        settings = embedded.ensure_services(settings)
    return settings


def _install(app: Flask, settings: Settings, mount: Mount) -> None:
    """Echo's database, queues, storage, request rules and routes, on its own app or a host's."""
    from echo import cli, errors, jobs, models, security  # noqa: F401  (models: every table on the metadata)
    from echo.attachments import storage
    from echo.extensions import db, limiter
    from echo.portal import api as portal_api

    app.config.update(
        ECHO=settings,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        # hide_parameters: a database error's message (logged, or shown in a traceback) never
        # carries the values bound to the statement, which may be message bodies or addresses.
        SQLALCHEMY_ENGINE_OPTIONS={"pool_size": 10, "max_overflow": 10, "pool_recycle": 1800, "hide_parameters": True},
    )
    app.extensions["echo"] = mount
    logging.getLogger("echo").setLevel(logging.INFO)
    db.init_app(app)
    jobs.init_app(app)
    storage.init_app(app)
    errors.answer_unrouted(app, _hosted_json_path if mount.hosted else errors.wants_json,
                           _hosted_page_path if mount.hosted else (lambda path: True))
    security.init_app(app)
    limiter.init_app(app)
    portal_api.init_app(app)
    for blueprint in _blueprints():
        app.register_blueprint(blueprint)
    cli.register(app)


def _hosted_page_path(path: str) -> bool:
    return path == "/tickets" or path.startswith("/tickets/")


def _hosted_json_path(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in HOSTED_JSON_PATHS)


def _scope_csrf_token(app: Flask) -> None:
    """`csrf_token()` for Echo's templates, without adding anything to the host's."""
    from flask_wtf.csrf import generate_csrf

    from echo.hosting import is_echo_request

    @app.context_processor
    def _csrf_token():
        return {"csrf_token": generate_csrf} if is_echo_request() else {}
