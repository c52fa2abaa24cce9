"""Intake guards: mail that no human wrote or wants answered (RFC 3834), spam scores, and whether
the sender is who the From: header says (SPF, DKIM and DMARC as the receiving server judged them)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

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


# Sender authentication verdicts. Only PASS and UNCHECKED let a sender be taken at their word
# (weak threading evidence, their display name); FAIL is held for an agent (SPEC §4, issue 11).
PASS = "pass"  # DMARC pass, or (without a DMARC result) SPF or DKIM pass for the From: domain
FAIL = "fail"  # DMARC fail, or (without an aligned pass) SPF hard fail: the sender is not who they claim
NONE = "none"  # checked, but nothing proves the sender either way (softfail, neutral, no records)
UNCHECKED = "unchecked"  # no receiving server's verdict at all: `echo-desk inbound` replays, tests

MAX_AUTH_HEADER = 4000  # real verdicts are a few hundred characters; the rest is not read
_COMMENT = re.compile(r"\([^()]*\)")
_SPF_DOMAIN = re.compile(r"(?:envelope-from|smtp\.mailfrom)\s*=\s*\"?<?([^\s;>\"]+)", re.IGNORECASE)
_SPF_COMMENT_DOMAIN = re.compile(r"\bdomain of\s+<?([^\s;>)]+)", re.IGNORECASE)


def sender_authentication(headers: Iterable[tuple[str, str]], sender: str) -> str:
    """Judge the From: address by the receiving server's own SPF, DKIM and DMARC results.

    Each server prepends its headers, so the receiver's `Received-SPF` (Postmark stamps one on
    every inbound message) sits above everything the message arrived with. Only that first
    `Received-SPF` and any `Authentication-Results` above it are read: a sender can write either
    header into their own mail, but only below the receiver's. Mail without a `Received-SPF` has
    not been judged (UNCHECKED). A DMARC result decides; otherwise an SPF or DKIM pass for the
    From: domain or its sub- or parent domain passes, and an SPF hard fail fails. DKIM failures
    count as no signature (RFC 6376 §6.3): mail that was altered in transit is not forged.
    """
    results: list[tuple[str, str, dict[str, str]]] = []
    for name, value in headers:
        field = name.strip().lower()
        if field == "authentication-results":
            results.extend(_authentication_results(value))
        elif field == "received-spf":
            results.append(_received_spf(value))
            break
    else:  # no Received-SPF: no receiver of ours judged this mail
        return UNCHECKED
    from_domain = sender.rpartition("@")[2].lower()
    dmarc = {result for method, result, props in results
             if method == "dmarc" and props.get("header.from", from_domain) == from_domain}
    if PASS in dmarc:
        return PASS
    if FAIL in dmarc:
        return FAIL
    for method, result, props in results:
        if result == PASS and method in ("spf", "dkim") and _aligned(_authenticated_domain(method, props), from_domain):
            return PASS
    return FAIL if any(method == "spf" and result == FAIL for method, result, _ in results) else NONE


def sender_trusted(verdict: str) -> bool:
    """Whether the sender may be taken at their word: weak threading evidence, a new display name."""
    return verdict in (PASS, UNCHECKED)


def _authentication_results(value: str) -> list[tuple[str, str, dict[str, str]]]:
    """`authserv-id; method=result ptype.property=value ...; ...` (RFC 8601) as (method, result, props)."""
    results = []
    for segment in _without_comments(value).split(";"):
        tokens = segment.split()
        if not tokens or "=" not in tokens[0]:
            continue  # the authserv-id (some servers leave it out), or nothing
        method, _, result = tokens[0].partition("=")
        props = {}
        for token in tokens[1:]:
            key, eq, prop = token.partition("=")
            if eq:
                props[key.lower()] = prop.strip('"').lower()
        results.append((method.split("/", 1)[0].lower(), result.lower(), props))
    return results


def _received_spf(value: str) -> tuple[str, str, dict[str, str]]:
    """`result (comment) key=value; ...` (RFC 7208 §9.1); the checked domain from envelope-from,
    else from the comment's "domain of …", which is all some receivers write."""
    value = value[:MAX_AUTH_HEADER]
    bare = _without_comments(value)
    words = bare.split(None, 1)
    domain = _SPF_DOMAIN.search(bare) or _SPF_COMMENT_DOMAIN.search(value)
    return "spf", words[0].lower() if words else "", {"smtp.mailfrom": domain.group(1).lower() if domain else ""}


def _without_comments(value: str) -> str:
    value = value[:MAX_AUTH_HEADER]
    for _ in range(5):  # nested comments, a level at a time, a bounded number of times
        value, found = _COMMENT.subn(" ", value)
        if not found:
            break
    return value.replace("(", " ").replace(")", " ")


def _authenticated_domain(method: str, props: Mapping[str, str]) -> str:
    if method == "spf":
        identity = props.get("smtp.mailfrom") or props.get("smtp.mail") or ""  # DMARC aligns MAIL FROM, not HELO
    else:
        identity = props.get("header.d") or props.get("header.i") or ""
    return identity.rpartition("@")[2].strip(".")


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment, approximated without the public suffix list: the same domain, or one a
    subdomain of the other. It can miss an alignment (sibling subdomains) but never invents one."""
    if not domain or not from_domain:
        return False
    return domain == from_domain or domain.endswith("." + from_domain) or from_domain.endswith("." + domain)
