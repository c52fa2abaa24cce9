"""Attachments arrive decoded, size-checked, typed honestly and stored under random keys."""

import base64
import hashlib
import uuid

import boto3
from sqlalchemy import select

from echo.attachments.models import Attachment
from echo.attachments.service import content_disposition, is_inline_image
from echo.attachments.storage import storage
from echo.tickets.models import Thread
from tests.mailbuilder import attachment, inbound_payload, post_inbound

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def stored(db):
    return db.session.scalars(select(Attachment).order_by(Attachment.filename)).all()


def test_attachments_are_stored_with_hash_size_and_random_keys(client, db, app):
    post_inbound(client, inbound_payload(attachments=[
        attachment("invoice.pdf", PDF, "application/pdf"), attachment("screen.png", PNG, "image/png"),
    ]))
    rows = stored(db)
    assert [a.filename for a in rows] == ["invoice.pdf", "screen.png"]
    pdf = rows[0]
    assert pdf.size_bytes == len(PDF) and pdf.sha256 == hashlib.sha256(PDF).hexdigest()
    assert pdf.content_type == "application/pdf"
    assert rows[1].content_type == "image/png" and is_inline_image(rows[1].content_type)
    assert storage().get(pdf.s3_key) == PDF
    assert "invoice" not in pdf.s3_key and len(pdf.s3_key) >= 30
    assert rows[0].s3_key != rows[1].s3_key


def test_inline_cid_image_is_linked_from_the_html(client, db):
    result = post_inbound(client, inbound_payload(
        html='<p>See:</p><img src="cid:image001.png@01DA1234.56789ABC">',
        attachments=[attachment("image001.png", PNG, "image/png", content_id="<image001.png@01DA1234.56789ABC>")],
    )).get_json()
    image = stored(db)[0]
    assert image.content_id == "image001.png@01da1234.56789abc"
    thread = db.session.get(Thread, uuid.UUID(result["thread_id"]))
    assert f'<img src="/tickets/attachments/{image.id}">' in thread.body_html


def test_file_pretending_to_be_an_image_is_not_typed_as_one(client, db):
    post_inbound(client, inbound_payload(attachments=[
        attachment("cat.png", b"<html><script>alert(1)</script></html>", "image/png"),
        attachment("x.svg", b"<svg onload=alert(1)/>", "image/svg+xml"),
        attachment("weird", b"abc", "not a content type"),
    ]))
    types = {a.filename: a.content_type for a in stored(db)}
    assert types["cat.png"] == "application/octet-stream"
    assert types["x.svg"] == "image/svg+xml" and not is_inline_image(types["x.svg"])
    assert types["weird"] == "application/octet-stream"


def test_hostile_filenames_are_cleaned(client, db):
    post_inbound(client, inbound_payload(attachments=[
        attachment("../../etc/passwd", b"x", "text/plain"), attachment("", b"y", "text/plain"),
        attachment("a\r\nContent-Type: text/html", b"z", "text/plain"),
    ]))
    names = sorted(a.filename for a in stored(db))
    assert all("/" not in n and "\n" not in n and "\r" not in n for n in names)
    assert "attachment-2" in names


def test_bytes_are_removed_when_the_transaction_rolls_back(client, db, app):
    """A racing duplicate delivery loses at commit; its attachment bytes must not linger."""
    from echo.attachments.service import IncomingFile, store_file

    key = store_file(uuid.uuid4(), IncomingFile("a.txt", "text/plain", b"orphan", None)).s3_key
    assert storage().exists(key)
    db.session.rollback()
    assert not storage().exists(key)


def test_s3_backend_stores_and_reads_through_boto3(s3_app, s3_server):
    from echo.extensions import db

    payload = inbound_payload(attachments=[attachment("invoice.pdf", PDF, "application/pdf")])
    response = post_inbound(s3_app.test_client(), payload)
    assert response.status_code == 200
    row = stored(db)[0]
    settings = s3_app.config["ECHO"]
    obj = boto3.client("s3", endpoint_url=s3_server).get_object(Bucket=settings.s3_bucket, Key=row.s3_key)
    assert obj["Body"].read() == PDF and obj["ContentType"] == "application/pdf"
    assert storage().get(row.s3_key) == PDF
    storage().delete(row.s3_key)
    assert not storage().exists(row.s3_key)


BIDI_SPOOFS = {  # as sent (and as a browser or file manager would show it) → as stored
    "invoice\u202efdp.exe": "invoicefdp.exe",  # shown as "invoiceexe.pdf"
    "\u2067report\u2069.pdf\u200f.exe": "report.pdf.exe",
    "photo\u061c\u200e.jpg\u2066\u2068.scr": "photo.jpg.scr",
    "doc\u202a\u202b\u202c\u202d.txt.js": "doc.txt.js",
    "a\u200b\u2060\ufeff\u00ad\U000e0041.js": "a.js",  # zero-width, word joiner, BOM, soft hyphen, tag character
    "line\u2028sep\u2029\x85.txt": "line_sep__.txt",
    "\u202e\u200f": "attachment-7",
    "résumé – 名前 שלום.pdf": "résumé – 名前 שלום.pdf",  # ordinary non-Latin names are left as they are
}


def test_bidi_and_invisible_characters_are_removed_from_stored_names(client, db):
    post_inbound(client, inbound_payload(attachments=[
        attachment(name, b"%d" % i, "application/octet-stream") for i, name in enumerate(BIDI_SPOOFS, start=1)
    ]))
    assert sorted(a.filename for a in stored(db)) == sorted(BIDI_SPOOFS.values())


def test_content_disposition_never_carries_bidi_characters_even_for_names_stored_before():
    assert content_disposition("attachment", "invoice\u202efdp.exe") == (  # as the old rules stored it
        "attachment; filename=\"invoicefdp.exe\"; filename*=UTF-8''invoicefdp.exe")
    assert content_disposition("inline", "résumé\u200f.png") == (
        "inline; filename=\"r_sum_.png\"; filename*=UTF-8''r%C3%A9sum%C3%A9.png")
