"""Loop and noise guards (RFC 3834): recognise mail that no human wrote or wants answered."""

from __future__ import annotations

from collections.abc import Mapping

BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
AUTOMATED_HEADERS = ("x-auto-response-suppress", "x-autoreply", "x-autorespond", "list-id", "list-unsubscribe")
DAEMON_LOCAL_PARTS = {"mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply", "do-not-reply"}


def is_automated(headers: Mapping[str, str], sender: str, support_address: str) -> bool:
    """True when the message is an auto-reply, bounce, list mail or our own mail looping back."""
    auto_submitted = headers.get("auto-submitted", "").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if headers.get("precedence", "").strip().lower() in BULK_PRECEDENCE:
        return True
    if any(headers.get(name, "").strip() for name in AUTOMATED_HEADERS):
        return True
    x_loop = headers.get("x-loop", "").lower()
    if x_loop and support_address in x_loop:
        return True
    local, _, domain = sender.rpartition("@")
    if not local or local.split("+", 1)[0] in DAEMON_LOCAL_PARTS:
        return True
    support_local, _, support_domain = support_address.rpartition("@")
    return domain == support_domain and local.split("+", 1)[0] == support_local


def spam_score(headers: Mapping[str, str]) -> float | None:
    """Postmark's SpamAssassin score from `X-Spam-Score`, or None when absent or unreadable."""
    raw = headers.get("x-spam-score", "").strip()
    if not raw:
        return None
    try:
        score = float(raw)
    except ValueError:
        return None
    return score if -1000 < score < 1000 else None
