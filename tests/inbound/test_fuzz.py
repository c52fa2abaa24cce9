"""Fuzz the intake: hostile Postmark JSON on the webhook, mangled raw mail through `echo-desk inbound`.

Every input answers without a 5xx or a traceback, writes all of itself or nothing, and takes a
bounded time. Mail whose fields have Postmark's types is never refused, whatever their length or
characters; only JSON of the wrong shape, or no JSON at all, may get a 4xx. The runs are
derandomized, so CI never fails by chance, and short; ECHO_FUZZ_EXAMPLES=5000 runs each
property that many times.
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import namedtuple_row
from redis import Redis
from rq import Queue
from sqlalchemy.engine import make_url

from echo.attachments.storage import storage
from echo.inbound import limits
from echo.inbound.eml import message_to_postmark
from echo.jobs import QUEUES
from tests.conftest import WEBHOOK_AUTH
from tests.mailbuilder import inbound_payload

SECONDS = 5.0  # per input, generously: nested HTML took over 30 s before the intake bounded it
RUNAWAY = 3 * SECONDS  # an input still running then is stopped where it stands, and the test fails
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
MAIL_FILES = sorted(path.name for path in FIXTURES.glob("*.eml"))

settings.register_profile(
    "echo-fuzz", derandomize=True, database=None, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(examples: int) -> settings:
    """The fuzzing profile with `examples` examples, or ECHO_FUZZ_EXAMPLES of them when set."""
    wanted = os.environ.get("ECHO_FUZZ_EXAMPLES")
    return settings(settings.get_profile("echo-fuzz"), max_examples=int(wanted) if wanted else examples)


# --- what was committed ----------------------------------------------------------------------


class Committed:
    """What the intake committed, seen from a connection of its own, and a way back to empty tables."""

    def __init__(self, conn: psycopg.Connection, redis: Redis, session):
        self.conn, self.redis, self.session = conn, redis, session
        self.tables = [r.tablename for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")]
        self._count = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in self.tables)
        self.files = storage().root

    def reset(self) -> None:
        self.session.rollback()  # the test's own session holds no lock TRUNCATE would wait for
        self.conn.execute(f"TRUNCATE {', '.join(self.tables)} RESTART IDENTITY CASCADE")
        self.conn.execute("ALTER SEQUENCE ticket_number_seq RESTART")
        self.redis.flushdb()

    def counts(self) -> dict[str, int]:
        """Rows per table, queued jobs and stored files."""
        counts = dict(self.conn.execute(self._count).fetchall())
        counts["jobs"] = sum(Queue(name, connection=self.redis).count for name in QUEUES)
        counts["files"] = sum(1 for path in self.files.rglob("*") if path.is_file()) if self.files.exists() else 0
        return counts

    def one(self, sql: str, *params):
        return self.conn.execute(sql, params).fetchone()

    def all(self, sql: str, *params):
        return self.conn.execute(sql, params).fetchall()


@pytest.fixture
def committed(app, db, database_url, redis_url):
    dsn = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True, row_factory=namedtuple_row) as conn:
        yield Committed(conn, Redis.from_url(redis_url), db.session)


def assert_kept(committed: Committed, answer: dict, before: dict, after: dict, postmark_id: str | None):
    """The message, and everything that goes with it, is stored; or nothing is, for a duplicate."""
    assert answer["status"] in ("created", "appended", "duplicate"), answer
    assert committed.one("SELECT id FROM tickets WHERE id = %s", answer["ticket_id"]), answer
    if answer["status"] == "duplicate":
        assert after == before
        return None
    thread = committed.one("SELECT id, ticket_id, notices FROM threads WHERE id = %s", answer["thread_id"])
    assert thread and str(thread.ticket_id) == answer["ticket_id"]
    if postmark_id is not None:
        assert committed.one("SELECT id FROM threads WHERE postmark_message_id = %s", postmark_id).id == thread.id
    assert after["threads"] == before["threads"] + 1
    assert after["tickets"] == before["tickets"] + (answer["status"] == "created")
    assert after["customers"] - before["customers"] in (0, 1)
    files = committed.all("SELECT filename, s3_key FROM attachments WHERE thread_id = %s", thread.id)
    assert after["files"] - before["files"] == len(files) and all(storage().exists(f.s3_key) for f in files)
    if thread.notices:  # whatever was cut, the whole message is kept beside it
        assert limits.ORIGINAL_FILENAME in {f.filename for f in files}, thread.notices
    return thread


class Runaway(BaseException):
    """An input still being worked on at RUNAWAY seconds (a BaseException, so nothing on the way catches it)."""


@contextmanager
def timed():
    """Time the block, and stop it with a traceback of where it was once it has run RUNAWAY seconds."""
    def stop(signum, frame):
        raise Runaway(f"still running after {RUNAWAY:g} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, RUNAWAY)
    clock = {"started": time.perf_counter()}
    try:
        yield clock
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        clock["elapsed"] = time.perf_counter() - clock["started"]


# --- hostile values --------------------------------------------------------------------------

ODD = [
    "\x00", "\ud800", "\udfff", "\udc00\ud800", "\ud83d\ude15", "\u202e", "\u202d", "\u2066", "\u200f", "\u200b",
    "\ufeff", "\u2028", "\x85", "\x7f", "\x1b[2J", "\r\n", "\r", "\t", "😕", "𝔘𝔫𝔦", "\U0010fffd", "\U000e0041",
    "e\u0301\u0301\u0301", "ﷺ", "=?utf-8?b?AA==?=", "=?utf-7?Q?+AGE-?=", "<!--", "]]>", "\\", '"', "%00", "&#0;",
    "&#xD800;", "[TKT-0001]", "[TKT-999999999999]", "<a@b>", "@", "\\u0000",
]
short_text = st.text(max_size=12) | st.sampled_from(ODD)
mixed_text = st.lists(short_text, max_size=8).map("".join)
BOUNDS = [limits.MAX_NAME + 1, limits.MAX_SUBJECT + 1, 10 * limits.MAX_SUBJECT + 1, limits.MAX_HEADER_VALUE + 1,
          100_000, 300_000]


def repeated(piece: str, length: int) -> str:
    """`piece` repeated to `length` characters: long values cost hypothesis a short draw."""
    piece = piece or "x"
    return (piece * (length // len(piece) + 1))[:length]


long_text = st.builds(repeated, mixed_text, st.sampled_from(BOUNDS) | st.integers(1, 300_000))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | short_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(short_text, inner, max_size=3), max_leaves=8)

# HTML shapes whose cost grows with nesting in a naive tree builder: each is an opening string
# (given its index, so that attributes can differ) and a closing one.
FORMATTING = ["b", "i", "em", "strong", "font", "a", "u", "s", "small", "nobr"]
HTML_SHAPES = {
    "div": (lambda i: "<div>", "</div>"),
    "formatting": (lambda i: f'<{FORMATTING[i % len(FORMATTING)]} class="c{i}">', ""),
    "font": (lambda i: f'<font color="#{i % 0xFFFFFF:06x}" size="{i % 7}">', "</font>"),
    "list": (lambda i: "<ul><li>", "</li></ul>"),
    "li": (lambda i: "<li>", ""),
    "table": (lambda i: "<table><tr><td>", "</td></tr></table>"),
    "svg_g": (lambda i: f'<g id="g{i}">', "</g>"),
    "blockquote": (lambda i: '<blockquote type="cite">', "</blockquote>"),
    "gmail_quote": (lambda i: '<div class="gmail_quote">', "</div>"),
    "p": (lambda i: "<p>", ""),
    "comment": (lambda i: "<div><!-- <div> -->", "</div>"),
    "button": (lambda i: "<button>", ""),
    "select": (lambda i: "<select><option>", ""),
    "anchor": (lambda i: f'<a href="https://example.test/{i}">', ""),
    "bare_lt": (lambda i: "<", ""),
    "open_attribute": (lambda i: "<a href='", ""),
    "image": (lambda i: f'<img src="cid:part{i}">', ""),
}
HTML_PREFIXES = ["", "", "<svg><style>", "<math><style>", "<style>", "<!--", "<table>", "<template>", "<noscript>",
                 "<textarea>", "<plaintext>", "<svg>", "<svg><foreignObject>", "<math><mi>", "<title>", "<xmp>"]
DEPTHS = st.sampled_from([1, 99, 100, 101, 1_000, 5_000, 25_000, 50_000]) | st.integers(0, 2_000)


def nested_html(prefix: str, shape: str, depth: int, text: str, closed: bool) -> str:
    opening, closing = HTML_SHAPES[shape]
    depth = min(depth, 400_000 // (len(opening(depth)) + len(closing) + len(text) + 1))
    body = "".join(opening(i) + text for i in range(depth))
    return prefix + body + (closing * depth if closed else "")


html_piece = st.builds(nested_html, st.sampled_from(HTML_PREFIXES), st.sampled_from(sorted(HTML_SHAPES)), DEPTHS,
                       st.sampled_from(["", "x", " ", "word "]) | short_text, st.booleans())
html_bodies = st.one_of(mixed_text, long_text, html_piece, st.lists(html_piece, min_size=2, max_size=3).map("".join))


def id_list(token: str, count: int, style: str) -> str:
    ids = [f"{token}{i}@mail.example.com" for i in range(count)]
    return {"angle": " ".join(f"<{i}>" for i in ids), "bare": " ".join(ids), "comma": ",".join(ids),
            "folded": "\r\n\t".join(f"<{i}>" for i in ids)}[style]


message_ids = st.one_of(
    st.none(), mixed_text, long_text,
    st.builds(id_list, short_text, st.sampled_from([1, 50, 51, 1_000, 5_000]) | st.integers(0, 200),
              st.sampled_from(["angle", "bare", "comma", "folded"])))

# --- the webhook's JSON ----------------------------------------------------------------------

good_local = st.lists(st.sampled_from(["alice", "Bob", "+tag", ".", "_", "\x00", "\ud800", "\u202e", "😕", "é",
                                       "%", "'", '"', "@", "{{x}}", "1"]), min_size=1, max_size=10).map("".join)
good_domain = st.sampled_from(["example.com", "EXAMPLE.org", "xn--bcher-kva.example", "例え.jp", "a" * 63 + ".test",
                               "[192.0.2.1]", "mail.example.com."])
good_addresses = st.builds(lambda local, domain: f"a{local}@{domain}", good_local, good_domain)
addresses = st.fixed_dictionaries({"Email": good_addresses | mixed_text, "Name": mixed_text, "MailboxHash": mixed_text})
small_addresses = st.fixed_dictionaries({"Email": good_addresses, "Name": short_text, "MailboxHash": short_text})
SPAM_SCORES = ["nan", "inf", "-inf", "1e309", "999.99", "5.5", "0x10", "1_000", " 7 ", "٣", "-999.999"]
header_names = st.sampled_from([
    "Message-ID", "In-Reply-To", "References", "X-Spam-Score", "Received-SPF", "Authentication-Results",
    "Auto-Submitted", "Precedence", "X-Autoreply", "List-Id", "Return-Path", "X-Loop", "Content-Type", "From",
    "X-Auto-Response-Suppress"]) | mixed_text
headers = st.fixed_dictionaries({"Name": header_names, "Value": mixed_text | st.sampled_from(SPAM_SCORES)})
small_headers = st.fixed_dictionaries({"Name": short_text, "Value": short_text})
CONTENT_TYPES = ["image/png", "image/jpeg", "image/jpg", "image/gif", "image/svg+xml", "text/html", "text/plain",
                 "application/pdf", "message/rfc822", "multipart/mixed", "IMAGE/PNG", "", "a", "/", "text/",
                 "text/plain; charset=\x00", "../../etc/passwd", "x" * 300 + "/y", "application/octet-stream"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


attachment_contents = st.one_of(
    st.binary(max_size=64).map(b64),
    st.binary(max_size=64).map(lambda data: b64(data).rstrip("=")),  # unpadded
    st.binary(max_size=64).map(lambda data: base64.encodebytes(data).decode().replace("\n", "\r\n ")),
    st.builds(lambda data, n: b64(data * n), st.sampled_from([PNG, b"%PDF-1.4\n", b"GIF89a"]), st.integers(1, 5_000)),
    st.sampled_from(["A", "AB=", "====", "", "!!!not base64@@@", "QUJD\x00", "QUJD\ud800", "Q" * 4097]),
    mixed_text,
)
attachment = st.fixed_dictionaries({
    "Name": mixed_text, "Content": attachment_contents, "ContentType": st.sampled_from(CONTENT_TYPES) | mixed_text,
    "ContentLength": st.integers(-(2**63), 2**63),
    "ContentID": mixed_text | st.sampled_from(["part1", "<part1>", "<>"]),
})
small_attachment = st.fixed_dictionaries({
    "Name": short_text, "Content": st.binary(max_size=16).map(b64) | short_text,
    "ContentType": st.sampled_from(CONTENT_TYPES), "ContentID": short_text})


def many(item, small_item, counts):
    """Lists of a few distinct items, or of one small item repeated up to past the intake's bound."""
    few = st.lists(item, max_size=4)
    return st.one_of(few, few, few, st.builds(lambda one, n: [one] * n, small_item, st.sampled_from(counts)))


