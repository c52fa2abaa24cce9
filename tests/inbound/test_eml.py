"""Tests for converting raw RFC 822 mail into Postmark's inbound webhook JSON."""

import base64
import hashlib
import json
import uuid
from pathlib import Path

import pytest

from echo.inbound.eml import message_to_postmark

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
SUPPORT = "support@raxx.app"
IN_REPLY_TO = "0100018f-out-2@mtasv.net"
REFERENCES = "0100018f-out-1@mtasv.net> <0100018f-out-2@mtasv.net"

ALICE = "alice@example.com"
EXPORT_SUBJECT = "Re: Cannot export my trades [TKT-0001]"

# file: (sender email, sender name, decoded subject, reply word, RFC Message-ID)
FIXTURE_FACTS = {
    "gmail_multipart.eml": (
        ALICE, "Alice Martin", EXPORT_SUBJECT, "pineapple",
        "<CAH7qXw9Lm3K+u4pZ0vT_B2sYd8fNc1jRgQe6hW5oA9xK3tE7Mg@mail.gmail.com>",
    ),
    "outlook_html.eml": (
        ALICE, "Alice Martin", "RE: Cannot export my trades [TKT-0001]", "quartz",
        "<DB9PR04MB84127E3F1C2A5B6D9E0F4A7B8C1D2E3F4A5BA@DB9PR04MB8412.eurprd04.prod.outlook.com>",
    ),
    "apple_mail.eml": (
        ALICE, "Alice Martin", EXPORT_SUBJECT, "lighthouse",
        "<5C3E9A71-2D4B-4E8F-A6C1-7B9D0E2F3A4B@example.com>",
    ),
    "thunderbird_plain.eml": (
        ALICE, "Alice Martin", "Re: Problème d'export des opérations [TKT-0001]", "marmalade",
        "<a3f7c2e1-9b4d-4e6a-8c5f-2d1e0b9a7c63@example.com>",
    ),
    "iphone.eml": (
        ALICE, "Alice Martin", EXPORT_SUBJECT, "saxophone",
        "<7E1A4C2B-9D3F-4B6E-8A5C-0F2D1E3B4A96@example.com>",
    ),
    "android_gmail.eml": (
        ALICE, "Алиса Мартин", "Re: Не работает экспорт сделок [TKT-0001]", "tangerine",
        "<CAKf3Lq8vN2xT5mR9pW1sB4dJ7gH0cZ3aE6uY8iO_k2tM5Q1rVw@mail.gmail.com>",
    ),
    "japanese_iso2022.eml": (
        ALICE, "アリス・マーティン", "Re: エクスポートできません [TKT-0001]", "origami",
        "<20250309191530.4F2A.A1B2C3D4@example.com>",
    ),
    "auto_reply.eml": (
        ALICE, "Alice Martin", "Out of office: Re: Cannot export my trades [TKT-0001]", "vacation",
        "<E1trT4q-0007Kx-2B@mail.example.com>",
    ),
    "new_ticket.eml": (
        "bob@example.org", "Bob Okafor", "Login link never arrives", "glacier",
        "<CAN2bXq5tR8mK1vP7wL3sB9dJ0gH4cZ6aE2uY5iO+q7tM1Q9rVx@mail.gmail.com>",
    ),
}
REPLIES = sorted(name for name in FIXTURE_FACTS if name != "new_ticket.eml")

POSTMARK_KEYS = {
    "From", "FromName", "FromFull", "To", "ToFull", "Cc", "CcFull", "Bcc", "OriginalRecipient",
    "ReplyTo", "Subject", "MessageID", "Date", "MailboxHash", "TextBody", "HtmlBody",
    "StrippedTextReply", "Tag", "Headers", "Attachments",
}


def load(name, substitute=True):
    """Read a fixture, filling in the threading placeholders unless told not to."""
    raw = (FIXTURES / name).read_bytes()
    if substitute:
        raw = raw.replace(b"{{IN_REPLY_TO}}", IN_REPLY_TO.encode())
        raw = raw.replace(b"{{REFERENCES}}", REFERENCES.encode())
    return raw


def convert(name, **kwargs):
    """Convert a fixture with the support address configured."""
    return message_to_postmark(load(name, **kwargs), support_address=SUPPORT)


def header(payload, name):
    """Return the value of the first header called `name`, ignoring case."""
    values = [h["Value"] for h in payload["Headers"] if h["Name"].lower() == name.lower()]
    return values[0] if values else None


