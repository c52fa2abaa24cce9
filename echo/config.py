"""Typed configuration, read from the environment once and validated at start-up."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

DEV_SECRET = "dev-insecure-secret-do-not-use-in-production"
DEV_WEBHOOK_USER = "postmark"
DEV_WEBHOOK_PASSWORD = "dev-webhook-password"
POSTMARK_DEFAULT_API = "https://api.postmarkapp.com/"
# Where links and passkeys point outside production when ECHO_CONSOLE_URL / ECHO_PORTAL_URL are
# unset (`serve` sets ECHO_CONSOLE_URL to its own address): fixed, never a request's Host.
DEV_CONSOLE_URL = "http://localhost:5000"
MAX_UNDO_SECONDS = 60


class ConfigError(Exception):
    """Raised when the environment holds missing or malformed settings; lists every problem."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Echo cannot start:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    database_url: str | None = None
    redis_url: str | None = None
    secret_key: str = DEV_SECRET
    session_key: str = DEV_SECRET
    postmark_server_token: str = "POSTMARK_API_TEST"
    postmark_api_url: str = POSTMARK_DEFAULT_API
    webhook_user: str = DEV_WEBHOOK_USER
    webhook_password: str = DEV_WEBHOOK_PASSWORD
    support_address: str = "support@example.com"
    from_name: str = "Support"
    portal_url: str | None = None
    console_url: str | None = None
    storage: str = "local"
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    cors_origins: tuple[str, ...] = ()
    flag_support_portal_api: bool = True
    instance_path: Path = field(default_factory=lambda: Path("instance").resolve())
    max_attachment_bytes: int = 25 * 1024 * 1024
    max_inbound_bytes: int = 50 * 1024 * 1024
    spam_threshold: float = 5.0
    flood_limit: int = 10
    auto_close_days: int = 14
    cf_access_team_domain: str | None = None
    cf_access_aud: str | None = None
    cf_access_certs_url: str | None = None
    trusted_proxy_hops: int = 0
    undo_send_seconds: int = 5

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def console_base_url(self) -> str:
        """The console's address for links and its passkeys' relying party (configured in production)."""
        return self.console_url or DEV_CONSOLE_URL

    @property
    def portal_base_url(self) -> str:
        """The portal's address for links and its passkeys' relying party (configured in production)."""
        return self.portal_url or self.console_base_url

    @property
    def support_domain(self) -> str:
        return self.support_address.rpartition("@")[2]

    @property
    def support_local_part(self) -> str:
        return self.support_address.rpartition("@")[0]

    def with_overrides(self, **changes) -> Settings:
        return replace(self, **changes)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from environment variables, collecting every problem before failing."""
        env = os.environ if environ is None else environ
        reader = _Reader(env)
        mode = reader.choice("ECHO_ENV", ("development", "production", "test"), "development")
        production = mode == "production"
        settings = cls(
            env=mode,
            database_url=reader.database_url("DATABASE_URL"),
            redis_url=reader.url("REDIS_URL", ("redis", "rediss", "unix")),
            secret_key=reader.secret("ECHO_SECRET_KEY", production),
            session_key=reader.secret("SESSION_KEY", production),
            postmark_server_token=reader.text("POSTMARK_SERVER_TOKEN", None if production else "POSTMARK_API_TEST"),
            postmark_api_url=reader.url("POSTMARK_API_URL", ("http", "https")) or POSTMARK_DEFAULT_API,
            webhook_user=reader.text("ECHO_WEBHOOK_USER", None if production else DEV_WEBHOOK_USER),
            webhook_password=reader.secret("ECHO_WEBHOOK_PASSWORD", production, DEV_WEBHOOK_PASSWORD),
            support_address=reader.email("ECHO_SUPPORT_ADDRESS", None if production else "support@example.com"),
            from_name=reader.text("ECHO_FROM_NAME", "Support"),
            portal_url=reader.url("ECHO_PORTAL_URL", ("http", "https")),
            console_url=reader.url("ECHO_CONSOLE_URL", ("http", "https")),
            storage=reader.choice("ECHO_STORAGE", ("local", "s3"), "local"),
            s3_bucket=env.get("S3_BUCKET") or None,
            s3_endpoint_url=reader.url("S3_ENDPOINT_URL", ("http", "https")),
            cors_origins=tuple(o.strip().rstrip("/") for o in env.get("ECHO_CORS_ORIGINS", "").split(",") if o.strip()),
            flag_support_portal_api=reader.flag("FLAG_SUPPORT_PORTAL_API", True),
            instance_path=Path(env.get("ECHO_INSTANCE_PATH") or "instance").resolve(),
            max_attachment_bytes=reader.integer("ECHO_MAX_ATTACHMENT_BYTES", 25 * 1024 * 1024),
            max_inbound_bytes=reader.integer("ECHO_MAX_INBOUND_BYTES", 50 * 1024 * 1024),
            spam_threshold=reader.number("ECHO_SPAM_THRESHOLD", 5.0),
            flood_limit=reader.integer("ECHO_FLOOD_LIMIT", 10),
            auto_close_days=reader.integer("ECHO_AUTO_CLOSE_DAYS", 14),
            cf_access_team_domain=env.get("ECHO_CF_ACCESS_TEAM_DOMAIN") or None,
            cf_access_aud=env.get("ECHO_CF_ACCESS_AUD") or None,
            cf_access_certs_url=reader.url("ECHO_CF_ACCESS_CERTS_URL", ("http", "https")),
            # How many proxies in front may set X-Forwarded-For/-Proto (1 on Heroku); 0 trusts none.
            trusted_proxy_hops=reader.integer("ECHO_TRUSTED_PROXY_HOPS", 0),
            # How long a reply sent from the console waits in the outbox, so that it can be taken back.
            undo_send_seconds=reader.integer("ECHO_UNDO_SEND_SECONDS", 5),
        )
        if settings.undo_send_seconds > MAX_UNDO_SECONDS:
            reader.problems.append(f"ECHO_UNDO_SEND_SECONDS must be at most {MAX_UNDO_SECONDS}")
        if settings.cf_access_team_domain:
            if not settings.cf_access_aud:
                reader.problems.append("ECHO_CF_ACCESS_AUD is required with ECHO_CF_ACCESS_TEAM_DOMAIN")
            settings = replace(settings, cf_access_certs_url=settings.cf_access_certs_url or (
                f"https://{settings.cf_access_team_domain}/cdn-cgi/access/certs"))
        if settings.storage == "s3" and not settings.s3_bucket:
            reader.problems.append("S3_BUCKET is required when ECHO_STORAGE=s3")
        if production:
            for name in ("DATABASE_URL", "REDIS_URL"):
                if not env.get(name):
                    reader.problems.append(
                        f"{name} is required when ECHO_ENV=production (embedded servers are for development)")
            for name, what in (("ECHO_PORTAL_URL", "the portal"), ("ECHO_CONSOLE_URL", "the console")):
                if not reader.has(name):
                    reader.problems.append(
                        f"{name} is required when ECHO_ENV=production: links in email and {what}'s passkeys"
                        f" use this address, never a request's Host header (e.g. https://support.example.com)")
        if reader.problems:
            raise ConfigError(reader.problems)
        return settings


SETTING_NAMES = tuple(f.name for f in fields(Settings))


def normalize_database_url(raw: str) -> str:
    """Return a SQLAlchemy URL for psycopg 3 from any form operators meet (Heroku's postgres://, sockets)."""
    url = raw.strip()
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix):]
            break
    else:
        raise ValueError("must start with postgres:// or postgresql://")
    try:
        make_url(url)
    except ArgumentError as exc:
        raise ValueError(str(exc)) from None
    return url