# Where long values go: a few per payload, so that one stays a few MB at most.
LONG_PATHS = [
    ("Subject",), ("FromName",), ("From",), ("To",), ("Cc",), ("ReplyTo",), ("Date",), ("MailboxHash",), ("TextBody",),
    ("StrippedTextReply",), ("FromFull", "Name"), ("FromFull", "MailboxHash"), ("ToFull", 0, "Name"),
    ("ToFull", 0, "Email"), ("Headers", 0, "Value"), ("Headers", -1, "Name"), ("Headers", -1, "Value"),
    ("Attachments", 0, "Name"), ("Attachments", 0, "ContentID"), ("Attachments", 0, "Content"),
    ("Attachments", 0, "ContentType"), ("Tag",), ("OriginalRecipient",),
]
NULLABLE = ["Cc", "CcFull", "HtmlBody", "TextBody", "StrippedTextReply", "Attachments", "ReplyTo", "Subject", "To",
            "ToFull", "Headers", "Date", "MailboxHash", "FromName", "Tag", "Bcc", "OriginalRecipient", "From"]


@st.composite
def postmark_payloads(draw):
    """A payload in Postmark's inbound shape, every field of its type, values as hostile as mail gets.

    Returns the payload and whether its sender is readable (FromFull carries a real address):
    such mail must be accepted."""
    readable = draw(st.integers(0, 4)) > 0
    sender = draw(good_addresses) if readable else draw(mixed_text)
    payload = inbound_payload(
        sender=sender, name=draw(mixed_text), subject=draw(mixed_text), text=draw(mixed_text), html=draw(html_bodies),
        message_id=draw(mixed_text), postmark_id=str(draw(st.uuids())), in_reply_to=draw(message_ids),
        references=draw(message_ids), mailbox_hash=draw(mixed_text), stripped=draw(mixed_text),
        attachments=draw(many(attachment, small_attachment, [limits.MAX_ATTACHMENTS + 1])),
    )
    header_counts = [limits.MAX_HEADERS, limits.MAX_HEADERS + 1, 3 * limits.MAX_HEADERS]
    payload["Headers"] += draw(many(headers, small_headers, header_counts))
    payload["ToFull"] += draw(many(addresses, small_addresses, [limits.MAX_RECIPIENTS + 1]))
    payload["CcFull"] = draw(many(addresses, small_addresses, [limits.MAX_RECIPIENTS + 1]))
    for key in draw(st.lists(st.sampled_from(["From", "FromName", "To", "Cc", "Bcc", "ReplyTo", "Date", "Tag",
                                              "OriginalRecipient"]), max_size=4)):
        payload[key] = draw(mixed_text)
    for path in draw(st.lists(st.sampled_from(LONG_PATHS), max_size=3)):
        payload = replace_at(payload, path, draw(long_text))
    for key in draw(st.lists(st.sampled_from(NULLABLE), max_size=3)):
        payload[key] = None
    if not readable:
        payload["FromFull"] = draw(st.none() | addresses)
    payload["FromFull"] = payload["FromFull"] and {**payload["FromFull"], **draw(
        st.dictionaries(short_text, json_values, max_size=2))}
    for key, value in draw(st.dictionaries(short_text, json_values, max_size=3)).items():
        payload.setdefault(key, value)  # fields Postmark may add one day
    return payload, readable


