"""Real mail from the major clients threads onto the ticket it answers, through the same intake path."""

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from echo.attachments.models import Attachment
from echo.inbound.eml import message_to_postmark
from echo.tickets.models import Thread, Ticket
from tests.mailbuilder import inbound_payload, post_inbound

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "mail"
REPLIES = {
    "gmail_multipart.eml": "pineapple",
    "outlook_html.eml": "quartz",
    "apple_mail.eml": "lighthouse",
    "thunderbird_plain.eml": "marmalade",
    "iphone.eml": "saxophone",
    "android_gmail.eml": "tangerine",
    "japanese_iso2022.eml": "origami",
}


@pytest.fixture
def conversation(client, run_jobs, postmark):
    """Alice wrote in, Echo acknowledged through Postmark; returns (ticket id, ids to reply to)."""
    first = post_inbound(client, inbound_payload(
        sender="alice@example.com", subject="Cannot export my trades", message_id="<original@mail.example.com>",
    )).get_json()
    assert first["ticket_number"] == "TKT-0001"
    run_jobs()
    return first["ticket_id"], f"{postmark.sent[0]['MessageID']}@mtasv.net"


def replay(name: str, in_reply_to: str, references: str) -> bytes:
    raw = (FIXTURES / name).read_bytes()
    return raw.replace(b"{{IN_REPLY_TO}}", in_reply_to.encode()).replace(b"{{REFERENCES}}", references.encode())


@pytest.mark.parametrize("name, word", REPLIES.items())
def test_client_reply_threads_onto_the_ticket(client, db, conversation, name, word):
    ticket_id, ack_id = conversation
    raw = replay(name, ack_id, f"original@mail.example.com> <{ack_id}")
    result = post_inbound(client, message_to_postmark(raw, "support@raxx.app")).get_json()
    assert result["status"] == "appended" and result["ticket_id"] == ticket_id
    assert result["thread_id"]
    thread = db.session.get(Thread, uuid.UUID(result["thread_id"]))
    assert word in thread.stripped_text.lower()
    assert "wrote:" not in thread.stripped_text and "Raxx Support <support@raxx.app>" not in thread.stripped_text
    assert word in thread.body_text.lower() or word in thread.body_html.lower()
    assert "<script" not in thread.body_html


@pytest.mark.parametrize("name, word", REPLIES.items())
def test_client_reply_without_threading_headers_falls_back_to_subject_number(client, db, conversation, name, word):
    ticket_id, _ = conversation
    raw = replay(name, "unknown@nowhere.test", "unknown@nowhere.test")
    result = post_inbound(client, message_to_postmark(raw, "support@raxx.app")).get_json()
    assert result["ticket_id"] == ticket_id and result["status"] == "appended"


def test_non_utf8_charsets_and_encoded_subjects_are_decoded(client, db, conversation):
    ticket_id, ack_id = conversation
    texts = {}
    for name in ("outlook_html.eml", "thunderbird_plain.eml", "android_gmail.eml", "japanese_iso2022.eml"):
        result = post_inbound(client, message_to_postmark(replay(name, ack_id, ack_id), "support@raxx.app")).get_json()
        thread = db.session.get(Thread, uuid.UUID(result["thread_id"]))
        texts[name] = (thread.subject, thread.body_text + thread.body_html)
    assert "€" in texts["outlook_html.eml"][1]
    assert "Problème d'export des opérations" in texts["thunderbird_plain.eml"][0]
    assert "Не работает экспорт сделок" in texts["android_gmail.eml"][0]
    assert "ありがとう" in texts["japanese_iso2022.eml"][1]


def test_apple_mail_inline_image_is_stored_and_linked(client, db, conversation):
    _, ack_id = conversation
    payload = message_to_postmark(replay("apple_mail.eml", ack_id, ack_id), "support@raxx.app")
    result = post_inbound(client, payload).get_json()
    thread = db.session.get(Thread, uuid.UUID(result["thread_id"]))
    image = db.session.scalar(select(Attachment).where(Attachment.thread_id == thread.id))
    assert image.content_type == "image/png" and image.size_bytes == 105
    assert f'src="/tickets/attachments/{image.id}"' in thread.body_html


def test_out_of_office_reply_is_recorded_as_automatic(client, db, conversation):
    ticket_id, ack_id = conversation
    payload = message_to_postmark(replay("auto_reply.eml", ack_id, ack_id), "support@raxx.app")
    result = post_inbound(client, payload).get_json()
    assert result["ticket_id"] == ticket_id
    assert db.session.get(Thread, uuid.UUID(result["thread_id"])).is_auto_reply


def test_inbound_command_replays_an_eml_file(app, db, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app.cli, ["inbound", str(FIXTURES / "new_ticket.eml")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("created: TKT-0001")
    ticket = db.session.scalar(select(Ticket))
    assert ticket.subject == "Login link never arrives" and ticket.customer.email == "bob@example.org"
    assert db.session.scalar(select(Attachment.filename)) == "browser-console.txt"
    again = runner.invoke(app.cli, ["inbound", str(FIXTURES / "new_ticket.eml")])
    assert again.exit_code == 0 and again.output.startswith("duplicate: TKT-0001")


def test_inbound_command_reports_unusable_files(app, tmp_path):
    empty = tmp_path / "empty.eml"
    empty.write_bytes(b"")
    result = CliRunner().invoke(app.cli, ["inbound", str(empty)])
    assert result.exit_code != 0 and "missing_sender" in result.output
