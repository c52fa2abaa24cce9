"""gunicorn's error log without full client addresses or query strings (SPEC §9).

gunicorn reports a request it cannot parse before the app sees it, naming the peer and quoting
what it read: `Invalid request from ip=203.0.113.9: Invalid HTTP request line: 'GET /x?token=…'`.
The Procfile's `web` and `echo-desk serve` run gunicorn with `--logger-class
echo.gunicorn_logging.PrivateLogger`, which keeps only the /24 (IPv4) or /48 (IPv6) of every
address in its warnings and errors, as support_audit_log does, and drops query strings (one-time
tokens travel there). gunicorn's own start-up lines (the address it listens on) stay as they are.
"""

from __future__ import annotations

import logging
import re

from gunicorn.glogging import Logger  # type: ignore[import-untyped]  # gunicorn ships no types

from echo.security import ip_prefix

# Whatever could be an address; ipaddress decides. IPv6 may end in an embedded IPv4 (::ffff:1.2.3.4).
_ADDRESS = re.compile(r"(?<![\w.:])(?:[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}"
                      r"|\d{1,3}(?:\.\d{1,3}){3})(?![\w.]*\w)")
_QUERY = re.compile(r"(?<=\S)\?[^\s'\"]+")


def _mask_address(match: re.Match[str]) -> str:
    text = match.group()
    candidate = text.rstrip(":")  # "ip=2001:db8::1: Invalid…" ends the address with the sentence's colon
    masked = ip_prefix(candidate)
    return text if masked is None else masked + text[len(candidate):]


def private(message: str) -> str:
    """`message` with every address cut to its network and every query string removed."""
    return _QUERY.sub("?[removed]", _ADDRESS.sub(_mask_address, message))


class _PrivateRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            message = record.getMessage()
            masked = private(message)
            if masked != message:
                record.msg, record.args = masked, ()
        return True


_FILTER = _PrivateRecords()


class PrivateLogger(Logger):
    """gunicorn's logger, its error log passed through `private` (the access log's format already
    leaves out the client and the query string)."""

    def setup(self, cfg) -> None:
        super().setup(cfg)
        self.error_log.addFilter(_FILTER)  # once: setup runs again on reload, addFilter ignores a repeat
