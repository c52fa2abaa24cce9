"""The `echo-desk` command line: serve, db, worker, inbound, agents."""

from __future__ import annotations

import errno
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from echo.config import DEV_CONSOLE_URL, ConfigError, Settings

if TYPE_CHECKING:
    from werkzeug.local import LocalProxy

DEMO_AGENT = "demo@echo.local"
SERVE_RECORD = "serve.json"  # in the instance folder while `serve` runs: where its console answers
# Method, path (no query string: it may hold one-time tokens), status, size, seconds. No client IP.
ACCESS_LOG_FORMAT = '%(t)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss'
PRIVATE_LOGGER = "echo.gunicorn_logging.PrivateLogger"  # the error log: networks, not client addresses
# As in the Procfile: gevent workers hold the console's idle live-event streams for a greenlet each
# (psycopg 3 and redis-py cooperate with gevent), instead of a process or thread each.
WEB_WORKER_CLASS = ("--worker-class", "gevent", "--worker-connections", "1000")


def _create_app() -> Flask:
    from echo import create_app

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


class EchoGroup(FlaskGroup):
    """`echo-desk`: Echo's commands are known before the app is built, so help starts no database.

    Building the app starts the embedded PostgreSQL and Redis when no URLs are configured; a
    command builds it only when it runs (`with_appcontext`), never to show help.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        # FlaskGroup builds the app here to add app.cli's commands; ours are on the group already,
        # and the few an extension adds (e.g. `limiter`) still run when named.
        self._load_plugin_commands()
        return sorted(click.Group.list_commands(self, ctx))


def main() -> None:
    group = EchoGroup(create_app=_create_app, add_default_commands=True, help="Echo help desk.")
    for command in COMMANDS:
        group.add_command(command)
    group(prog_name="echo-desk")


def register(app: Flask) -> None:
    for command in COMMANDS:
        if command.name not in app.cli.commands:
            app.cli.add_command(command)


def _app() -> Flask:
    """The Echo app, built now if no command built it yet (which starts any embedded servers)."""
    if current_app:
        return _current_app()
    return click.get_current_context().ensure_object(ScriptInfo).load_app()


def _current_app() -> Flask:
    """The app itself behind the `current_app` proxy (Flask annotates the proxy as a Flask)."""
    return cast("LocalProxy[Flask]", current_app)._get_current_object()


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--web-workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--start-timeout", default=120, show_default=True, type=click.IntRange(min=1),
              help="Seconds to wait for the web server to answer before giving up.")
def serve(host: str, port: int, web_workers: int, start_timeout: int) -> None:
    """Run the whole stack: database, Redis, migrations, web server and a worker."""
    _check_port_free(host, port)  # before the database starts: a taken port fails in a moment
    app = _app()
    with app.app_context():
        settings = _prepare_database()
    assert settings.database_url is not None and settings.redis_url is not None  # the app started both
    url = f"http://{_display_host(host)}:{port}"
    env = dict(os.environ, DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url,
               ECHO_INSTANCE_PATH=str(settings.instance_path))
    env.setdefault("ECHO_CONSOLE_URL", url)
    click.echo(f"Starting the web server on {host}:{port} and a worker…")
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    processes: dict[str, subprocess.Popen] = {}
    failure = None
    try:
        processes["web server (gunicorn)"] = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "echo.wsgi:app", "--bind", _bind_address(host, port),
             "--workers", str(web_workers), *WEB_WORKER_CLASS, "--access-logfile", "-",
             "--access-logformat", ACCESS_LOG_FORMAT, "--logger-class", PRIVATE_LOGGER],
            env=env,
        )
        processes["worker"] = subprocess.Popen([sys.executable, "-m", "echo.cli", "worker"], env=env)
        failure = _wait_until_answering(_probe_host(host), port, processes, start_timeout, stopping)
        if failure is None and not stopping.is_set():
            _record_serve(settings.instance_path, url)
            click.echo(_banner(settings, url))
            failure = _watch(processes, stopping)
    except KeyboardInterrupt:
        pass
    finally:
        _stop(processes)
        _forget_serve(settings.instance_path)
    if failure:
        raise click.ClickException(failure)
    click.echo("Echo stopped.")


def _prepare_database() -> Settings:
    """Check Redis answers, apply migrations and make sure the demo agent exists."""
    from redis import Redis, RedisError
    from sqlalchemy.exc import OperationalError

    from echo import migrate
    from echo.agents.service import ensure_agent
    from echo.extensions import db

    settings = current_app.config["ECHO"]
    try:
        # A connection of its own, closed at once: an embedded Redis stops at exit only when unused.
        with Redis.from_url(settings.redis_url) as connection:
            connection.ping()
    except RedisError as exc:
        raise click.ClickException(f"cannot reach Redis (REDIS_URL): {exc}") from None
    try:
        migrate.upgrade(settings.database_url)
    except OperationalError as exc:
        raise click.ClickException(f"cannot reach PostgreSQL (DATABASE_URL): {exc.orig}") from None
    ensure_agent(DEMO_AGENT, "Demo Agent", "superadmin")
    db.session.commit()
    db.engine.dispose()  # the web server and worker have their own connections
    return settings


def _display_host(host: str) -> str:
    if host in ("127.0.0.1", "0.0.0.0", "::", "::1"):
        return "localhost"  # passkeys need a name, not an address
    return f"[{host}]" if ":" in host else host


def _probe_host(host: str) -> str:
    """Where to knock to reach a server bound to `host` (a wildcard bind answers on loopback)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)


