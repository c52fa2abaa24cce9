"""A throwaway benchmark database: created, migrated with Echo's migrations, dropped (used by
bench/search_seed.py and bench/portal_seed.py)."""

from __future__ import annotations

import uuid


def admin_dsn(url: str) -> str:
    """A libpq DSN (postgresql://) from any of the URL spellings Echo accepts."""
    from sqlalchemy.engine import make_url

    if url.startswith(("postgres://", "postgresql+")):
        url = "postgresql://" + url.split("://", 1)[1]
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Database:
    """`<PREFIX><random>` on the server of `admin_url`."""

    PREFIX = "echo_bench_"

    def __init__(self, admin_url: str) -> None:
        from sqlalchemy.engine import make_url

        self.admin = admin_dsn(admin_url)
        self.name = f"{self.PREFIX}{uuid.uuid4().hex[:10]}"
        self.dsn = make_url(self.admin).set(database=self.name).render_as_string(hide_password=False)
        self.created = False

    @property
    def sqlalchemy_url(self) -> str:
        from echo.config import normalize_database_url

        return normalize_database_url(self.dsn)

    def create(self) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.created = True

    def migrate(self) -> None:
        from echo import migrate

        migrate.upgrade(self.sqlalchemy_url)

    def drop(self) -> None:
        if not self.created:
            return
        import psycopg

        with psycopg.connect(self.admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.created = False