class _Reader:
    """Read typed values from a mapping, recording one clear message per bad value."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.problems: list[str] = []

    def _get(self, name: str) -> str | None:
        value = self.env.get(name)
        return value.strip() if value is not None and value.strip() != "" else None

    def has(self, name: str) -> bool:
        return self._get(name) is not None

    def text(self, name: str, default: str | None) -> str:
        value = self._get(name)
        if value is None:
            if default is None:
                self.problems.append(f"{name} is required")
                return ""
            return default
        return value

    def secret(self, name: str, production: bool, dev_default: str = DEV_SECRET) -> str:
        value = self._get(name)
        if value is None:
            if production:
                self.problems.append(f"{name} is required when ECHO_ENV=production")
            return dev_default
        if production and (len(value) < 32 or value == dev_default):
            self.problems.append(f"{name} must be a random value of at least 32 characters in production")
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = (self._get(name) or default).lower()
        if value not in allowed:
            self.problems.append(f"{name} must be one of {', '.join(allowed)} (got {value!r})")
            return default
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self._get(name)
        if value is None:
            return default
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        self.problems.append(f"{name} must be 0 or 1 (got {value!r})")
        return default

    def integer(self, name: str, default: int) -> int:
        value = self._get(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = -1
        if number < 0:
            self.problems.append(f"{name} must be a non-negative whole number (got {value!r})")
            return default
        return number

    def number(self, name: str, default: float) -> float:
        value = self._get(name)
        if value is None:
            return default
        try:
            return float(value)
        except ValueError:
            self.problems.append(f"{name} must be a number (got {value!r})")
            return default

    def email(self, name: str, default: str | None) -> str:
        value = self.text(name, default)
        local, _, domain = value.rpartition("@")
        if value and (not local or "." not in domain or " " in value):
            self.problems.append(f"{name} must be an email address like support@example.com (got {value!r})")
        return value.lower()

    def url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        value = self._get(name)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in schemes or (parts.scheme != "unix" and not parts.netloc):
            self.problems.append(f"{name} must be a {'/'.join(schemes)} URL (got {_redact(value)!r})")
            return None
        return value.rstrip("/") if parts.scheme in ("http", "https") and name != "POSTMARK_API_URL" else value

    def database_url(self, name: str) -> str | None:
        value = self._get(name)
        if value is None:
            return None
        try:
            return normalize_database_url(value)
        except ValueError as exc:
            self.problems.append(f"{name} {exc} (got {_redact(value)!r})")
            return None


def _redact(url: str) -> str:
    """Hide a password in a URL before it reaches an error message or a log."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@", 1)
    return url
