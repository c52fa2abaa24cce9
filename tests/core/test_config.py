"""Configuration is read once from the environment and fails fast with one message per problem."""

import pytest

from echo.config import ConfigError, Settings, normalize_database_url


@pytest.mark.parametrize("raw, expected", [
    ("postgres://u:p@db.example.com:5432/d1", "postgresql+psycopg://u:p@db.example.com:5432/d1"),
    ("postgresql://u@localhost/echo", "postgresql+psycopg://u@localhost/echo"),
    ("postgresql+psycopg2://u@h/d", "postgresql+psycopg://u@h/d"),
    ("postgresql://postgres:@/echo?host=/tmp/pg-socket", "postgresql+psycopg://postgres:@/echo?host=/tmp/pg-socket"),
])
def test_database_url_forms_operators_meet(raw, expected):
    assert normalize_database_url(raw) == expected


def test_socket_url_really_connects(database_url):
    """The embedded server (or TEST_DATABASE_URL) URL is usable as given, sockets included."""
    from sqlalchemy import create_engine, text

    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
    engine.dispose()


def test_defaults_for_development():
    settings = Settings.from_env({})
    assert settings.env == "development" and settings.storage == "local" and settings.flag_support_portal_api
    assert settings.database_url is None and settings.redis_url is None


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({
            "DATABASE_URL": "mysql://x@y/z", "REDIS_URL": "http://nope", "ECHO_STORAGE": "ftp",
            "FLAG_SUPPORT_PORTAL_API": "maybe", "ECHO_SUPPORT_ADDRESS": "not-an-address",
            "POSTMARK_API_URL": "ftp://x", "ECHO_MAX_ATTACHMENT_BYTES": "-5",
        })
    message = str(caught.value)
    for name in ("DATABASE_URL", "REDIS_URL", "ECHO_STORAGE", "FLAG_SUPPORT_PORTAL_API", "ECHO_SUPPORT_ADDRESS",
                 "POSTMARK_API_URL", "ECHO_MAX_ATTACHMENT_BYTES"):
        assert name in message
    assert len(caught.value.problems) == 7


def test_passwords_never_reach_error_messages():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"REDIS_URL": "http://user:hunter2secret@host"})
    assert "hunter2secret" not in str(caught.value)


def test_production_refuses_insecure_settings():
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ECHO_ENV": "production", "ECHO_SECRET_KEY": "short"})
    problems = "\n".join(caught.value.problems)
    for name in ("ECHO_SECRET_KEY", "SESSION_KEY", "POSTMARK_SERVER_TOKEN", "ECHO_WEBHOOK_PASSWORD",
                 "ECHO_WEBHOOK_USER", "ECHO_SUPPORT_ADDRESS", "DATABASE_URL", "REDIS_URL"):
        assert name in problems


def test_production_with_everything_set_starts():
    settings = Settings.from_env({
        "ECHO_ENV": "production", "ECHO_SECRET_KEY": "s" * 32, "SESSION_KEY": "k" * 32,
        "POSTMARK_SERVER_TOKEN": "token", "ECHO_WEBHOOK_USER": "postmark", "ECHO_WEBHOOK_PASSWORD": "p" * 32,
        "ECHO_SUPPORT_ADDRESS": "Support@Raxx.app", "DATABASE_URL": "postgres://u:p@h/d", "REDIS_URL": "redis://h:6379/0",
        "ECHO_STORAGE": "s3", "S3_BUCKET": "raxx-attachments", "ECHO_CORS_ORIGINS": "https://a.test, https://b.test/",
        "ECHO_PORTAL_URL": "https://support.raxx.app/", "ECHO_CONSOLE_URL": "https://help.raxx.app",
    })
    assert settings.production and settings.support_address == "support@raxx.app"
    assert settings.cors_origins == ("https://a.test", "https://b.test")
    assert settings.portal_base_url == "https://support.raxx.app" and settings.console_base_url == "https://help.raxx.app"


def test_production_needs_the_portal_and_console_addresses():
    """Links in email and the passkeys' relying party come from these, never from a request's Host."""
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ECHO_ENV": "production"})
    for name in ("ECHO_PORTAL_URL", "ECHO_CONSOLE_URL"):
        [problem] = [p for p in caught.value.problems if p.startswith(name)]
        assert "required when ECHO_ENV=production" in problem and "Host" in problem
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"ECHO_ENV": "production", "ECHO_PORTAL_URL": "support.raxx.app"})
    assert [p for p in caught.value.problems if p.startswith("ECHO_PORTAL_URL")] == [
        "ECHO_PORTAL_URL must be a http/https URL (got 'support.raxx.app')"]  # one clear message, not two


def test_outside_production_links_fall_back_to_a_fixed_address():
    settings = Settings.from_env({})
    assert settings.console_base_url == settings.portal_base_url == "http://localhost:5000"
    assert Settings.from_env({"ECHO_CONSOLE_URL": "http://localhost:8000"}).portal_base_url == "http://localhost:8000"


def test_s3_needs_a_bucket():
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        Settings.from_env({"ECHO_STORAGE": "s3"})
