"""Bidi controls in attachment names cannot make an executable look like a document."""

import re

import pytest
from sqlalchemy import select

from echo.attachments.models import Attachment
from tests.browser.support import SCREENSHOTS
from tests.mailbuilder import attachment, inbound_payload, post_inbound

expect = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed").expect

RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "invoice" RLO "fdp.exe" is drawn as "invoiceexe.pdf"
BIDI = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


@pytest.fixture
def spoofed_names(client, db):
    """One name cleaned on arrival, and one stored with its override by the old rules."""
    mail = inbound_payload(subject="Your invoice", attachments=[
        attachment(f"invoice{RLO}fdp.exe", b"MZ\x90\x00", "application/pdf"),
        attachment("payslip.scr", b"MZ\x90\x00", "application/octet-stream"),
    ])
    assert post_inbound(client, mail).status_code == 200
    old = db.session.scalars(select(Attachment).where(Attachment.filename == "payslip.scr")).one()
    old.filename = f"payslip{RLO}fdp.scr"
    db.session.commit()
    stored = sorted(db.session.scalars(select(Attachment.filename)))
    assert stored == ["invoicefdp.exe", f"payslip{RLO}fdp.scr"]


def test_attachment_names_show_and_download_with_their_real_extension(signed_in, spoofed_names, js_errors):
    page = signed_in
    page.goto("/tickets/TKT-0001")
    buttons = page.locator(".attachments a.button")
    expect(buttons).to_have_count(2)
    names = [text.strip() for text in buttons.locator("bdi").all_inner_texts()]
    assert names == ["invoicefdp.exe", "payslipfdp.scr"]
    assert BIDI.search(page.locator("body").inner_text()) is None
    # Drawn as written, left to right: the real extension is at the end (the override would put "exe" first).
    boxes = [buttons.nth(0).locator("bdi").evaluate(f"""(el) => {{
        const range = document.createRange(), text = el.firstChild;
        range.setStart(text, {i}); range.setEnd(text, {i + 1});
        return range.getBoundingClientRect().left; }}""") for i in (0, len("invoicefdp."))]
    assert boxes[0] < boxes[1]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.locator(".attachments").screenshot(path=str(SCREENSHOTS / "attachment-names.png"))

    with page.expect_download() as download:
        buttons.nth(1).click()
    assert download.value.suggested_filename == "payslipfdp.scr"
    assert js_errors == []