def attachment(payload, name):
    """Return the attachment called `name`."""
    (found,) = [a for a in payload["Attachments"] if a["Name"] == name]
    return found


def decoded(att):
    """Return an attachment's bytes, checking that its declared length matches."""
    data = base64.b64decode(att["Content"], validate=True)
    assert att["ContentLength"] == len(data)
    return data


def build(*lines, body=""):
    """Assemble a small raw message from header lines and a body."""
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("utf-8")


# --- every fixture ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE_FACTS))
def test_fixture_converts_to_postmark_shape(name):
    payload = convert(name)
    assert set(payload) == POSTMARK_KEYS
    assert json.loads(json.dumps(payload)) == payload
    assert payload["Bcc"] == payload["StrippedTextReply"] == payload["Tag"] == ""
    assert uuid.UUID(payload["MessageID"]).version == 5
    assert payload["Date"]


@pytest.mark.parametrize("name", sorted(FIXTURE_FACTS))
def test_fixture_sender_subject_and_recipient(name):
    email, sender_name, subject, _, _ = FIXTURE_FACTS[name]
    payload = convert(name)
    assert payload["FromFull"] == {"Email": email, "Name": sender_name, "MailboxHash": ""}
    assert payload["FromName"] == sender_name
    assert email in payload["From"] and sender_name in payload["From"]
    assert payload["Subject"] == subject
    assert [r["Email"] for r in payload["ToFull"]] == [SUPPORT]
    assert payload["OriginalRecipient"] == SUPPORT
    assert payload["MailboxHash"] == ""


@pytest.mark.parametrize("name", sorted(FIXTURE_FACTS))
def test_fixture_reply_word_is_in_the_body(name):
    word = FIXTURE_FACTS[name][3]
    payload = convert(name)
    assert word in payload["TextBody"] or word in payload["HtmlBody"]
    assert "\r" not in payload["TextBody"]


@pytest.mark.parametrize("name", sorted(FIXTURE_FACTS))
def test_lifted_headers_stay_out_of_the_headers_list(name):
    names = {h["Name"].lower() for h in convert(name)["Headers"]}
    assert names.isdisjoint({"from", "to", "cc", "bcc", "subject", "date", "reply-to"})
    assert "received" in names


@pytest.mark.parametrize("name", REPLIES)
def test_reply_headers_carry_the_threading_placeholders(name):
    message_id = FIXTURE_FACTS[name][4]
    payload = convert(name, substitute=False)
    assert header(payload, "Message-ID") == message_id
    assert header(payload, "In-Reply-To") == "<{{IN_REPLY_TO}}>"
    assert header(payload, "References") == "<{{REFERENCES}}>"


@pytest.mark.parametrize("name", REPLIES)
def test_substituted_threading_headers_come_through(name):
    payload = convert(name)
    assert header(payload, "In-Reply-To") == f"<{IN_REPLY_TO}>"
    assert header(payload, "References") == f"<{REFERENCES}>"


@pytest.mark.parametrize("name", REPLIES)
def test_reply_quotes_the_support_message(name):
    payload = convert(name)
    assert "Raxx Support" in payload["TextBody"] + payload["HtmlBody"]


# --- per-client details ----------------------------------------------------------------------


def test_gmail_has_both_alternatives_decoded_from_quoted_printable():
    payload = convert("gmail_multipart.eml")
    assert "the portfolio is called “pineapple” and it" in payload["TextBody"]
    assert "quick answer — the" in payload["TextBody"]
    assert '<div dir="ltr">' in payload["HtmlBody"] and 'class="gmail_quote"' in payload["HtmlBody"]
    assert "=3D" not in payload["HtmlBody"] and "=\n" not in payload["HtmlBody"]
    assert payload["Attachments"] == []


def test_outlook_windows_1252_curly_quotes_and_euro():
    payload = convert("outlook_html.eml")
    for body in (payload["TextBody"], payload["HtmlBody"]):
        assert "my “quartz” portfolio – it’s the biggest one, about €48,000" in body
        assert "\ufffd" not in body
    assert "MsoNormal" in payload["HtmlBody"] and "divRplyFwdMsg" in payload["HtmlBody"]
    assert header(payload, "Thread-Index").startswith("AQHb")
    assert header(payload, "Accept-Language") == "en-GB, en-US"
    assert header(payload, "X-MS-Has-Attach") == ""


