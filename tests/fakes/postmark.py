"""A local HTTP server that answers like Postmark's email API, reached through the real postmarker client.

It records every accepted email, and can be told to answer the next requests with errors
(HTTP 500, 429, or a 422 with a Postmark ErrorCode) to exercise retries and failures.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import UTC, datetime

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response


class FakePostmark:
    token = "test-server-token"

    def __init__(self) -> None:
        self.server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
        self.lock = threading.Lock()
        self.sent: list[dict] = []
        self.requests: list[dict] = []
        self.failures: list[tuple[int, dict | None]] = []
        self.delay_after_accept = 0.0  # seconds to hold the response after recording a message
        self.slow_recipients: dict[str, float] = {}  # address -> seconds to hold the answer to mail for it

    @property
    def url(self) -> str:
        return self.server.url_for("/")

    def start(self) -> None:
        self.server.start()
        self._install()

    def stop(self) -> None:
        self.server.clear()
        if self.server.is_running():
            self.server.stop()

    def reset(self) -> None:
        with self.lock:
            self.sent.clear()
            self.requests.clear()
            self.failures.clear()
            self.delay_after_accept = 0.0
            self.slow_recipients.clear()

    def fail_next(self, status: int = 500, error_code: int | None = None, times: int = 1,
                  message: str = "Simulated failure") -> None:
        body = {"ErrorCode": error_code, "Message": message} if error_code is not None else None
        with self.lock:
            self.failures.extend([(status, body)] * times)

    def _install(self) -> None:
        self.server.expect_request("/email", method="POST").respond_with_handler(self._send_email)
        self.server.expect_request("/messages/outbound", method="GET").respond_with_handler(self._search_outbound)

    def _search_outbound(self, request: Request) -> Response:
        """Outbound message search, with Postmark's `metadata_<key>=value` filters."""
        if request.headers.get("X-Postmark-Server-Token") != self.token:
            return _json({"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied"}, 401)
        filters = {k[len("metadata_"):]: v for k, v in request.args.items() if k.startswith("metadata_")}
        count, offset = int(request.args.get("count", 100)), int(request.args.get("offset", 0))
        with self.lock:
            matches = [m for m in self.sent if all((m.get("Metadata") or {}).get(k) == v for k, v in filters.items())]
        page = matches[offset:offset + count]
        return _json({"TotalCount": len(matches), "Messages": [
            {"MessageID": m["MessageID"], "To": [{"Email": m["To"], "Name": None}], "Subject": m.get("Subject"),
             "Metadata": m.get("Metadata") or {}, "Status": "Sent", "ReceivedAt": m["ReceivedAt"]}
            for m in page
        ]}, 200)

    def _send_email(self, request: Request) -> Response:
        if request.headers.get("X-Postmark-Server-Token") != self.token:
            return _json({"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied"}, 401)
        try:
            payload = json.loads(request.get_data())
        except ValueError:
            return _json({"ErrorCode": 400, "Message": "Invalid JSON"}, 400)
        with self.lock:
            self.requests.append(payload)
            if self.failures:
                status, body = self.failures.pop(0)
                return _json(body, status) if body else Response("upstream error", status=status)
            if not payload.get("From") or not payload.get("To"):
                return _json({"ErrorCode": 300, "Message": "Invalid email request"}, 422)
            message_id = str(uuid.uuid4())
            stored = dict(payload, MessageID=message_id, ReceivedAt=datetime.now(UTC).isoformat(),
                          received=time.monotonic())
            self.sent.append(stored)
            delay = self.slow_recipients.get(payload["To"], self.delay_after_accept)
        if delay:
            time.sleep(delay)
        return _json({"To": payload["To"], "SubmittedAt": stored["ReceivedAt"], "MessageID": message_id,
                      "ErrorCode": 0, "Message": "OK"}, 200)


def _json(body: dict, status: int) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def kill_worker_after_first_send(postmark: FakePostmark, env: dict[str, str]) -> None:
    """Run a real `echo-desk worker --burst` and SIGKILL it once Postmark has accepted one email but
    before the worker hears the answer: the crash window exactly-once delivery must survive."""
    import os
    import signal
    import subprocess
    import sys
    import time

    postmark.delay_after_accept = 30  # Postmark has the message; the worker waits for the answer
    worker = subprocess.Popen([sys.executable, "-m", "echo.cli", "worker", "--burst"], env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not postmark.sent and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(postmark.sent) == 1
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
        postmark.delay_after_accept = 0