def _bind_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _check_port_free(host: str, port: int) -> None:
    """Fail with a clear message when nothing could listen on host:port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does: TIME_WAIT is free
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                problem = f"port {port} is in use on {host}; stop whatever holds it or pass --port"
            elif exc.errno == errno.EACCES:
                problem = f"this user may not listen on port {port}; pass --port with a port above 1023"
            else:
                problem = f"cannot listen on {host}:{port} ({exc.strerror or exc}); check --host"
            raise click.ClickException(problem) from None


def _answers(host: str, port: int) -> bool:
    """Whether the web server answers an HTTP request (a page that needs neither sign-in nor data)."""
    connection = http.client.HTTPConnection(host, port, timeout=2)
    try:
        connection.request("GET", "/tickets/login")
        return connection.getresponse().status < 500
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def _wait_until_answering(host: str, port: int, processes: dict[str, subprocess.Popen], timeout: int,
                          stopping: threading.Event) -> str | None:
    """Wait for the web server's first HTTP answer; return why it will never come, if so."""
    deadline = time.monotonic() + timeout
    while not stopping.is_set():
        for name, process in processes.items():
            if process.poll() is not None:
                hint = f" (if port {port} was taken meanwhile, pass --port)" if name.startswith("web") else ""
                return f"the {name} exited with code {process.returncode} while starting; its log is above{hint}"
        if _answers(host, port):
            return None
        if time.monotonic() > deadline:
            return f"the web server did not answer on {host}:{port} within {timeout} s (see its log above)"
        time.sleep(0.25)
    return None


def _watch(processes: dict[str, subprocess.Popen], stopping: threading.Event) -> str | None:
    """Block until asked to stop (Ctrl-C, SIGTERM) or a process dies; return what died, if anything."""
    while not stopping.wait(0.5):
        for name, process in processes.items():
            if process.poll() is not None:
                return f"the {name} stopped unexpectedly (exit code {process.returncode}); Echo stopped with it"
    return None


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    """Ask every process to finish its work and stop; kill them after 15 s, or at a second Ctrl-C."""
    for process in processes.values():
        if process.poll() is None:
            process.terminate()
    try:
        for process in processes.values():
            process.wait(timeout=15)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()


def _banner(settings: Settings, url: str) -> str:
    sample = Path(__file__).resolve().parent / "inbound" / "sample.json"
    return (
        f"\nEcho is running at {url}/tickets\n"
        f"  Sign in: open the URL and press \"Development sign-in\" (the demo agent {DEMO_AGENT}, superadmin).\n"
        f"  Real agents: echo-desk agents invite EMAIL --role ops  (prints a one-time passkey link).\n"
        f"  Data: {settings.instance_path}\n"
        f"  Send a sample email through the Postmark webhook:\n"
        f"    curl -u {settings.webhook_user}:{settings.webhook_password} -H 'Content-Type: application/json' "
        f"--data @{sample} {url}/tickets/inbound\n"
        f"  Stop with Ctrl-C.\n"
    )


def _record_serve(instance_path: Path, url: str) -> None:
    """Note where this `serve` answers, so `agents invite` in another shell links to it."""
    instance_path.mkdir(parents=True, exist_ok=True)
    (instance_path / SERVE_RECORD).write_text(json.dumps({"console_url": url, "pid": os.getpid()}))


def _forget_serve(instance_path: Path) -> None:
    record = instance_path / SERVE_RECORD
    if _serve_record(record).get("pid") == os.getpid():
        record.unlink(missing_ok=True)