def deliver(client, committed: Committed, body: bytes, *, content_type: str = "application/json"):
    """Post `body` to the webhook from empty tables; return the answer, the counts before and after, the time."""
    committed.reset()
    before = committed.counts()
    try:
        with timed() as clock:
            response = client.post("/tickets/inbound", data=body, content_type=content_type, auth=WEBHOOK_AUTH)
    finally:
        committed.session.rollback()
    after = committed.counts()
    assert response.status_code < 500, (response.status_code, response.get_data()[:2000])
    assert clock["elapsed"] < SECONDS, f"{clock['elapsed']:.1f} s for one input"
    answer = response.get_json(silent=True)
    assert isinstance(answer, dict), response.get_data()[:2000]
    if response.status_code >= 400:
        assert isinstance(answer.get("error"), str) and answer["error"], answer
        assert after == before, "a refused request wrote something"
    else:
        assert response.status_code == 200, answer
    return response, answer, before, after


@fuzz(60)
@given(drawn=postmark_payloads())
def test_webhook_keeps_any_mail_of_postmarks_shape(client, committed, drawn):
    payload, readable = drawn
    response, answer, before, after = deliver(client, committed, json.dumps(payload).encode())
    if not readable and response.status_code == 422:
        assert answer["error"] == "missing_sender", answer
        return
    assert response.status_code == 200, answer  # never refused for its content
    thread = assert_kept(committed, answer, before, after, payload["MessageID"])
    if thread is not None and cut(payload):
        assert thread.notices, "a field was cut and no notice says so"


