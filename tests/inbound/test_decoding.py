"""Decoding what mail clients really send: named inline text, raw 8-bit headers, invitations, winmail.dat."""

import base64
import hashlib
import struct
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from echo.attachments import tnef
from echo.attachments.models import Attachment
from echo.attachments.service import decode_files
from echo.inbound import eml
from echo.inbound.eml import message_to_postmark
from echo.inbound.schemas import Attachment as PostmarkAttachment
from tests.mailbuilder import attachment, inbound_payload, post_inbound

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "mail"
WINMAIL = (FIXTURES / "winmail.dat").read_bytes()
AUTHORS_SHA256 = "36c47da7d11846caf0474a4b3df83bb4eba9ea01d2bca500c288fa108e123d28"
README_SHA256 = "d0f163180d6ad5d8d3b4e7c6bc0cc948d05888bff0f69dba375b946ea4c6b0fa"
LIMIT = 25 * 1024 * 1024


def mixed(*parts: bytes, headers: bytes = b"") -> bytes:
    """A multipart/mixed message from Alice holding the given raw parts."""
    head = (b"From: Alice Martin <alice@example.com>\r\nTo: Raxx Support <support@raxx.app>\r\n"
            b"Subject: Parts\r\nMIME-Version: 1.0\r\n" + headers
            + b'Content-Type: multipart/mixed; boundary="=_mixed"\r\n\r\n')
    return head + b"".join(b"--=_mixed\r\n" + part + b"\r\n" for part in parts) + b"--=_mixed--\r\n"


def names(payload: dict) -> list[str]:
    return [a["Name"] for a in payload["Attachments"]]


# --- inline text parts that carry a filename --------------------------------------------------


def test_inline_text_with_a_filename_is_the_body():
    raw = mixed(
        b'Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: inline; filename="message.txt"\r\n\r\n'
        b"The export still fails.",
        b'Content-Type: text/plain; charset=utf-8; name="signature.txt"\r\n\r\nAlice, Raxx user since 2019',
        b'Content-Type: text/html; charset=utf-8\r\nContent-Disposition: inline; filename="part.html"\r\n\r\n'
        b"<p>The export still fails.</p>",
    )
    payload = message_to_postmark(raw)
    assert payload["TextBody"] == "The export still fails.\nAlice, Raxx user since 2019"
    assert payload["HtmlBody"] == "<p>The export still fails.</p>"
    assert payload["Attachments"] == []


def test_text_declared_an_attachment_stays_a_file():
    raw = mixed(
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nSee the log.",
        b'Content-Type: text/plain; name="export.log"\r\nContent-Disposition: attachment; filename="export.log"\r\n'
        b"\r\nERROR 429",
        b"Content-Type: text/html\r\nContent-Disposition: attachment\r\n\r\n<p>saved page</p>",
    )
    payload = message_to_postmark(raw)
    assert payload["TextBody"] == "See the log." and payload["HtmlBody"] == ""
    assert names(payload) == ["export.log", "attachment-2.html"]


@pytest.mark.parametrize("name, files", [
    ("apple_mail.eml", ["export-error.png"]), ("iphone.eml", ["export-report.pdf"]),
    ("new_ticket.eml", ["browser-console.txt"]), ("gmail_multipart.eml", []), ("outlook_html.eml", []),
    ("thunderbird_plain.eml", []), ("android_gmail.eml", []), ("japanese_iso2022.eml", []),
    ("auto_reply.eml", []),
])
def test_fixture_attachments_are_unchanged(name, files):
    assert names(message_to_postmark((FIXTURES / name).read_bytes())) == files


# --- undeclared 8-bit bytes -------------------------------------------------------------------