def test_outlook_folded_headers_are_unfolded():
    payload = convert("outlook_html.eml")
    assert header(payload, "Received").endswith("with HTTPS; Tue, 4 Mar 2025 08:31:49 +0000")
    assert all("\n" not in h["Value"] for h in payload["Headers"])


def test_apple_mail_inline_image_is_an_attachment_with_its_content_id():
    payload = convert("apple_mail.eml")
    image = attachment(payload, "export-error.png")
    assert image["ContentType"] == "image/png"
    assert image["ContentID"] == "8D4F2A1B-3C5E-4A7D-9B6F-0E1C2D3A4B5C"
    data = decoded(image)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert hashlib.sha256(data).hexdigest() == (
        "dc21d410704be0233c7b4bcd8b61e7d58c5acceda931cfda9024cc99d947c767"
    )
    assert 'src="cid:8D4F2A1B-3C5E-4A7D-9B6F-0E1C2D3A4B5C"' in payload["HtmlBody"]
    assert '<blockquote type="cite">' in payload["HtmlBody"]
    assert len(payload["Attachments"]) == 1


def test_apple_mail_flowed_plain_text_is_kept():
    text = convert("apple_mail.eml")["TextBody"]
    assert "It happens with the lighthouse \nportfolio" in text
    assert "> On 4 Mar 2025, at 17:02, Raxx Support <support@raxx.app> wrote:" in text


def test_thunderbird_latin1_body_and_encoded_folded_subject():
    payload = convert("thunderbird_plain.eml")
    assert "Merci pour votre réponse. J'ai réessayé" in payload["TextBody"]
    assert "« marmalade » ce matin, même résultat" in payload["TextBody"]
    assert "Le 05/03/2025 à 17:02, Raxx Support a écrit" in payload["TextBody"]
    assert payload["HtmlBody"] == ""
    assert header(payload, "User-Agent") == "Mozilla Thunderbird"


def test_iphone_base64_bodies_emoji_and_pdf_attachment():
    payload = convert("iphone.eml")
    assert "practise my saxophone 🎷 while it runs" in payload["TextBody"]
    assert "it’s the same 😕" in payload["TextBody"]
    assert "Sent from my iPhone" in payload["TextBody"]
    # iOS splits the HTML around the attachment; both halves are kept.
    assert "saxophone 🎷" in payload["HtmlBody"] and "Sent from my iPhone" in payload["HtmlBody"]
    (pdf,) = payload["Attachments"]
    assert (pdf["Name"], pdf["ContentType"], pdf["ContentID"]) == (
        "export-report.pdf", "application/pdf", "",
    )
    data = decoded(pdf)
    assert data.startswith(b"%PDF-1.4") and data.rstrip().endswith(b"%%EOF")
    assert hashlib.sha256(data).hexdigest() == (
        "a5b140495eafc2509301126828056ba3ccbd87c71632e29d7f8b3e3ff86113c7"
    )


def test_android_gmail_utf8_base64_subject_name_and_body():
    payload = convert("android_gmail.eml")
    assert "Портфель называется tangerine" in payload["TextBody"]
    assert "Портфель называется tangerine" in payload["HtmlBody"]
    assert payload["From"] == "Алиса Мартин <alice@example.com>"
    assert '<div dir="auto">' in payload["HtmlBody"]


def test_japanese_iso_2022_jp_body_and_subject():
    payload = convert("japanese_iso2022.eml")
    assert "ご返信ありがとうございます。" in payload["TextBody"]
    assert "origami というポートフォリオ" in payload["TextBody"]
    assert "\ufffd" not in payload["TextBody"]
    assert header(payload, "X-Mailer").startswith("Becky!")


def test_auto_reply_keeps_its_auto_submitted_headers():
    payload = convert("auto_reply.eml")
    assert header(payload, "Auto-Submitted") == "auto-replied"
    assert header(payload, "X-Autoreply") == "yes"
    assert header(payload, "Precedence") == "auto_reply"
    assert header(payload, "Return-Path") == "<>"
    assert "I am on vacation until Monday 17 March" in payload["TextBody"]


