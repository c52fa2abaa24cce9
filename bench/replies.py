"""Compare Echo's reply stripping with talon's and email_reply_parser's on their own test mail.

    python bench/replies.py [--erp-repo PATH] [--failures] [--json]

The fixture sets are the libraries' own test mail with the answers their test suites expect,
fetched at run time into a cache (never committed):

* talon-text, talon-html: the inline cases of talon's text_quotations_test.py and
  html_quotations_test.py with the answer each `eq_` expects (recorded by running the test
  functions against a stand-in for talon, so the cases are exactly the upstream ones);
* talon-eml, talon-eml-html: talon's tests/fixtures/standard_replies, text part and HTML part,
  expected "Hello" or the `*_reply_text` file, as in test_standard_replies; html_replies/*.html,
  OLK_SRC_BODY_SECTION.html and reply-separated-by-hr.html go to talon-html;
* erp: email_reply_parser's test/emails, each mail its test module reads, expected what
  email_reply_parser's suite approves (its `.reply`, after the suite is run and passes). The
  sdist on PyPI ships the test module but not the mail; pass a clone of the repository
  (a bare git directory works) with --erp-repo, or the set is skipped.

Answers are compared after removing all whitespace (as talon's HTML tests do). "more" counts
answers that show a line that is not in the expected answer (history or a signature left in
view); "hid" counts answers that lost a line of the expected one. HTML is turned into text for
the text-only tools (and for talon's HTML output) by one neutral renderer.
"""

from __future__ import annotations

import argparse
import ast
import email
import email.iterators
import email.policy
import html.parser
import importlib.util
import inspect
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import unicodedata
import unittest
from collections.abc import Callable
from contextlib import contextmanager, redirect_stderr
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TALON = "talon==1.4.4"
ERP = "email_reply_parser==0.5.12"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "echo-bench-replies"


@dataclass
class Case:
    name: str
    text: str  # the text part ("" for HTML-only mail)
    html: str | None
    expected: str


# --- fetching -------------------------------------------------------------------------------------

def sdist(requirement: str, cache: Path) -> Path:
    """Download and unpack `requirement`'s source distribution into the cache; return its root."""
    name, version = requirement.split("==")
    root = next(iter(cache.glob(f"{name.replace('-', '_')}-{version}")), None)
    if root is None:
        download = cache / "downloads"
        download.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:", "--no-deps",
                        requirement, "-d", str(download)], check=True)
        archive = next(download.glob(f"{name}-{version}.tar.gz"))
        with tarfile.open(archive) as tar:
            tar.extractall(cache, filter="data")
        root = cache / f"{name}-{version}"
    return root