CUT_BOUNDS = {"TextBody": limits.MAX_BODY_CHARS, "HtmlBody": limits.MAX_HTML_CHARS, "Headers": limits.MAX_HEADERS,
              "ToFull": limits.MAX_RECIPIENTS, "CcFull": limits.MAX_RECIPIENTS, "Attachments": limits.MAX_ATTACHMENTS}


def cut(payload: dict) -> bool:
    """Whether the payload has a field the intake must cut (and say so)."""
    def longer(value, bound):
        return isinstance(value, str | list) and len(value) > bound

    subject = payload.get("Subject")
    return (any(longer(payload.get(name), bound) for name, bound in CUT_BOUNDS.items())
            or (isinstance(subject, str) and len(" ".join(subject.split())) > limits.MAX_SUBJECT)
            or any(longer(h.get("Value"), limits.MAX_HEADER_VALUE)
                   for h in payload.get("Headers") or [] if isinstance(h, dict)))


wrong_types = st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.integers(), max_size=3),
                        st.dictionaries(short_text, st.integers(), max_size=3), short_text, st.none())
FIELD_PATHS = [
    ("MessageID",), ("From",), ("FromName",), ("FromFull",), ("FromFull", "Email"), ("FromFull", "Name"), ("To",),
    ("ToFull",), ("ToFull", 0), ("ToFull", 0, "Email"), ("Cc",), ("CcFull",), ("Subject",), ("Date",),
    ("TextBody",), ("HtmlBody",), ("StrippedTextReply",), ("MailboxHash",), ("Headers",), ("Headers", 0),
    ("Headers", 0, "Name"), ("Headers", 0, "Value"), ("Attachments",), ("Attachments", 0),
    ("Attachments", 0, "Name"), ("Attachments", 0, "Content"), ("Attachments", 0, "ContentType"),
    ("Attachments", 0, "ContentLength"), ("Attachments", 0, "ContentID"),
]


