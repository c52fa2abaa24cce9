"""Fixtures: real PostgreSQL and Redis (embedded unless URLs are given), a fresh app per need,
a local Postmark API stand-in, and a local S3-compatible server."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import psycopg
import pytest
from redis import Redis
from rq import SimpleWorker
from sqlalchemy.engine import make_url

from echo import create_app
from echo.config import normalize_database_url
from echo.extensions import db as _db
from echo.jobs import QUEUES, PromptUnsubscribe
from tests.fakes.postmark import FakePostmark

ROOT = Path(__file__).resolve().parent.parent


class BurstWorker(PromptUnsubscribe, SimpleWorker):
    """rq's in-process worker, as the tests run it, that stops at once when the queues are empty."""
WEBHOOK_AUTH = ("postmark-test", "webhook-test-password")
SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture(scope="session")
def services_instance() -> Path:
    """Where embedded servers keep their data between test runs (created on first use)."""
    path = Path(os.environ.get("ECHO_TEST_INSTANCE_PATH", ROOT / ".pytest-instance")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def database_url(services_instance):
    """A freshly created, fully migrated database for this test session; dropped afterwards."""
    from echo import embedded, migrate

    admin = os.environ.get("TEST_DATABASE_URL")
    admin = normalize_database_url(admin) if admin else embedded.start_postgres(services_instance, "postgres")
    name = f"echo_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_dsn = make_url(admin).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(admin).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_url(services_instance):
    """The Redis named by TEST_REDIS_URL or REDIS_URL, else an embedded one, stopped afterwards if we started it."""
    url = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    from echo import embedded

    yield embedded.start_redis(services_instance)
    embedded.stop_redis(services_instance)


@pytest.fixture(scope="session")
def fake_postmark():
    server = FakePostmark()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def postmark(fake_postmark):
    fake_postmark.reset()
    return fake_postmark


@pytest.fixture(scope="session")
def base_env(database_url, redis_url, fake_postmark, tmp_path_factory):
    return {
        "ECHO_ENV": "test",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "ECHO_SECRET_KEY": SECRET,
        "SESSION_KEY": "test-session-key-0123456789abcdef",
        "POSTMARK_SERVER_TOKEN": fake_postmark.token,
        "POSTMARK_API_URL": fake_postmark.url,
        "ECHO_WEBHOOK_USER": WEBHOOK_AUTH[0],
        "ECHO_WEBHOOK_PASSWORD": WEBHOOK_AUTH[1],
        "ECHO_SUPPORT_ADDRESS": "support@raxx.app",
        "ECHO_FROM_NAME": "Raxx Support",
        "ECHO_PORTAL_URL": "https://support.raxx.app",
        "ECHO_CONSOLE_URL": "https://help.raxx.app",
        "ECHO_STORAGE": "local",
        "ECHO_UNDO_SEND_SECONDS": "0",  # replies leave at once; tests of undo send set a hold
        "ECHO_INSTANCE_PATH": str(tmp_path_factory.mktemp("instance")),
    }


@pytest.fixture(scope="session")
def _session_app(base_env):
    return create_app(base_env)


@pytest.fixture
def make_app(base_env):
    """Build an app with some settings changed, e.g. make_app(ECHO_STORAGE="s3", ...)."""
    apps = []

    def build(**overrides):
        app = create_app({**base_env, **overrides})
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            _db.engine.dispose()


@pytest.fixture
def app(_session_app):
    with _session_app.app_context():
        yield _session_app


@pytest.fixture(autouse=True)
def _clean_state(database_url, redis_url, postmark):
    """Every test starts with empty tables and empty queues."""
    yield
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )]
        conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        conn.execute("ALTER SEQUENCE ticket_number_seq RESTART")
    Redis.from_url(redis_url).flushdb()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def db(app):
    return _db


@pytest.fixture
def run_jobs(app):
    """Work every queued job in this process, as a worker would, until the queues are empty."""
    from echo.jobs import worker_connection
    from echo.mail.tasks import wait_for_sends

    def run() -> None:
        with app.app_context():  # the worker's own context and session, as in a worker process
            connection = worker_connection()
        with app.app_context():  # the worker's own context and session, as in a worker process
            BurstWorker(list(QUEUES), connection=connection).work(burst=True)
        connection.close()
        assert wait_for_sends(60)  # as a worker does before it stops
        _db.session.expire_all()

    return run


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto's standalone server), reached by real boto3."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_app(make_app, s3_server):
    """An app whose attachment storage is the local S3 server, with a fresh bucket."""
    import boto3

    bucket = f"echo-test-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket=bucket)
    app = make_app(ECHO_STORAGE="s3", S3_BUCKET=bucket, S3_ENDPOINT_URL=s3_server)
    with app.app_context():
        yield app


@pytest.fixture
def agent_token(app):
    """Create an agent with a personal access token; returns (agent, headers)."""
    from echo.agents.service import create_token
    from tests.factories import AgentFactory

    def make(role: str = "ops", **kwargs):
        agent = AgentFactory(role=role, **kwargs)
        _, raw = create_token(agent.email)
        _db.session.commit()
        return agent, {"Authorization": f"Bearer {raw}"}

    return make


@pytest.fixture
def call_task(app):
    """Call a job function directly, in its own app context and session as a worker would."""

    from echo.mail.tasks import wait_for_sends

    def call(func, *args, **kwargs):
        with app.app_context():
            result = func(*args, **kwargs)
        assert wait_for_sends(60)  # the emails a delivery job handed to its sender threads are recorded
        _db.session.expire_all()
        return result

    return call