def test_new_ticket_has_no_threading_headers_and_a_text_attachment():
    payload = convert("new_ticket.eml")
    assert header(payload, "In-Reply-To") is None and header(payload, "References") is None
    assert payload["ToFull"] == [{"Email": SUPPORT, "Name": "", "MailboxHash": ""}]
    assert 'Our workspace is called "glacier"' in payload["TextBody"]
    assert "glacier" in payload["HtmlBody"]
    (log,) = payload["Attachments"]
    assert (log["Name"], log["ContentType"], log["ContentID"]) == (
        "browser-console.txt", "text/plain", "f_m84c2x7l0",
    )
    data = decoded(log)
    assert b"429 Too Many Requests" in data
    assert "429 Too Many Requests" not in payload["TextBody"]
    assert hashlib.sha256(data).hexdigest() == (
        "4a10a1a54f1972fbdd19f101f46931dc7acae18a581f84dfc4343bbc2f88f435"
    )


def test_line_endings_do_not_change_the_result():
    lf = load("gmail_multipart.eml")
    crlf = lf.replace(b"\n", b"\r\n")
    assert message_to_postmark(lf, SUPPORT) == message_to_postmark(crlf, SUPPORT)


# --- MailboxHash -----------------------------------------------------------------------------


def with_to(address, header_name="To"):
    """Return the Gmail fixture with `address` as its To, or added as a Cc."""
    raw = load("gmail_multipart.eml")
    original = b"To: Raxx Support <support@raxx.app>"
    if header_name == "To":
        return raw.replace(original, f"To: {address}".encode())
    return raw.replace(original, f"{header_name}: {address}\n".encode() + original)


def test_mailbox_hash_comes_from_the_plus_address():
    payload = message_to_postmark(with_to("Raxx Support <support+abc123@raxx.app>"), SUPPORT)
    assert payload["MailboxHash"] == "abc123"
    assert payload["ToFull"] == [
        {"Email": "support+abc123@raxx.app", "Name": "Raxx Support", "MailboxHash": "abc123"},
    ]
    assert payload["OriginalRecipient"] == "support+abc123@raxx.app"


def test_mailbox_hash_ignores_case_of_local_base_and_domain():
    raw = with_to("Support+Tk9Q.x_1@RAXX.App")
    assert message_to_postmark(raw, SUPPORT)["MailboxHash"] == "Tk9Q.x_1"


def test_mailbox_hash_found_in_cc():
    raw = with_to("support+cc42@raxx.app", header_name="Cc")
    payload = message_to_postmark(raw, SUPPORT)
    assert payload["MailboxHash"] == "cc42"
    assert [r["Email"] for r in payload["CcFull"]] == ["support+cc42@raxx.app"]


@pytest.mark.parametrize(
    "address, support",
    [
        ("support+abc123@raxx.app", None),
        ("support+abc123@other.app", SUPPORT),
        ("helpdesk+abc123@raxx.app", SUPPORT),
        ("support+@raxx.app", SUPPORT),
        ("support@raxx.app", SUPPORT),
    ],
)
def test_mailbox_hash_is_empty_without_a_matching_plus_address(address, support):
    assert message_to_postmark(with_to(address), support)["MailboxHash"] == ""


# --- MessageID -------------------------------------------------------------------------------


def test_message_id_is_deterministic_per_message():
    raw = load("iphone.eml")
    assert message_to_postmark(raw)["MessageID"] == message_to_postmark(raw)["MessageID"]


def test_message_id_differs_between_messages():
    ids = {convert(name)["MessageID"] for name in FIXTURE_FACTS}
    assert len(ids) == len(FIXTURE_FACTS)


def test_message_id_follows_the_rfc_message_id_not_the_threading_headers():
    assert convert("outlook_html.eml")["MessageID"] == convert(
        "outlook_html.eml", substitute=False
    )["MessageID"]


def test_message_id_without_rfc_message_id_hashes_the_raw_bytes():
    first = build("From: a@example.com", "Subject: one", body="hello")
    second = build("From: a@example.com", "Subject: two", body="hello")
    assert message_to_postmark(first)["MessageID"] == message_to_postmark(first)["MessageID"]
    assert message_to_postmark(first)["MessageID"] != message_to_postmark(second)["MessageID"]


# --- attachments and decoding from hand-built messages ---------------------------------------

ALL_BYTES = bytes(range(256)) * 3