def replace_at(payload, path: tuple, value):
    """`payload` with the value at `path` (keys and list indexes) replaced, where that path exists.

    What is stepped into is copied first: repeated list items are one object."""
    node = payload
    for step in path[:-1]:
        try:
            child = node[step]
        except (KeyError, IndexError, TypeError):
            return payload
        if not isinstance(child, dict | list):
            return payload
        node[step] = child = child.copy()
        node = child
    try:
        node[path[-1]] = value
    except (IndexError, TypeError):
        pass
    return payload


@st.composite
def misshapen_payloads(draw):
    """Postmark-like payloads with some fields of the wrong JSON type, or no object at all."""
    payload, _ = draw(postmark_payloads())
    payload["Attachments"] = payload.get("Attachments") or [{"Name": "a", "Content": "QQ=="}]
    for path in draw(st.lists(st.sampled_from(FIELD_PATHS), min_size=1, max_size=3)):
        payload = replace_at(payload, path, draw(wrong_types))
    return draw(st.just(payload) | wrong_types | st.lists(st.just(payload), max_size=2))


@fuzz(40)
@given(payload=misshapen_payloads())
def test_webhook_answers_misshapen_json_with_a_4xx_and_writes_nothing(client, committed, payload):
    _, answer, before, after = deliver(client, committed, json.dumps(payload).encode())
    if "ticket_id" in answer:
        assert_kept(committed, answer, before, after, None)


def deep(n: int, kind: str) -> str:
    return {"list": "[" * n + "]" * n, "object": '{"a":' * n + "1" + "}" * n, "open": "[" * n}[kind]


def splice(body: str, at: int, text: str) -> str:
    at %= len(body) + 1
    return body[:at] + text + body[at:]