# What legacy clients send: subject, display name and filename as raw bytes of the local charset.
LOCAL_MAIL = {
    "koi8_r": ("The Bat! (v3.99.3) Professional", "Иван Петров", "Не работает экспорт сделок",
               "Добрый день! Экспорт сделок падает с ошибкой.", "отчёт.pdf"),
    "cp1251": ("Microsoft Outlook Express 6.00.2900.5512", "Ольга Смирнова", "Счёт за март не пришёл",
               "Здравствуйте, счёт за март так и не пришёл на почту.", "Счёт.pdf"),
    "shift_jis": ("Becky! ver. 2.75.02 [ja]", "山田太郎", "エクスポートできません",
                  "お世話になっております。取引のエクスポートができません。", "報告書.pdf"),
    "euc_kr": ("Microsoft Outlook Express 6.00.2800.1106", "김민수", "내보내기가 작동하지 않습니다",
               "안녕하세요. 거래 내역 내보내기가 작동하지 않습니다.", "보고서.pdf"),
    "gb18030": ("Foxmail 6, 15, 201, 21 [cn]", "王小明", "无法导出我的交易记录",
                "您好，我无法导出我的交易记录，请帮忙看看。", "报告.pdf"),
    "big5": ("Foxmail 6, 15, 201, 26 [tw]", "陳大文", "無法匯出我的交易紀錄",
             "您好，我無法匯出我的交易紀錄，請協助處理。", "報告.pdf"),
    "cp1252": ("Microsoft Outlook Express 6.00.2900.5931", "Café Müller", "Réunion à Zürich – déjà vu?",
               "Bonjour, l’export ne marche toujours pas. Grüße!", "Übersicht.pdf"),
    "latin_1": ("Eudora Version 7.1.0.9", "René Lefèvre", "Problème d'accès",
                "Je n'arrive plus à exporter mes opérations.", "reçu.pdf"),
}


def local_mail(charset: str) -> bytes:
    mailer, name, subject, body, filename = LOCAL_MAIL[charset]
    return (
        b"From: " + name.encode(charset) + b" <customer@example.net>\r\n"
        b"To: Raxx Support <support@raxx.app>\r\n"
        b"Subject: " + subject.encode(charset) + b"\r\n"
        b"Date: Tue, 4 Mar 2025 09:12:00 +0300\r\n"
        b"Message-ID: <000a01db8cd2$4f1e2a30$0201a8c0@home>\r\n"
        b"X-Mailer: " + mailer.encode() + b"\r\n"
        b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="----=_NextPart_000_0007_01DB8CD2.4F1E2A30"\r\n\r\n'
        b"------=_NextPart_000_0007_01DB8CD2.4F1E2A30\r\n"
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + body.encode(charset) + b"\r\n"
        b"------=_NextPart_000_0007_01DB8CD2.4F1E2A30\r\n"
        b'Content-Type: application/pdf; name="' + filename.encode(charset) + b'"\r\n'
        b'Content-Disposition: attachment; filename="' + filename.encode(charset) + b'"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        b"------=_NextPart_000_0007_01DB8CD2.4F1E2A30--\r\n"
    )


@pytest.mark.parametrize("charset", sorted(LOCAL_MAIL))
def test_undeclared_8bit_headers_and_body_are_decoded_by_detection(charset):
    _, name, subject, body, filename = LOCAL_MAIL[charset]
    payload = message_to_postmark(local_mail(charset))
    assert payload["Subject"] == subject
    assert payload["FromName"] == payload["FromFull"]["Name"] == name
    assert payload["From"] == f"{name} <customer@example.net>"
    assert payload["TextBody"] == body
    assert names(payload) == [filename]


def test_a_lone_western_name_falls_back_to_cp1252():
    payload = message_to_postmark(b"From: Jos\xe9 Garc\xeda <jose@example.es>\r\nSubject: \x93Hola\x94\r\n\r\nhola")
    assert (payload["FromName"], payload["Subject"]) == ("José García", "“Hola”")


@pytest.mark.parametrize("charset", ["idna", "punycode", "undefined", "base64", "rot13"])
def test_codecs_that_are_no_mail_charset_count_as_undeclared(charset):
    raw = (f"Subject: =?{charset}?Q?caf=E9?=\r\nContent-Type: text/plain; charset={charset}\r\n\r\n"
           "Caf\xe9 cr\xe8me").encode("latin-1")
    payload = message_to_postmark(raw)
    assert (payload["Subject"], payload["TextBody"]) == ("café", "Café crème")


def test_raw_8bit_text_beside_encoded_words_keeps_both():
    raw = "Subject: Re: Привет =?UTF-8?Q?=D0=BC=D0=B8=D1=80?=\r\nFrom: a@example.com\r\n\r\nx".encode()
    assert message_to_postmark(raw)["Subject"] == "Re: Привет мир"


