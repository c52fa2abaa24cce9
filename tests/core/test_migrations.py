"""Migrations build the schema the models describe, and are safe to re-run and to reverse."""

import uuid

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from echo import migrate
from echo.extensions import db


def test_models_and_migrations_agree(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    engine.dispose()
    assert diff == []


def test_fresh_database_upgrade_rerun_downgrade_upgrade(database_url):
    url = make_url(database_url)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"echo_migrations_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    target = url.set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(target)
        migrate.upgrade(target)  # a second release phase is a no-op
        migrate.downgrade(target, "base")
        migrate.upgrade(target)
        dsn = make_url(target).set(drivername="postgresql").render_as_string(hide_password=False)
        with psycopg.connect(dsn) as conn:
            tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        assert {"customers", "tickets", "threads", "attachments", "agents", "audit_log", "support_audit_log",
                "outbox", "message_ids"} <= tables
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_db_upgrade_command(app):
    result = CliRunner().invoke(app.cli, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