@st.composite
def raw_bodies(draw):
    """Bodies that are not quite JSON, or JSON as Postmark would never write it; and the MessageID inside, if any."""
    payload, _ = draw(postmark_payloads())
    text = json.dumps(payload)
    at = draw(st.integers(0, 10**9))
    nesting = draw(st.sampled_from([1, 500, 1_000, 5_000, 100_000]) | st.integers(0, 3_000))
    kind = draw(st.sampled_from(["list", "object", "open"]))
    body = draw(st.sampled_from([
        "truncated", "deep", "deep_field", "deep_header", "bad_utf8", "utf16", "literal_controls", "surrogate_bytes",
        "big_number", "nan", "duplicate_keys", "garbage", "empty"]))
    if body == "truncated":
        return text.encode()[:at % (len(text) + 1)], None
    if body == "deep":
        return deep(nesting, kind).encode(), None
    if body == "deep_field":
        return (text[:-1] + f', "X-Extra": {deep(nesting, kind)}}}').encode(), payload["MessageID"]
    if body == "deep_header":
        return text.replace('"Headers": [', f'"Headers": [{deep(nesting, kind)}, ', 1).encode(), payload["MessageID"]
    if body == "bad_utf8":
        return splice(text, at, "\x00").encode().replace(b"\x00", draw(st.sampled_from(
            [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]))), payload["MessageID"]
    if body == "utf16":
        encoding = draw(st.sampled_from(["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"]))
        return text.encode(encoding), payload["MessageID"]
    if body == "literal_controls":
        return splice(text, at, draw(st.sampled_from(["\x00", "\x01", "\n", "\x1f"]))).encode(), payload["MessageID"]
    if body == "surrogate_bytes":
        return json.dumps(payload, ensure_ascii=False).encode("utf-8", "surrogatepass"), payload["MessageID"]
    if body == "big_number":
        number = draw(st.sampled_from(["9" * 5_000, "1e999999", "-0", "1" + "0" * 400]))
        return text.replace('"MessageID"', f'"ContentLength": {number}, "MessageID"', 1).encode(), payload["MessageID"]
    if body == "nan":
        return text.replace('"Subject": ', '"Subject": NaN, "X": ', 1).encode(), payload["MessageID"]
    if body == "duplicate_keys":
        return text.replace('{"From"', '{"MessageID": 5, "From": [], "From"', 1).encode(), payload["MessageID"]
    if body == "garbage":
        return draw(st.binary(max_size=200)), None
    return draw(st.sampled_from([b"", b" ", b"\x00", b"null", b"\xef\xbb\xbf", b"{", b'{"a": 1}'])), None


@fuzz(40)
@given(drawn=raw_bodies(), content_type=st.sampled_from(["application/json", "application/json; charset=utf-8",
                                                         "application/vnd.postmark+json"]))
def test_webhook_answers_broken_json_with_a_4xx_and_writes_nothing(client, committed, drawn, content_type):
    body, postmark_id = drawn
    _, answer, before, after = deliver(client, committed, body, content_type=content_type)
    if "ticket_id" in answer:
        assert_kept(committed, answer, before, after, postmark_id)


# --- `echo-desk inbound` with raw bytes ------------------------------------------------------

_LINE = re.compile(rb"\r\n|\r|\n")
_HEADER_LINE = re.compile(rb"(From |[\x21-\x39\x3b-\x7e]*:|[\t ])")  # as the stdlib's feedparser reads one


def raw_mail(name: str) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    return raw.replace(b"{{IN_REPLY_TO}}", b"0100018f-out-2@mtasv.net").replace(b"{{REFERENCES}}", b"0100018f-out-1@x")


def header_lines(raw: bytes) -> list[bytes]:
    """The lines of the header block, up to the first that is blank or not a header."""
    found = []
    for line in _LINE.split(raw):
        if not line or not _HEADER_LINE.match(line):
            break
        found.append(line)
    return found


FROM_LINES = {line for name in MAIL_FILES for line in header_lines(raw_mail(name)) if line.lower().startswith(b"from:")}


def readable_sender(raw: bytes) -> bool:
    """Whether the first From: of the header block is still one of the fixtures' own, unfolded."""
    lines = header_lines(raw)
    for index, line in enumerate(lines):
        if line.lower().startswith(b"from:"):
            folded = index + 1 < len(lines) and lines[index + 1][:1] in (b" ", b"\t")
            return line in FROM_LINES and not folded
    return False


def index_in(draw, raw: bytes) -> int:
    return draw(st.integers(0, 10**9)) % (len(raw) + 1)


def flip_bytes(draw, raw):
    for _ in range(draw(st.integers(1, 8))):
        at = index_in(draw, raw)
        raw = raw[:at] + bytes([draw(st.integers(0, 255))]) + raw[at + 1:]
    return raw