def test_long_undeclared_body_is_detected_from_a_bounded_sample():
    body = "お世話になっております。取引のエクスポートができません。" * 5000  # 250 KB, no line breaks
    raw = b"From: a@example.com\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\n" + body.encode("shift_jis")
    started = time.perf_counter()
    assert message_to_postmark(raw)["TextBody"] == body
    assert time.perf_counter() - started < 2


def test_detection_runs_once_a_message_however_many_parts(monkeypatch):
    sizes = []
    detect = eml.from_bytes
    monkeypatch.setattr(eml, "from_bytes", lambda data, **options: sizes.append(len(data)) or detect(data, **options))
    notes = b"".join(f"X-Note-{n}: =?x-unknown?Q?=D0=C5?= заметка номер {n}\r\n".encode("koi8_r") for n in range(300))
    parts = b"".join(b"--b\r\nContent-Type: text/plain\r\n\r\n" + f"Часть {n}: всё в порядке".encode("koi8_r")
                     + b"\r\n" for n in range(300))
    raw = (b"From: " + "Иван Петров".encode("koi8_r") + b" <ivan@example.ru>\r\n" + notes
           + b"Content-Type: multipart/mixed; boundary=b\r\n\r\n" + parts + b"--b--\r\n")
    payload = message_to_postmark(raw)
    assert payload["FromName"] == "Иван Петров" and payload["TextBody"].startswith("Часть 0: всё в порядке\n")
    assert 1 <= len(sizes) <= 4 and max(sizes) <= eml.DETECT_BYTES


# --- calendar invitations ---------------------------------------------------------------------

INVITE = b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Export review\r\nEND:VEVENT\r\nEND:VCALENDAR"


def test_calendar_parts_are_named_invite_ics():
    alternative = (
        b'Content-Type: multipart/alternative; boundary="=_alt"\r\n\r\n'
        b"--=_alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nExport review, Thursday 10:00\r\n"
        b"--=_alt\r\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.encodebytes(INVITE) + b"--=_alt--"
    )
    raw = mixed(
        alternative,
        b"Content-Type: text/calendar; method=CANCEL\r\n\r\nBEGIN:VCALENDAR\r\nEND:VCALENDAR",
        b'Content-Type: text/calendar\r\nContent-Disposition: attachment; filename="review.ics"\r\n\r\nBEGIN:VCALENDAR',
    )
    payload = message_to_postmark(raw)
    assert payload["TextBody"] == "Export review, Thursday 10:00"
    assert names(payload) == ["invite.ics", "invite-2.ics", "review.ics"]
    assert {a["ContentType"] for a in payload["Attachments"]} == {"text/calendar"}
    assert base64.b64decode(payload["Attachments"][0]["Content"]) == INVITE


# --- TNEF (winmail.dat) -----------------------------------------------------------------------


def postmark_attachment(name: str, data: bytes, content_type: str) -> PostmarkAttachment:
    return PostmarkAttachment(**attachment(name, data, content_type))


def outlook_mail(winmail: bytes) -> bytes:
    """A message as Outlook sends it in rich text: a plain part, then the TNEF stream."""
    return mixed(
        b'Content-Type: text/plain; charset="us-ascii"\r\nContent-Transfer-Encoding: 7bit\r\n\r\nTwo files attached.',
        b'Content-Type: application/ms-tnef; name="winmail.dat"\r\nContent-Transfer-Encoding: base64\r\n'
        b'Content-Disposition: attachment; filename="winmail.dat"\r\n\r\n' + base64.encodebytes(winmail),
        headers=b"X-Mailer: Microsoft Outlook 16.0\r\nX-MS-TNEF-Correlator: 00000000A1B2C3D4\r\n",
    )


def test_winmail_dat_is_unpacked_and_kept():
    payload = message_to_postmark(outlook_mail(WINMAIL))
    assert names(payload) == ["winmail.dat"] and payload["Attachments"][0]["ContentType"] == "application/ms-tnef"
    files, problems = decode_files([PostmarkAttachment(**a) for a in payload["Attachments"]], LIMIT)
    assert problems == []
    assert [(f.filename, f.content_type) for f in files] == [
        ("winmail.dat", "application/ms-tnef"), ("AUTHORS", "application/octet-stream"),
        ("README", "application/octet-stream"),
    ]
    assert files[0].data == WINMAIL
    assert hashlib.sha256(files[1].data).hexdigest() == AUTHORS_SHA256
    assert hashlib.sha256(files[2].data).hexdigest() == README_SHA256
    assert b"Authors of tnef" in files[1].data