def erp_emails(repo: str | None, root: Path) -> Path | None:
    """email_reply_parser's test/emails beside its test module, copied from a clone (bare or not)."""
    target = root / "test" / "emails"
    if target.is_dir() and any(target.iterdir()):
        return target
    if not repo:
        return None
    source = Path(repo)
    if (source / "test" / "emails").is_dir():
        shutil.copytree(source / "test" / "emails", target)
        return target
    archive = subprocess.run(["git", f"--git-dir={source}", "archive", "HEAD", "test/emails"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    return target


@contextmanager
def working_directory(path: Path):
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


# --- the fixture sets -----------------------------------------------------------------------------

class _Recorder:
    """Stands in for talon: every extract_* call returns a token, every eq_ on a token is a case."""

    def __init__(self) -> None:
        self.inputs: list[str] = []
        self.cases: list[tuple[str, str, str]] = []  # (test, input, expected)
        self.test = ""

    def _probe(self, body: str | bytes) -> str:
        self.inputs.append(body.decode("utf8") if isinstance(body, bytes) else body)
        return _Probe(f"\x00P{len(self.inputs) - 1}\x00")

    extract_from_plain = extract_from_html = _probe

    def eq_(self, first: object, second: object, *_: object) -> None:
        for expected, actual in ((first, second), (second, first)):
            found = re.search(r"\x00P(\d+)\x00", actual) if isinstance(actual, str) else None
            if found and isinstance(expected, str):
                self.cases.append((self.test, self.inputs[int(found.group(1))], expected))
                return


class _Probe(str):
    def decode(self, *_: object) -> str:  # the tests call .decode on py2-era results
        return self


def _patched(*_: object, **__: object) -> Callable[[Callable], Callable]:
    def mark(function: Callable) -> Callable:
        function._patched = True  # type: ignore[attr-defined]  # tests of talon's own limits
        return function
    return mark


def talon_module_cases(tests: Path, module: str) -> list[tuple[str, str, str]]:
    """The (test, input, expected) triples of one of talon's test modules."""
    tree = ast.parse((tests / module).read_text(encoding="utf8"))
    tree.body = [node for node in tree.body if not isinstance(node, ast.Import | ast.ImportFrom)]
    recorder = _Recorder()
    fixtures = tests / "fixtures"
    namespace = {
        "quotations": recorder, "eq_": recorder.eq_, "ok_": lambda *a: None, "assert_false": lambda *a: None,
        "patch": SimpleNamespace(object=_patched), "Mock": lambda *a, **k: None, "six": SimpleNamespace(text_type=str),
        "u": SimpleNamespace(html_to_text=lambda reply: reply), "re": re, "os": os, "range": range,
        "StringIO": io.StringIO, "email": email, "STANDARD_REPLIES": str(fixtures / "standard_replies"),
        "REPLY_QUOTATIONS_SHARE_BLOCK": (fixtures / "reply-quotations-share-block.eml").read_text(),
        "OLK_SRC_BODY_SECTION": (fixtures / "OLK_SRC_BODY_SECTION.html").read_text(),
        "REPLY_SEPARATED_BY_HR": (fixtures / "reply-separated-by-hr.html").read_text(),
    }
    exec(compile(tree, str(tests / module), "exec"), namespace)  # noqa: S102 - the upstream test module
    with working_directory(tests.parent):
        for name, function in list(namespace.items()):
            if not name.startswith("test_") or not callable(function) or getattr(function, "_patched", False):
                continue
            if inspect.isgeneratorfunction(function):
                continue
            recorder.test = name
            try:
                function()
            except Exception:  # noqa: BLE001 - a test of talon's internals (markers, preprocess): no case
                pass
    numbered: list[tuple[str, str, str]] = []
    for test, body, expected in recorder.cases:
        count = sum(1 for other, _, _ in numbered if other.split("#")[0] == test)
        numbered.append((f"{test}#{count + 1}" if count else test, body, expected))
    return [case for case in numbered if visible_text(case[1]).strip()]


def talon_sets(root: Path) -> dict[str, list[Case]]:
    tests = root / "tests"
    text = [Case(name, body, None, expected)
            for name, body, expected in talon_module_cases(tests, "text_quotations_test.py")]
    html_cases = [Case(name, "", body, visible_text(expected))
                  for name, body, expected in talon_module_cases(tests, "html_quotations_test.py")]
    eml_text, eml_html = [], []
    replies = tests / "fixtures" / "standard_replies"
    for path in sorted(replies.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.compat32)
        answer = path.with_name(path.stem + "_reply_text")
        expected = answer.read_text().strip() if answer.exists() else "Hello"
        parts = {part.get_content_subtype(): part.get_payload(decode=True).decode("utf8", "replace")
                 for part in email.iterators.typed_subpart_iterator(message, "text")}
        eml_text.append(Case(path.stem, parts["plain"], None, expected))
        if "html" in parts and squash(visible_text(parts["html"])).startswith(squash(expected)):
            eml_html.append(Case(path.stem, "", parts["html"], expected))  # (outlook.eml's HTML says something else)
    return {"talon-text": text, "talon-eml": eml_text, "talon-eml-html": eml_html, "talon-html": html_cases}


def erp_set(root: Path, emails: Path) -> tuple[list[Case], str]:
    """email_reply_parser's mail and the answers its suite approves; also how that suite fared."""
    from email_reply_parser import EmailReplyParser

    module_path = root / "test" / "test_email_reply_parser.py"
    names = sorted(set(re.findall(r"""(?:get_email\(\s*['"]|test/emails/)(\w+)""", module_path.read_text())))
    with working_directory(root):
        spec = importlib.util.spec_from_file_location("upstream_erp_tests", module_path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        stream = io.StringIO()
        with redirect_stderr(stream):
            result = unittest.TextTestRunner(stream=stream, verbosity=0).run(
                unittest.defaultTestLoader.loadTestsFromModule(module))
    verdict = f"{result.testsRun - len(result.failures) - len(result.errors)}/{result.testsRun} upstream tests pass"
    cases = []
    for name in names:
        text = (emails / f"{name}.txt").read_text(encoding="utf8")
        # What the suite asserts is which fragments are hidden; for the two interleaved mails the quotes
        # between the answers are not hidden (`.reply` drops them, but no assertion says it should).
        visible = "\n".join(fragment.content for fragment in EmailReplyParser.read(text).fragments
                            if not fragment.hidden)
        cases.append(Case(name, text, None, visible))
    return cases, verdict


# --- the tools ------------------------------------------------------------------------------------

class _TextOf(html.parser.HTMLParser):
    """A neutral HTML-to-text renderer: visible text, a line break at each block."""

    BLOCKS = {"p", "div", "br", "tr", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr", "pre"}
    HIDDEN = {"head", "style", "script", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.hidden += tag in self.HIDDEN
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in self.HIDDEN and self.hidden > 0
        if tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def visible_text(markup: str) -> str:
    if "<" not in markup:
        return markup
    parser = _TextOf()
    parser.feed(markup)
    parser.close()
    return re.sub(r"\n\s*\n\s*", "\n\n", "\n".join(line.strip() for line in "".join(parser.parts).split("\n"))).strip()


def tools(names: list[str]) -> dict[str, Callable[[Case], str]]:
    available: dict[str, Callable[[Case], str]] = {}
    if "echo" in names:
        from echo.inbound.quotes import strip_reply
        available["echo"] = lambda case: strip_reply(case.text, case.html).reply
    if "talon" in names:
        from talon import quotations

        def talon(case: Case) -> str:
            if case.html is not None:
                return visible_text(quotations.extract_from_html(case.html))
            return quotations.extract_from_plain(case.text)
        available["talon"] = talon
    if "erp" in names:
        from email_reply_parser import EmailReplyParser
        available["erp"] = lambda case: EmailReplyParser.parse_reply(case.text or visible_text(case.html or ""))
    if "mpr" in names:
        from mailparser_reply import EmailReplyParser as MailParserReply
        from mailparser_reply.constants import MAIL_LANGUAGES
        parser = MailParserReply(languages=list(MAIL_LANGUAGES))
        available["mpr"] = lambda case: parser.parse_reply(text=case.text or visible_text(case.html or ""))
    return available


def squash(text: str) -> str:
    return "".join(unicodedata.normalize("NFC", text or "").split())


def score(answer: str, expected: str) -> tuple[bool, bool, bool]:
    """(exact, shows more than the answer, hides part of it), whitespace ignored."""
    got, want = squash(answer), squash(expected)
    if got == want:
        return True, False, False
    more = any(squash(line) and squash(line) not in want for line in answer.splitlines())
    hid = any(squash(line) and squash(line) not in got for line in expected.splitlines()) or not got
    return False, more, hid


# --- cost -----------------------------------------------------------------------------------------

def heavy_mails() -> dict[str, tuple[str, str | None]]:
    """Mails of about 100 KB, realistic and hostile, to time Echo's stripper on."""
    paragraph = "Hello there, this is a paragraph of an earlier message with a link https://example.com/x and words."
    gmail = "".join(f'<div class="gmail_quote"><div class="gmail_attr">On Mon, Jan {n % 28 + 1}, 2024 at 10:00 AM '
                    f'Bob &lt;bob@example.com&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0 0 0 '
                    f'.8ex;border-left:1px #ccc solid"><div dir="ltr"><p>{paragraph}</p><p>{paragraph}</p>'
                    for n in range(220)) + "</div></blockquote></div>" * 220
    text = "\n".join(["Thanks, that fixed it.", "", "On Mon, Jan 1, 2024 at 10:00 AM Bob <bob@example.com> wrote:"]
                     + [">" * (1 + n // 200) + " " + paragraph for n in range(950)])
    outlook = ("Thanks!\n\nFrom: Bob <bob@example.com>\nSent: Monday\nTo: Ann\nSubject: Re: x\n\n"
               + (paragraph + "\n") * 950)
    return {
        "gmail thread (html)": ("", '<div dir="ltr">Thanks, that fixed it.</div>' + gmail),
        "quoted thread (text)": (text, None),
        "outlook thread (text)": (outlook, None),
        "one 100 KB line": ("x" * 100_000, None),
        "100 KB of '> '": ("> " * 50_000, None),
        "'On 1, a' lines": ("On 1, a b c d e f\n" * 6000, None),
        "header-like lines": ("From: a@b.c x\n" * 7000, None),
        "unclosed tags": ("", "<div " * 20_000),
        "quote storm": ("", '<a title="' * 10_000 + "<blockquote>" * 5000),
        "deep blockquotes": ("", "<blockquote>a" * 8000 + "</blockquote>" * 8000),
    }


def time_heavy() -> dict[str, float]:
    from echo.inbound.quotes import strip_reply
    timings = {}
    for name, (text, markup) in heavy_mails().items():
        best = float("inf")
        for _ in range(15):  # the best of 15 CPU times: a shared machine's noise only ever adds
            start = time.process_time()
            strip_reply(text, markup)
            best = min(best, (time.process_time() - start) * 1000)
        timings[f"{name} ({len(text) + len(markup or '') + 512 >> 10} KB)"] = best
    return timings


# --- the report -----------------------------------------------------------------------------------

def run(sets: dict[str, list[Case]], available: dict[str, Callable[[Case], str]]) -> dict:
    report: dict = {"sets": {}, "failures": {}}
    for set_name, cases in sets.items():
        row = {}
        for tool, strip in available.items():
            exact = more = hid = 0
            elapsed = 0.0
            for case in cases:
                start = time.perf_counter()
                try:
                    answer = strip(case)
                except Exception as error:  # noqa: BLE001 - a crash is a wrong answer, not the end of the bench
                    answer = f"<{type(error).__name__}>"
                elapsed += time.perf_counter() - start
                ok, shows_more, hides = score(answer, case.expected)
                exact, more, hid = exact + ok, more + shows_more, hid + hides
                if tool == "echo" and not ok:
                    report["failures"].setdefault(set_name, []).append(
                        {"case": case.name, "expected": case.expected, "echo": answer})
            row[tool] = {"exact": exact, "more": more, "hid": hid, "cases": len(cases),
                         "ms_per_case": round(1000 * elapsed / max(1, len(cases)), 3)}
        report["sets"][set_name] = row
    return report


def print_report(report: dict, names: list[str]) -> None:
    header = f"{'set':<16}{'cases':>6}  " + "".join(f"{name:>24}" for name in names)
    print(header)
    print(f"{'':<24}" + "".join(f"{'exact  more  hid   ms':>24}" for _ in names))
    totals = {name: [0, 0, 0] for name in names}
    count = 0
    for set_name, row in report["sets"].items():
        cases = next(iter(row.values()))["cases"]
        count += cases
        cells = []
        for name in names:
            cell = row[name]
            keys = ("exact", "more", "hid")
            totals[name] = [total + cell[key] for total, key in zip(totals[name], keys, strict=True)]
            cells.append(f"{100 * cell['exact'] / cases:5.1f}% {cell['more']:>4} {cell['hid']:>4} "
                         f"{cell['ms_per_case']:>5.2f}")
        print(f"{set_name:<16}{cases:>6}  " + "".join(f"{cell:>24}" for cell in cells))
    cells = [f"{100 * exact / count:5.1f}% {more:>4} {hid:>4}      " for exact, more, hid in totals.values()]
    print(f"{'all':<16}{count:>6}  " + "".join(f"{cell:>24}" for cell in cells))
    for name, (exact, more, hid) in totals.items():
        print(f"  {name}: {exact}/{count} exact, shows more in {100 * more / count:.1f} %, hides part in "
              f"{100 * hid / count:.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, default=CACHE, help=f"where fixtures are unpacked ({CACHE})")
    parser.add_argument("--erp-repo", default=os.environ.get("ECHO_BENCH_ERP_REPO"),
                        help="a clone of email_reply_parser's repository (its test/emails are not on PyPI)")
    parser.add_argument("--tools", default="echo,talon,erp,mpr",
                        help="echo, talon, erp (email_reply_parser), mpr (mail-parser-reply, all languages)")
    parser.add_argument("--failures", action="store_true", help="list the cases Echo gets wrong")
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    options.cache.mkdir(parents=True, exist_ok=True)

    names = options.tools.split(",")
    sets = talon_sets(sdist(TALON, options.cache))
    erp_root = sdist(ERP, options.cache)
    emails = erp_emails(options.erp_repo, erp_root)
    verdict = "skipped: no --erp-repo (email_reply_parser's sdist has no test mail)"
    if emails is not None:
        sets["erp"], verdict = erp_set(erp_root, emails)
    report = run(sets, tools(names))
    report["erp_suite"] = verdict
    report["echo_ms_100kb"] = time_heavy() if "echo" in names else {}
    if options.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return
    print_report(report, names)
    print(f"\nemail_reply_parser set: {verdict}")
    print("\nEcho on ~100 KB mails (best CPU time of 15 runs, ms):")
    for name, ms in report["echo_ms_100kb"].items():
        print(f"  {name:<36}{ms:8.2f}")
    if options.failures:
        for set_name, failures in report["failures"].items():
            for failure in failures:
                print(f"\n--- {set_name}: {failure['case']}\nexpected: {failure['expected']!r}\necho:     "
                      f"{failure['echo']!r}")


if __name__ == "__main__":
    main()