def _serve_record(record: Path) -> dict:
    try:
        data = json.loads(record.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _console_url(settings: Settings) -> str:
    """The console's address: ECHO_CONSOLE_URL, else that of a `serve` running on this instance folder."""
    if settings.console_url:
        return settings.console_url
    record = _serve_record(settings.instance_path / SERVE_RECORD)
    if _running(record.get("pid")) and isinstance(record.get("console_url"), str):
        return record["console_url"]
    click.echo(f"No ECHO_CONSOLE_URL is set and no `echo-desk serve` is running on {settings.instance_path};"
               f" the link assumes {DEV_CONSOLE_URL}.", err=True)
    return DEV_CONSOLE_URL


def _running(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


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

    run(_current_app(), burst=burst)


@click.command("inbound")
@click.argument("eml", type=click.File("rb"))
@with_appcontext
def inbound(eml) -> None:
    """Replay a real RFC 822 message (.eml) through the inbound email path."""
    from echo.errors import EchoError
    from echo.extensions import db
    from echo.http import storable
    from echo.inbound.eml import message_to_postmark
    from echo.inbound.schemas import parse_inbound
    from echo.inbound.service import ingest_email

    settings = current_app.config["ECHO"]
    try:
        raw = eml.read()
        message = parse_inbound(storable(message_to_postmark(raw, settings.support_address)), raw=raw)
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
    from echo.privacy.service import delete_erased_bytes
    from echo.privacy.service import erase_customer as erase

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
    link = invitation_link(agent, _console_url(current_app.config["ECHO"]))
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


@agents.command("list")
@with_appcontext
def agents_list() -> None:
    """Every agent: email, role, active or not, last sign-in."""
    from echo.agents.service import team

    for agent, last in team():
        state = "active" if agent.active else "deactivated"
        click.echo(f"{agent.email}\t{agent.role}\t{state}\t{last.isoformat(timespec='minutes') if last else 'never'}")


@agents.command("role")
@click.argument("email")
@click.argument("role", type=click.Choice(["ops", "superadmin"]))
@with_appcontext
def agents_role(email: str, role: str) -> None:
    """Change an agent's role."""
    from echo.actors import SYSTEM
    from echo.agents.service import find_agent, set_role
    from echo.errors import EchoError
    from echo.extensions import db

    try:
        agent = set_role(find_agent(email), role, actor=SYSTEM)
    except EchoError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"{agent.email} is now {agent.role}.")


@agents.command("deactivate")
@click.argument("email")
@with_appcontext
def agents_deactivate(email: str) -> None:
    """Offboard an agent: no more sign-in; sessions, tokens and invitations end; open tickets unassigned."""
    from echo.actors import SYSTEM
    from echo.agents.service import deactivate, find_agent
    from echo.errors import EchoError
    from echo.extensions import db

    try:
        agent = find_agent(email)
        if not agent.active:
            click.echo(f"{agent.email} was already deactivated.")
            return
        ended = deactivate(agent, actor=SYSTEM)
    except EchoError as exc:
        raise click.ClickException(exc.message) from None
    db.session.commit()
    click.echo(f"{agent.email} is deactivated; {ended} session(s) and token(s) ended.")


@click.group("portal")
def portal() -> None:
    """Customer portal sessions."""


@portal.command("revoke-session")
@click.argument("session_id")
@click.option("--hashed", is_flag=True,
              help="SESSION_ID is the SHA-256 hex of the sid, as support_audit_log.session_id_hash records it.")
@with_appcontext
def portal_revoke_session(session_id: str, hashed: bool) -> None:
    """Refuse every portal token whose `sid` is SESSION_ID: Echo's own sessions and host-issued ones."""
    from echo.extensions import db
    from echo.portal.auth import revoke_session
    from echo.security import token_hash

    if hashed and not re.fullmatch(r"[0-9a-f]{64}", session_id.strip().lower()):
        raise click.BadParameter("a hashed session id is 64 hexadecimal characters", param_hint="SESSION_ID")
    until = revoke_session(session_id.strip().lower() if hashed else token_hash(session_id))
    db.session.commit()
    if until is None:
        click.echo("Revoked the Echo session; every token for it is refused from now on.")
    else:
        click.echo(f"Refusing every token for this host-issued session until {until:%Y-%m-%d %H:%M} UTC"
                   " (the 12-hour session maximum).")


COMMANDS = (serve, db_group, worker, inbound, agents, portal, erase_customer)

if __name__ == "__main__":
    main()