def test_winmail_dat_is_known_by_its_name_too():
    files, _ = decode_files([postmark_attachment("WINMAIL.DAT", WINMAIL, "application/octet-stream")], LIMIT)
    assert [f.filename for f in files] == ["WINMAIL.DAT", "AUTHORS", "README"]


def test_winmail_dat_files_are_stored_beside_it(client, db):
    post_inbound(client, inbound_payload(attachments=[attachment("winmail.dat", WINMAIL, "application/ms-tnef")]))
    rows = db.session.scalars(select(Attachment).order_by(Attachment.filename)).all()
    assert [(a.filename, a.size_bytes) for a in rows] == [("AUTHORS", 244), ("README", 893),
                                                          ("winmail.dat", len(WINMAIL))]


@pytest.mark.parametrize("data", [b"", b"not TNEF at all", WINMAIL[:3], b"%PDF-1.4\n" + WINMAIL])
def test_unreadable_winmail_dat_is_kept_with_a_sentence(data):
    files, problems = decode_files([postmark_attachment("winmail.dat", data, "application/ms-tnef")], LIMIT)
    assert [(f.filename, f.data) for f in files] == [("winmail.dat", data)]
    assert len(problems) == 1 and "'winmail.dat'" in problems[0] and "kept as it came" in problems[0]


@pytest.mark.parametrize("data", [
    WINMAIL[:WINMAIL.index(b"\x02\x02\x90")],  # the message alone, cut before its first file
    b"\x78\x9f\x3e\x22\x37\x02" + b"\xff" * 40,  # one attribute of no kind tnefparse knows
])
def test_winmail_dat_without_files_is_kept_quietly(data):
    files, problems = decode_files([postmark_attachment("winmail.dat", data, "application/ms-tnef")], LIMIT)
    assert [f.filename for f in files] == ["winmail.dat"] and problems == []


def test_truncated_winmail_dat_never_raises():
    for cut in range(0, len(WINMAIL), 7):
        files, _ = decode_files([postmark_attachment("winmail.dat", WINMAIL[:cut], "application/ms-tnef")], LIMIT)
        assert files[0].data == WINMAIL[:cut]


# TNEF written as MS-OXTNEF lays it out, to reach the limits a real file would not.

def tnef_attribute(level: int, name: int, kind: int, value: bytes) -> bytes:
    return struct.pack("<BHHI", level, name, kind, len(value)) + value + struct.pack("<H", sum(value) & 0xFFFF)


def unicode_property(name: int, text: str) -> bytes:
    raw = (text + "\0").encode("utf-16-le")
    return struct.pack("<HHII", 0x1F, name, 1, len(raw)) + raw + b"\0" * (-len(raw) % 4)


def tnef_stream(files: list[tuple[str, bytes]], extra: bytes = b"") -> bytes:
    """A TNEF stream holding `files`, each with its long filename as a MAPI property."""
    stream = struct.pack("<IH", 0x223E9F78, 0x0237) + tnef_attribute(1, 0x9007, 6, struct.pack("<II", 1252, 0))
    for name, data in files:
        stream += tnef_attribute(2, 0x9002, 6, struct.pack("<HIHHHI", 1, 0xFFFFFFFF, 0, 0, 0, 0))
        stream += tnef_attribute(2, 0x8010, 1, name.encode("ascii", "replace") + b"\0")
        stream += tnef_attribute(2, 0x800F, 6, data)
        stream += tnef_attribute(2, 0x9005, 6, struct.pack("<I", 1) + unicode_property(0x3707, name))
    return stream + extra


def attached_message(inner: bytes) -> bytes:
    """An attachment whose data is a whole message, as Outlook attaches an email to an email."""
    value = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46" + inner
    prop = struct.pack("<HHII", 0x0D, 0x3701, 1, len(value)) + value + b"\0" * (-len(value) % 4)
    return (tnef_attribute(2, 0x9002, 6, struct.pack("<HIHHHI", 1, 0xFFFFFFFF, 0, 0, 0, 0))
            + tnef_attribute(2, 0x9005, 6, struct.pack("<I", 1) + prop))