def multipart(*parts, body="Hello"):
    """Assemble a multipart/mixed message from raw part texts after a plain body."""
    chunks = ["--XyZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + body + "\r\n"]
    chunks += [f"--XyZ\r\n{part}\r\n" for part in parts]
    return build(
        "From: Alice <alice@example.com>",
        "To: support@raxx.app",
        "Subject: parts",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="XyZ"',
        body="".join(chunks) + "--XyZ--\r\n",
    )


def b64_part(headers, data):
    """Return a base64 MIME part with the given header lines."""
    encoded = base64.encodebytes(data).decode("ascii").replace("\n", "\r\n")
    return "\r\n".join([*headers, "Content-Transfer-Encoding: base64", "", encoded])


def test_binary_attachment_roundtrips_exactly():
    disposition = 'Content-Disposition: attachment; filename="all.bin"'
    raw = multipart(b64_part(["Content-Type: application/octet-stream", disposition], ALL_BYTES))
    (att,) = message_to_postmark(raw)["Attachments"]
    assert att["Name"] == "all.bin" and decoded(att) == ALL_BYTES


def test_encoded_filenames_are_decoded():
    cd = "Content-Disposition: attachment; "
    raw = multipart(
        b64_part(["Content-Type: text/csv", cd + "filename*=UTF-8''%E2%82%AC%20rates.csv"], b"1"),
        b64_part(["Content-Type: image/png", cd + 'filename="=?UTF-8?B?w6l0w6kucG5n?="'], b"2"),
        b64_part(['Content-Type: application/pdf; name="=?ISO-8859-1?Q?R=E9sum=E9.pdf?="'], b"3"),
        b64_part(["Content-Type: text/plain", cd + 'filename="../../evil.txt"'], b"4"),
    )
    names = [a["Name"] for a in message_to_postmark(raw)["Attachments"]]
    assert names == ["€ rates.csv", "été.png", "Résumé.pdf", "evil.txt"]


def test_missing_filenames_are_made_up_from_the_type():
    raw = multipart(
        b64_part(["Content-Type: image/png", "Content-ID: <logo@x>"], b"\x89PNG"),
        b64_part(["Content-Type: application/octet-stream", "Content-Disposition: inline"], b"0"),
        b64_part(["Content-Type: application/x-made-up"], b"\x01"),
    )
    atts = message_to_postmark(raw)["Attachments"]
    assert [a["Name"] for a in atts] == ["image-1.png", "attachment-2.bin", "attachment-3.bin"]
    assert [a["ContentID"] for a in atts] == ["logo@x", "", ""]


def test_attached_message_becomes_an_eml_attachment():
    inner = "From: carol@example.net\r\nSubject: Original problem\r\n\r\nThe first report.\r\n"
    raw = multipart("Content-Type: message/rfc822\r\n\r\n" + inner)
    payload = message_to_postmark(raw)
    (att,) = payload["Attachments"]
    assert (att["Name"], att["ContentType"]) == ("forwarded-message.eml", "message/rfc822")
    data = decoded(att)
    assert b"Subject: Original problem" in data and b"The first report." in data
    assert "The first report." not in payload["TextBody"]
    assert payload["TextBody"] == "Hello"


def test_attached_message_keeps_its_own_filename():
    inner = "Subject: Original problem\r\n\r\nThe first report.\r\n"
    raw = multipart('Content-Type: message/rfc822; name="Original problem.eml"\r\n\r\n' + inner)
    (att,) = message_to_postmark(raw)["Attachments"]
    assert att["Name"] == "Original problem.eml"


def test_reply_to_cc_and_folded_subject():
    raw = build(
        "From: Alice <alice@example.com>",
        "To: support@raxx.app",
        'Cc: "Martin, Bob" <bob@example.org>, =?UTF-8?Q?Zo=C3=AB?= <zoe@example.org>',
        "Reply-To: Alice Private <alice.private@example.com>",
        "Subject: =?UTF-8?Q?R=C3=A9ponse?=\r\n =?UTF-8?Q?_longue?= and\r\n\tfolded",
        body="x",
    )
    payload = message_to_postmark(raw)
    assert payload["Subject"] == "Réponse longue and folded"
    assert payload["ReplyTo"] == "Alice Private <alice.private@example.com>"
    assert [(r["Name"], r["Email"]) for r in payload["CcFull"]] == [
        ("Martin, Bob", "bob@example.org"), ("Zoë", "zoe@example.org"),
    ]


@pytest.mark.parametrize(
    "charset, data, expected",
    [
        ("koi8-r", "Привет".encode("koi8-r"), "Привет"),
        ("gb2312", "你好".encode("gb2312"), "你好"),
        ("iso-8859-1", "Déjà vu".encode("latin-1"), "Déjà vu"),
        ("us-ascii", "naïve UTF-8".encode(), "naïve UTF-8"),
        ("x-no-such-charset", "café".encode(), "café"),
    ],
)
def test_body_charsets(charset, data, expected):
    head = build(f"Content-Type: text/plain; charset={charset}", "Content-Transfer-Encoding: 8bit")
    assert message_to_postmark(head + data)["TextBody"] == expected


def test_html_only_message_leaves_text_body_empty():
    raw = build("Content-Type: text/html; charset=utf-8", body="<p>Only <b>HTML</b></p>")
    payload = message_to_postmark(raw)
    assert (payload["TextBody"], payload["HtmlBody"]) == ("", "<p>Only <b>HTML</b></p>")


# --- robustness ------------------------------------------------------------------------------

WEIRD_MAIL = {
    "empty": b"",
    "garbage": bytes(range(256)) * 4,
    "only_newlines": b"\r\n\r\n\n\n",
    "headers_only": b"Subject: no body",
    "unknown_charset": build(
        "Subject: =?x-klingon?Q?qapla=E9?=", "Content-Type: text/plain; charset=x-klingon"
    ) + b"qapla\xe9 plain",
    "nul_in_charset": build('Content-Type: text/plain; charset="utf\x00-8"', body="body"),
    "broken_boundary": build(
        'Content-Type: multipart/alternative; boundary="abc"',
        body="--xyz\r\nContent-Type: text/plain\r\n\r\nlost part\r\n",
    ),
    "missing_boundary": build("Content-Type: multipart/mixed", body="no boundary parameter\r\n"),
    "unterminated": build(
        "Content-Type: multipart/mixed; boundary=b",
        body="--b\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n",
    ),
    "bad_base64": build(
        "Content-Type: text/plain", "Content-Transfer-Encoding: base64", body="!!!not base64@@@"
    ),
    "unknown_encoding": build(
        "Content-Type: text/plain", "Content-Transfer-Encoding: x-martian", body="hello"
    ),
    "eight_bit_headers": b"From: Ren\xe9 <r@example.com>\r\nSubject: caf\xc3\xa9 \xff\r\n\r\nbody",
    "bad_addresses": build(
        'From: <<>>, @@, "unterminated', "To: undisclosed-recipients:;", "Cc: ,,,", body="body"
    ),
    "bad_content_type": build(
        'Content-Type: ;;;=="', "Content-Disposition: attachment; filename=", body="body"
    ),
    "deep_nesting": b"".join(
        b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n" % (i, i) for i in range(300)
    ) + b"\r\ndeep\r\n",
}


@pytest.mark.parametrize("name", sorted(WEIRD_MAIL))
def test_weird_mail_never_raises(name):
    payload = message_to_postmark(WEIRD_MAIL[name], support_address=SUPPORT)
    assert set(payload) == POSTMARK_KEYS
    json.dumps(payload)


def test_weird_mail_keeps_what_text_it_can():
    def text(name):
        return message_to_postmark(WEIRD_MAIL[name])["TextBody"]

    assert "qapla" in text("unknown_charset")
    assert "lost part" in text("broken_boundary")
    assert "no boundary parameter" in text("missing_boundary")
    eight_bit = message_to_postmark(WEIRD_MAIL["eight_bit_headers"])
    assert eight_bit["FromName"] == "René" and eight_bit["Subject"].startswith("caf")


def test_empty_message_gives_empty_fields():
    payload = message_to_postmark(b"", support_address=SUPPORT)
    assert payload["From"] == payload["Subject"] == payload["TextBody"] == ""
    assert payload["FromFull"] == {"Email": "", "Name": "", "MailboxHash": ""}
    assert payload["ToFull"] == payload["Headers"] == payload["Attachments"] == []
    assert payload["OriginalRecipient"] == SUPPORT


@pytest.mark.parametrize("name", sorted(FIXTURE_FACTS))
def test_truncated_fixtures_never_raise(name):
    raw = load(name)
    for cut in range(0, len(raw), max(1, len(raw) // 40)):
        message_to_postmark(raw[:cut], support_address=SUPPORT)
