"""The `echo-desk` command line: serve, db, worker, inbound, agents."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from echo.config import ConfigError

DEMO_AGENT = "demo@echo.local"
# Method, path (no query string: it may hold one-time tokens), status, size, seconds. No client IP.
ACCESS_LOG_FORMAT = '%(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'


def _create_app() -> Flask:
    from echo import create_app

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def main() -> None:
    FlaskGroup(create_app=_create_app, add_default_commands=True, help="Echo help desk.")(prog_name="echo-desk")


def register(app: Flask) -> None:
    for command in (serve, db_group, worker, inbound, agents, erase_customer):
        if command.name not in app.cli.commands:
            app.cli.add_command(command)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
@with_appcontext
def serve(host: str, port: int, web_workers: int) -> None:
    """Run the whole stack: database, Redis, migrations, web server and a worker."""
    from echo import migrate
    from echo.agents.service import ensure_agent
    from echo.extensions import db

    settings = current_app.config["ECHO"]
    migrate.upgrade(settings.database_url)
    ensure_agent(DEMO_AGENT, "Demo Agent", "superadmin")
    db.session.commit()

    url = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"  # passkeys need a name
    env = dict(os.environ, DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url,
               ECHO_INSTANCE_PATH=str(settings.instance_path))
    env.setdefault("ECHO_CONSOLE_URL", url)
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "echo.wsgi:app", "--bind", f"{host}:{port}",
         "--workers", str(web_workers), "--access-logfile", "-", "--access-logformat", ACCESS_LOG_FORMAT], env=env,
    )
    work = subprocess.Popen([sys.executable, "-m", "echo.cli", "worker"], env=env)
    sample = Path(__file__).resolve().parent / "inbound" / "sample.json"
    click.echo(
        f"\nEcho is running at {url}/tickets\n"
        f"  Sign in: open the URL and press \"Development sign-in\" (the demo agent {DEMO_AGENT}, superadmin).\n"
        f"  Real agents: echo-desk agents invite EMAIL --role ops  (prints a one-time passkey link).\n"
        f"  Data: {settings.instance_path}\n"
        f"  Send a sample email through the Postmark webhook:\n"
        f"    curl -u {settings.webhook_user}:{settings.webhook_password} -H 'Content-Type: application/json' "
        f"--data @{sample} {url}/tickets/inbound\n"
        f"  Stop with Ctrl-C.\n"
    )
    stop = {"now": False}

    def _stop(*_):
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop["now"] and web.poll() is None and work.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for process in (web, work):
            if process.poll() is None:
                process.terminate()
        for process in (web, work):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        click.echo("Echo stopped.")


@click.group("db")
def db_group() -> None:
    """Database schema commands."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def db_upgrade(revision: str) -> None:
    """Apply migrations (safe to run again)."""
    from echo import migrate

    migrate.upgrade(current_app.config["ECHO"].database_url, revision)
    click.echo("Database is up to date.")


@db_group.command("downgrade")
@click.argument("revision")
@with_appcontext
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION."""
    from echo import migrate

    migrate.downgrade(current_app.config["ECHO"].database_url, revision)


@click.command("worker")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@with_appcontext
def worker(burst: bool) -> None:
    """Run background jobs (outbound mail, retries, maintenance)."""
    from workers.worker import run

    run(current_app._get_current_object(), burst=burst)


@click.command("inbound")
@click.argument("eml", type=click.File("rb"))
@with_appcontext
def inbound(eml) -> None:
    """Replay a real RFC 822 message (.eml) through the inbound email path."""
    from echo.errors import EchoError
    from echo.extensions import db
    from echo.http import without_nul
    from echo.inbound.eml import message_to_postmark
    from echo.inbound.schemas import parse_inbound
    from echo.inbound.service import ingest_email

    settings = current_app.config["ECHO"]
    try:
        message = parse_inbound(without_nul(message_to_postmark(eml.read(), settings.support_address)))
        result = ingest_email(message)
        db.session.commit()
    except EchoError as exc:
        db.session.rollback()
        raise click.ClickException(f"{exc.code}: {exc.message}") from None
    click.echo(f"{result.outcome}: {result.ticket_number} (ticket {result.ticket_id})"
               + (f" via {result.matched_via}" if result.matched_via else "")
               + (" [quarantined]" if result.quarantined else "") + (" [auto-reply]" if result.auto_reply else ""))


@click.command("erase-customer")
@click.argument("email")
@with_appcontext
def erase_customer(email: str) -> None:
    """Erase a customer's personal data (GDPR request) and print a receipt; safe to repeat."""
    from echo.actors import SYSTEM
    from echo.extensions import db
    from echo.privacy.service import delete_erased_bytes, erase_customer as erase

    receipt = erase(email, actor=SYSTEM)
    db.session.commit()
    delete_erased_bytes(receipt)
    for line in receipt.lines():
        click.echo(line)


@click.group("agents")
def agents() -> None:
    """Manage agents."""


@agents.command("invite")
@click.argument("email")
@click.option("--role", type=click.Choice(["ops", "superadmin"]), default="ops", show_default=True)
@click.option("--name", default=None, help="Display name (defaults to the part before @).")
@with_appcontext
def agents_invite(email: str, role: str, name: str | None) -> None:
    """Create (or reactivate) an agent and print a one-time link where they register a passkey."""
    from echo.agents.service import ensure_agent
    from echo.console.auth_views import invitation_link
    from echo.extensions import db

    agent = ensure_agent(email, name or email.split("@")[0], role)
    link = invitation_link(agent)
    db.session.commit()
    click.echo(f"Agent {agent.email} ({agent.role}) is ready. Send them this one-time sign-up link (valid 3 days):")
    click.echo(link)


@agents.command("token")
@click.argument("email")
@click.option("--name", default="", help="What the token is for, e.g. 'status console'.")
@with_appcontext
def agents_token(email: str, name: str) -> None:
    """Create a personal access token for an agent (shown once; only its hash is kept)."""
    from echo.agents.service import create_token
    from echo.errors import EchoError
    from echo.extensions import db

    try:
        _, raw = create_token(email, name)
    except EchoError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(raw)
    click.echo("Store it now: Echo keeps only its hash and cannot show it again.", err=True)


@agents.command("revoke-tokens")
@click.argument("email")
@with_appcontext
def agents_revoke_tokens(email: str) -> None:
    """Revoke every token of an agent."""
    from echo.agents.service import revoke_tokens
    from echo.errors import EchoError
    from echo.extensions import db

    try:
        count = revoke_tokens(email)
    except EchoError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"Revoked {count} token(s).")


if __name__ == "__main__":
    main()