def test_files_of_an_attached_message_are_unpacked():
    inner = tnef_stream([("Überweisung.pdf", b"%PDF-1.4 inner")])
    members, problems = tnef.unpack(tnef_stream([("notes.txt", b"outer")], extra=attached_message(inner)),
                                    "winmail.dat", LIMIT)
    assert problems == []
    assert [(m.filename, m.content_type, m.data) for m in members] == [
        ("notes.txt", "text/plain", b"outer"), ("Überweisung.pdf", "application/pdf", b"%PDF-1.4 inner"),
    ]


def nested(depth: int) -> bytes:
    stream = tnef_stream([("deep.txt", b"bottom")])
    for _ in range(depth):
        stream = tnef_stream([], extra=attached_message(stream))
    return stream


HOSTILE = {
    # a few bytes claiming four billion properties, which tnefparse would count through one by one
    "property_count": tnef_stream([], extra=tnef_attribute(2, 0x9002, 6, b"\0" * 14)
                                  + tnef_attribute(2, 0x9005, 6, struct.pack("<I", 0xFFFFFFFF))),
    # a multi-valued short with two billion values past the end, each one a Python object
    "multi_value": tnef_stream([], extra=tnef_attribute(2, 0x9002, 6, b"\0" * 14) + tnef_attribute(
        2, 0x9005, 6, struct.pack("<IHHI", 1, 0x1002, 0x0001, 0x7FFFFFFF))),
    # the same inside an attached message's recipient table, which Echo does not read
    "nested_recipients": tnef_stream([], extra=attached_message(
        tnef_stream([]) + tnef_attribute(1, 0x9004, 6, struct.pack("<II", 1, 0xFFFFFFFF)))),
    "too_deep": nested(tnef.MAX_DEPTH + 1),
    "too_many_attributes": tnef_stream([], extra=tnef_attribute(2, 0x9002, 6, b"\0" * 14)
                                       + tnef_attribute(2, 0x8011, 6, b"\0" * 4) * (tnef.MAX_ATTRIBUTES + 1)),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_winmail_dat_is_bounded(name):
    started = time.perf_counter()
    files, problems = decode_files([postmark_attachment("winmail.dat", HOSTILE[name], "application/ms-tnef")], LIMIT)
    assert time.perf_counter() - started < 2
    assert [f.filename for f in files] == ["winmail.dat"]
    if name == "nested_recipients":  # hidden from tnefparse, so the message reads as one without files
        assert problems == []
    else:
        assert len(problems) == 1 and "could not be unpacked" in problems[0]


def test_nesting_within_the_limit_is_unpacked():
    members, problems = tnef.unpack(nested(tnef.MAX_DEPTH - 1), "winmail.dat", LIMIT)
    assert [(m.filename, m.data) for m in members] == [("deep.txt", b"bottom")] and problems == []
    assert tnef.unpack(nested(tnef.MAX_DEPTH), "winmail.dat", LIMIT)[0] == []


def test_too_many_files_keeps_the_first_ones():
    stream = tnef_stream([(f"scan-{n:03}.txt", b"page %d" % n) for n in range(tnef.MAX_FILES + 5)])
    files, problems = decode_files([postmark_attachment("winmail.dat", stream, "application/ms-tnef")], LIMIT)
    assert len(files) == 1 + tnef.MAX_FILES and files[-1].filename == f"scan-{tnef.MAX_FILES - 1:03}.txt"
    assert problems == [f"The attachment 'winmail.dat' holds {tnef.MAX_FILES + 5} files; "
                        f"the first {tnef.MAX_FILES} were unpacked."]


def test_a_file_inside_over_the_limit_is_left_out():
    stream = tnef_stream([("big.bin", b"x" * (2 << 20)), ("small.txt", b"ok")])
    members, problems = tnef.unpack(stream, "winmail.dat", 1 << 20)
    assert [m.filename for m in members] == ["small.txt"]
    assert problems == ["The file 'big.bin' inside 'winmail.dat' is larger than the 1 MB limit and was not kept."]