def truncate(draw, raw):
    return raw[:index_in(draw, raw)]


def insert_in_headers(draw, raw, lines: list[bytes]):
    at = draw(st.integers(0, len(header_lines(raw))))
    all_lines = raw.split(b"\n")
    return b"\n".join(all_lines[:at] + lines + all_lines[at:])


garbage_bytes = st.binary(max_size=40) | st.sampled_from([b"\x00", b"\xff\xfe", b"=?utf-8?q?=FF?=", b"\x80\x81\x82"])


def garbage_headers(draw, raw):
    lines = [b"X-" + draw(st.binary(min_size=1, max_size=10)).replace(b":", b"").replace(b"\n", b"").replace(
        b"\r", b"") + b": " + draw(garbage_bytes).replace(b"\n", b" ").replace(b"\r", b" ") + b"\r"
        for _ in range(draw(st.integers(1, 5)))]
    return insert_in_headers(draw, raw, lines)


def duplicate_header(draw, raw):
    lines = header_lines(raw)
    line = lines[draw(st.integers(0, len(lines) - 1))] if lines else b"X-Empty: "
    return insert_in_headers(draw, raw, [line] * draw(st.sampled_from([2, 100, 2_001, 5_000])))


def long_header(draw, raw):
    name = draw(st.sampled_from([b"X-Long", b"Subject", b"References", b"In-Reply-To", b"Message-ID", b"Received",
                                 b"Content-Type", b"Content-Disposition", b"From", b"To", b"Cc"]))
    piece = draw(st.sampled_from([b"a", b"<id@x> ", b"=?utf-8?b?w6k=?= ", b"\xe9", b"(((", b"word ", b"(x)", b"; a=b",
                                  b"a@example.com, ", b'"\\"']))
    value = piece * (draw(st.sampled_from([1_000, 20_001, 100_000, 300_000])) // len(piece))
    if draw(st.booleans()):
        value = b"\r\n\t".join(value[i:i + 76] for i in range(0, len(value), 76))
    return insert_in_headers(draw, raw, [name + b": " + value + b"\r"])


CHARSETS = [b"utf-7", b"unicode-1-1-utf-7", b"utf-16", b"utf-32", b"x-klingon", b"", b'"', b"utf-8\x00", b"iso-2022-jp",
            b"cp1252", b"\xff\xfe", b"a" * 300, b"idna", b"punycode", b"rot13", b"base64", b"zlib", b"hex", b"uu",
            b"unicode_escape", b"raw_unicode_escape", b"utf-8-sig", b"ascii", b"cp037", b"mbcs", b"oem", b"undefined"]


def wrong_charset(draw, raw):
    charset = draw(st.sampled_from(CHARSETS))
    raw = re.sub(rb"(?i)charset=\"?[^\";\s]*\"?", b"charset=" + charset.replace(b"\\", b"\\\\"), raw,
                 count=draw(st.integers(0, 3)))
    encoding = draw(st.sampled_from([b"B", b"Q", b"b", b"X"]))
    word = b"=?" + charset + b"?" + encoding + b"?" + draw(st.sampled_from([b"K0FHRS0=", b"+AGE-", b"=FF", b"\\N{"]))
    return insert_in_headers(draw, raw, [b"Subject: " + word + b"?=\r"]) if draw(st.booleans()) else raw


def broken_boundary(draw, raw):
    boundaries = re.findall(rb"boundary=\"?([^\";\r\n]+)\"?", raw)
    if not boundaries:
        return raw
    boundary = boundaries[draw(st.integers(0, len(boundaries) - 1))]
    broken = draw(st.sampled_from([b"", b"x", boundary[:-1], boundary + b"--", boundary * 2]))
    how = draw(st.sampled_from(["all", "closing", "parameter", "repeat"]))
    if how == "all":
        return raw.replace(b"--" + boundary, b"--" + broken)
    if how == "closing":
        return raw.replace(b"--" + boundary + b"--", b"")
    if how == "parameter":
        return raw.replace(b"boundary=", b"boundary=" + broken + b";x=", 1)
    return raw.replace(b"--" + boundary + b"\r\n", (b"--" + boundary + b"\r\n") * 50, 1)


def transfer_encoding(draw, raw):
    old = draw(st.sampled_from([b"base64", b"quoted-printable", b"7bit", b"8bit"]))
    new = draw(st.sampled_from([b"base64", b"quoted-printable", b"x-uuencode", b"uuencode", b"binary", b"x-martian"]))
    raw = re.sub(rb"(?i)(Content-Transfer-Encoding:\s*)" + old, rb"\g<1>" + new, raw)
    at = raw.find(b"\n\n", raw.lower().find(b"content-transfer-encoding"))
    return raw if at < 0 else raw[:at + 2] + draw(garbage_bytes) + b"=ZZ====!!" + raw[at + 2:]


def nul_bytes(draw, raw):
    for _ in range(draw(st.integers(1, 5))):
        at = index_in(draw, raw)
        raw = raw[:at] + b"\x00" + raw[at:]
    return raw


def eight_bit_headers(draw, raw):
    head = len(b"\n".join(header_lines(raw)))
    for _ in range(draw(st.integers(1, 5))):
        at = draw(st.integers(0, head))
        raw = raw[:at] + bytes([draw(st.integers(0x80, 0xFF))]) + raw[at:]
    return raw


def line_endings(draw, raw):
    return raw.replace(b"\r\n", b"\n").replace(b"\n", draw(st.sampled_from([b"\r\n", b"\r", b"\n", b"\n\r"])))


def deep_multipart(draw, raw):
    depth = draw(st.sampled_from([10, 300, 1_000, 5_000]))
    nested = b"".join(b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(depth))
    return b"\r\n".join(header_lines(raw)) + b"\r\n" + nested + b"\r\ndeep\r\n"


def many_parts(draw, raw):
    count = draw(st.sampled_from([2, 100, limits.MAX_ATTACHMENTS + 1]))
    part = (b"--P\r\nContent-Type: " + draw(st.sampled_from([b"image/png", b"text/plain", b"message/rfc822"]))
            + b"\r\nContent-Transfer-Encoding: base64\r\nContent-ID: <p@x>\r\n\r\niVBORw0KGgo=\r\n")
    head = [line for line in header_lines(raw) if not line.lower().startswith((b"content-", b"\t", b" "))]
    head.append(b'Content-Type: multipart/mixed; boundary="P"')
    return b"\r\n".join([*head, b"", b""]) + part * count + b"--P--"


def long_body(draw, raw):
    return raw + raw[len(b"\n".join(header_lines(raw))):] * draw(st.sampled_from([10, 100]))


def drop_header(draw, raw):
    name = draw(st.sampled_from([b"from", b"content-type", b"mime-version", b"message-id", b"to", b"date"]))
    return b"\n".join(line for line in raw.split(b"\n") if not line.lower().startswith(name + b":"))


MUTATIONS = [flip_bytes, truncate, garbage_headers, duplicate_header, long_header, wrong_charset, broken_boundary,
             transfer_encoding, nul_bytes, eight_bit_headers, line_endings, deep_multipart, many_parts, long_body,
             drop_header]


@st.composite
def mangled_mail(draw):
    raw = raw_mail(draw(st.sampled_from(MAIL_FILES)))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=4)):
        raw = mutation(draw, raw)
    return raw


