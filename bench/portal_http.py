"""The HTTP-level run of bench/portal.py: Echo under gunicorn (as the Procfile starts it) and a
keep-alive load client (wrk with a generated Lua script, or Python threads + http.client).

Every process started here is recorded and its whole process group is ended on exit.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from procs import children, cpu_seconds, free_port  # noqa: E402


def log(msg: str) -> None:
    print(f"[portal-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Processes:
    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, timeout: float = 20.0) -> None:
        """SIGTERM the process group (gunicorn finishes in-flight requests), then SIGKILL what is left."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)   # workers a dying master left behind
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.procs)):
            self.stop(proc, timeout=10.0)


PROCS = Processes()
atexit.register(PROCS.stop_all)


class Gunicorn:
    """`gunicorn echo.wsgi:app --workers N --forwarded-allow-ips '*'` on a free localhost port
    (the Procfile's command, minus `--access-logfile -`: the access log is off)."""

    def __init__(self, env: dict, workers: int, logdir: Path) -> None:
        self.port, self.workers = free_port(), workers
        self.log_path = logdir / "portal-gunicorn.log"
        binary = Path(sys.executable).with_name("gunicorn")
        base = [str(binary)] if binary.exists() else [sys.executable, "-m", "gunicorn"]
        self.cmd = base + ["echo.wsgi:app", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                           "--forwarded-allow-ips", "*"]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        log(f"starting gunicorn: {' '.join(self.cmd)}")
        self.log_file = open(self.log_path, "wb")
        self.proc = PROCS.start(self.cmd, env=self.env, cwd=str(ROOT), stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not answer within 90 s:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/api/v1/support/health")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        # The first answer comes from the first worker that finished importing Echo: wait until the
        # server's own process tree goes quiet (all workers loaded), whatever else the machine does.
        last = None
        for _ in range(120):
            pids = [self.proc.pid] + children(self.proc.pid)
            cpu = cpu_seconds(pids)
            if last is not None and len(pids) > self.workers and cpu - last < 0.02:
                break
            last = cpu
            time.sleep(0.25)
        log(f"gunicorn answers on port {self.port} ({len(children(self.proc.pid))} workers)")

    def pids(self) -> list[int]:
        return [self.proc.pid] + children(self.proc.pid) if self.proc else []

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def errors(self) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        at = text.find("Traceback")
        return text[at:at + 3000] if at >= 0 else ""

    def stop(self) -> None:
        if self.proc is not None:
            PROCS.stop(self.proc)
            self.proc = None
            self.log_file.close()


# ----------------------------------------------------------------------------------------------
# Load: wrk (preferred) or Python threads
# ----------------------------------------------------------------------------------------------

LUA = r"""
-- generated by bench/portal_http.py: cycle through "path<TAB>token" lines, count statuses.
local threads = {}
local count = 0
function setup(thread)
  thread:set("tid", count)
  count = count + 1
  table.insert(threads, thread)
end

local lines, n, step = {}, 0, 1
function init(args)
  for line in io.lines(args[1]) do
    local tab = line:find("\t", 1, true)
    n = n + 1
    lines[n] = { line:sub(1, tab - 1), "Bearer " .. line:sub(tab + 1) }
  end
  step = tonumber(args[2])
  i = tid
  statuses = {}
  first_bad = ""
end

function request()
  local l = lines[(i % n) + 1]
  i = i + step
  return wrk.format("GET", l[1], { ["Authorization"] = l[2] })
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 and #first_bad < 600 then
    first_bad = first_bad .. status .. " " .. body:sub(1, 200) .. " | "
  end
end

function done(summary, latency, requests)
  local st, bad = {}, ""
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for code, c in pairs(s) do st[tostring(code)] = (st[tostring(code)] or 0) + c end
    bad = bad .. t:get("first_bad")
  end
  local parts = {}
  for code, c in pairs(st) do table.insert(parts, string.format('"%s": %d', code, c)) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p95_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %.1f, "socket_errors": %d, "statuses": {%s}, "first_bad": "%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean, e.connect + e.read + e.write + e.timeout,
    table.concat(parts, ", "), (bad:gsub('[\\"%c]', " "))))
end
"""


def find_wrk(allow_install: bool) -> str | None:
    path = shutil.which("wrk")
    if path or not allow_install:
        return path
    log("wrk not found; installing it with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    if subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, **quiet).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], env=env, **quiet)
    return shutil.which("wrk")


def run_wrk(wrk: str, port: int, lines_file: Path, lua_file: Path, clients: int, threads: int,
            seconds: float) -> dict:
    cmd = [wrk, "-t", str(threads), "-c", str(clients), "-d", f"{max(1, round(seconds))}s", "--timeout", "10s",
           "-s", str(lua_file), f"http://127.0.0.1:{port}/", "--", str(lines_file), str(threads)]
    proc = PROCS.start(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + 60)
    finally:
        PROCS.stop(proc)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{out}\n{err}")
    d = json.loads(line[len("BENCH_JSON "):])
    secs = d["duration_us"] / 1e6
    ok = d["statuses"].get("200", 0)
    return {"client": "wrk", "requests": d["requests"], "ok": ok, "statuses": d["statuses"],
            "socket_errors": d["socket_errors"], "seconds": round(secs, 2), "rps": round(ok / secs, 1) if secs else 0,
            "p50_ms": d["p50_us"] / 1000, "p90_ms": d["p90_us"] / 1000, "p95_ms": d["p95_us"] / 1000,
            "p99_ms": d["p99_us"] / 1000, "max_ms": d["max_us"] / 1000, "mean_ms": round(d["mean_us"] / 1000, 3),
            "first_bad": d["first_bad"].strip()[:600]}


def run_python(port: int, lines: list[tuple[str, str]], clients: int, seconds: float) -> dict:
    """8 threads, one keep-alive http.client connection each (the fallback when wrk is missing)."""
    stop_at = time.monotonic() + seconds
    results: list[list] = [[] for _ in range(clients)]
    statuses: dict[str, int] = {}
    errors = [0]
    lock = threading.Lock()

    def worker(slot: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        i = slot
        while time.monotonic() < stop_at:
            path, token = lines[i % len(lines)]
            i += clients
            t = time.perf_counter()
            try:
                conn.request("GET", path, headers={"Authorization": "Bearer " + token})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            results[slot].append((time.perf_counter() - t) * 1000)
            with lock:
                statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
        conn.close()

    t0 = time.monotonic()
    pool = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    secs = time.monotonic() - t0
    lat = sorted(x for r in results for x in r)
    q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else [0.0] * 99
    ok = statuses.get("200", 0)
    return {"client": "python", "requests": len(lat), "ok": ok, "statuses": statuses, "socket_errors": errors[0],
            "seconds": round(secs, 2), "rps": round(ok / secs, 1), "p50_ms": q[49], "p90_ms": q[89], "p95_ms": q[94],
            "p99_ms": q[98], "max_ms": lat[-1] if lat else 0, "mean_ms": statistics.fmean(lat) if lat else 0,
            "first_bad": ""}