OUTCOME = re.compile(r"(created|appended|duplicate): (TKT-\d+) \(ticket ([0-9a-f-]{36})\)")


@fuzz(60)
@given(raw=mangled_mail())
def test_inbound_command_keeps_mangled_mail(app, committed, tmp_path, raw):
    path = tmp_path / "mail.eml"
    path.write_bytes(raw)
    committed.reset()
    before = committed.counts()
    try:
        with timed() as clock:
            result = app.test_cli_runner().invoke(args=["inbound", str(path)])
    finally:
        committed.session.rollback()
    after = committed.counts()
    assert result.exception is None or isinstance(result.exception, SystemExit), "".join(
        traceback.format_exception(*result.exc_info))
    assert clock["elapsed"] < SECONDS, f"{clock['elapsed']:.1f} s for one input"
    if result.exit_code != 0:
        assert result.exit_code == 1 and "missing_sender" in result.output, result.output
        assert not readable_sender(raw), "a message with a sender was refused: " + result.output
        assert after == before, "a refused message wrote something"
        return
    outcome = OUTCOME.match(result.output)
    assert outcome, result.output
    status, _, ticket_id = outcome.groups()
    thread = committed.one("SELECT id FROM threads WHERE postmark_message_id = %s",
                           message_to_postmark(raw)["MessageID"])
    answer = {"status": status, "ticket_id": ticket_id, "thread_id": thread and str(thread.id)}
    assert_kept(committed, answer, before, after, None)
