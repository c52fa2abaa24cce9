"""Privacy: property-based isolation between customers, erasure, retention, rate limits."""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from echo.actors import SYSTEM
from echo.attachments.models import Attachment
from echo.attachments.storage import storage
from echo.audit.models import AuditLog, SupportAuditLog
from echo.customers.models import Customer
from echo.db import utcnow
from echo.mail.models import OutboxMessage
from echo.privacy.service import erase_customer, purge_support_audit_log
from echo.tickets.models import MessageId, Thread, Ticket
from tests.mailbuilder import attachment, inbound_payload, post_inbound
from tests.portal.conftest import bearer

words = st.text(alphabet=st.characters(whitelist_categories=("Ll", "Lu", "Nd")), min_size=6, max_size=12)


def seed_two_customers(client, agent_headers, alice_words, bob_words):
    """Tickets for alice and bob with distinctive words, notes and attachments; returns ids per customer."""
    ids = {"alice@example.com": [], "bob@example.com": []}
    for owner, tokens in (("alice@example.com", alice_words), ("bob@example.com", bob_words)):
        for token in tokens:
            body = post_inbound(client, inbound_payload(
                sender=owner, subject=f"subject-{token}-", text=f"body-{token}-",
                attachments=[attachment(f"file-{token}-.txt", f"bytes-{token}-".encode(), "text/plain")],
            )).get_json()
            ids[owner].append(body["ticket_id"])
            client.post(f"/api/v1/agent/tickets/{body['ticket_number']}/notes", headers=agent_headers,
                        json={"body_text": f"note-{token}-"})
    return ids


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(alice_words=st.lists(words, min_size=1, max_size=3, unique=True),
       bob_words=st.lists(words, min_size=1, max_size=3, unique=True))
def test_no_response_to_alice_ever_contains_bobs_data(client, db, agent_token, redis_url, alice_words, bob_words):
    _start_clean(db, redis_url)  # every example starts from empty tables and fresh rate limits
    bob_words = [w for w in bob_words if all(w not in a and a not in w for a in alice_words)] or ["zzzzzzqq"]
    _, headers = agent_token()
    ids = seed_two_customers(client, headers, alice_words, bob_words)
    alice = bearer("alice@example.com")
    bob_thread_ids = {str(t) for t in db.session.scalars(
        select(Thread.id).join(Ticket).join(Customer).where(Customer.email == "bob@example.com"))}
    bob_files = {str(a) for a in db.session.scalars(
        select(Attachment.id).join(Thread).join(Ticket).join(Customer).where(Customer.email == "bob@example.com"))}
    responses = [client.get("/api/v1/support/tickets?per_page=50", headers=alice)]
    for ticket_id in ids["alice@example.com"] + ids["bob@example.com"]:
        responses.append(client.get(f"/api/v1/support/tickets/{ticket_id}", headers=alice))
        responses.append(client.post(f"/api/v1/support/tickets/{ticket_id}/replies", headers=alice, json={"body": "x"}))
        for file_id in bob_files:
            responses.append(client.get(f"/api/v1/support/tickets/{ticket_id}/attachments/{file_id}", headers=alice))
    for response in responses:
        shown = _shown_text(response)
        for token in bob_words:
            # Each of Bob's words stands between dashes (body-…-, subject-…-, file-…-, note-…-), which
            # neither a uuid's groups nor a timestamp nor Alice's own words can spell.
            assert f"-{token}-" not in shown
        for token in alice_words + bob_words:
            assert f"note-{token}-" not in shown
        for secret_id in bob_thread_ids | bob_files | set(ids["bob@example.com"]):
            assert secret_id not in shown
    listed = {t["id"] for t in responses[0].get_json()["tickets"]}
    assert listed == set(ids["alice@example.com"])


def _shown_text(response) -> str:
    """What a response tells its reader: every string value of a JSON body (never its keys, which
    are the schema's words, not anyone's data), or the raw body of a download."""
    if not response.is_json:
        return response.get_data(as_text=True)
    values: list[str] = []

    def walk(node):
        if isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
        else:
            values.append(str(node))

    walk(response.get_json())
    return "\n".join(values)


def _start_clean(db, redis_url):
    from redis import Redis

    db.session.rollback()
    tables = [r[0] for r in db.session.execute(db.text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"))]
    db.session.execute(db.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
    db.session.commit()
    Redis.from_url(redis_url).flushdb()


def test_erasure_scrubs_everything_personal_and_is_idempotent(client, db, app):
    post_inbound(client, inbound_payload(sender="alice@example.com", name="Alice Martin", subject="My card 4242",
                                         text="my phone is 555-1234",
                                         attachments=[attachment("passport.txt", b"secret", "text/plain")]))
    post_inbound(client, inbound_payload(sender="bob@example.com", subject="Bob's ticket"))
    client.get("/api/v1/support/tickets", headers=bearer("alice@example.com"))
    key = db.session.scalar(select(Attachment.s3_key))
    receipt = erase_customer("Alice@Example.com", actor=SYSTEM)
    db.session.commit()
    from echo.privacy.service import delete_erased_bytes

    delete_erased_bytes(receipt)
    assert receipt.tickets == 1 and receipt.threads == 1 and receipt.attachments == 1 and receipt.portal_audit_rows == 1
    customer = db.session.get(Customer, receipt.customer_id)
    assert customer.email == "[deleted]" and customer.display_name == "[deleted]" and customer.deleted_at
    thread = db.session.scalar(select(Thread).where(Thread.customer_id == customer.id))
    assert thread.body_text.startswith("[erased per DSR ") and thread.sender_email is None
    assert not storage().exists(key)
    rows = db.session.execute(select(Thread.body_text, Ticket.subject).join(Ticket))
    everything = " ".join(str(v) for row in rows for v in row)
    assert "555-1234" not in everything and "4242" not in everything and "Bob's ticket" in everything
    assert db.session.scalar(select(func.count()).select_from(SupportAuditLog)) == 0
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "customers.erased")) is not None
    again = erase_customer("alice@example.com", actor=SYSTEM)
    assert again.customer_id is None and "nothing to erase" in again.lines()[0]
    assert client.get("/api/v1/support/tickets", headers=bearer("alice@example.com")).get_json()["total"] == 0


def test_erasure_covers_messages_on_tickets_the_person_does_not_own(client, db, app):
    """A colleague who reply-alls onto Alice's ticket is erased from it too, attachments and all."""
    post_inbound(client, inbound_payload(sender="alice@example.com", subject="Team invoice",
                                         message_id="<team1@mail.example.com>"))
    acknowledgement = db.session.scalar(select(OutboxMessage.message_id).where(OutboxMessage.kind == "acknowledgement"))
    post_inbound(client, inbound_payload(  # Carol reply-alls to our acknowledgement of Alice's mail
        sender="carol@example.com", name="Carol Colleague", subject="Re: Team invoice",
        in_reply_to=f"<{acknowledgement}>", message_id="<team2@mail.example.com>",
        text="Carol here, my direct line is 555-9876",
        attachments=[attachment("carol-id.txt", b"carol secret bytes", "text/plain")],
    ))
    carol_thread = db.session.scalar(select(Thread).where(Thread.sender_email == "carol@example.com"))
    alice_ticket = db.session.scalar(select(Ticket).where(Ticket.subject == "Team invoice"))
    assert carol_thread is not None and carol_thread.ticket_id == alice_ticket.id  # threaded onto Alice's ticket
    key = db.session.scalar(select(Attachment.s3_key).where(Attachment.thread_id == carol_thread.id))

    receipt = erase_customer("carol@example.com", actor=SYSTEM)
    db.session.commit()
    from echo.privacy.service import delete_erased_bytes

    assert delete_erased_bytes(receipt) == 1
    assert receipt.tickets == 0 and receipt.threads == 1 and receipt.attachments == 1
    assert "messages replaced: 1" in "\n".join(receipt.lines())
    db.session.expire_all()
    thread = db.session.get(Thread, carol_thread.id)
    assert thread.sender_email is None and thread.sender_name is None and "555-9876" not in thread.body_text
    assert thread.erased_at is not None
    assert not storage().exists(key)
    assert db.session.scalar(select(Attachment.filename).where(Attachment.thread_id == carol_thread.id)) == "[erased]"
    assert db.session.scalar(select(func.count()).select_from(MessageId)
                             .where(MessageId.message_id == "team2@mail.example.com")) == 0
    # Alice's own words and ticket are untouched.
    assert db.session.get(Ticket, alice_ticket.id).subject == "Team invoice"
    alice_thread = db.session.scalar(select(Thread).where(Thread.sender_email == "alice@example.com"))
    assert alice_thread is not None and alice_thread.erased_at is None


def test_erase_command_prints_a_receipt(app, client, db):
    from click.testing import CliRunner

    post_inbound(client, inbound_payload())
    result = CliRunner().invoke(app.cli, ["erase-customer", "alice@example.com"])
    assert result.exit_code == 0 and "Erasure receipt" in result.output and "messages replaced: 1" in result.output
    assert "nothing to erase" in CliRunner().invoke(app.cli, ["erase-customer", "alice@example.com"]).output


def test_retention_keeps_recent_rows_and_drops_old_ones(client, db):
    post_inbound(client, inbound_payload())
    now = utcnow()
    for action, age in (("ticket.list", 10), ("ticket.list", 31), ("ticket.read", 31), ("ticket.reply", 91)):
        db.session.add(SupportAuditLog(action=action, success=True, created_at=now - timedelta(days=age)))
    db.session.commit()
    assert purge_support_audit_log() == 2
    db.session.commit()
    left = sorted((r.action, (now - r.created_at).days) for r in db.session.scalars(select(SupportAuditLog)))
    assert left == [("ticket.list", 10), ("ticket.read", 31)]


def test_every_request_is_audited_without_email_or_full_ip(client, db):
    ticket_id = post_inbound(client, inbound_payload()).get_json()["ticket_id"]
    client.get(f"/api/v1/support/tickets/{ticket_id}", headers=bearer("alice@example.com", sid="session-123"),
               environ_base={"REMOTE_ADDR": "203.0.113.77"})
    row = db.session.scalar(select(SupportAuditLog))
    assert row.action == "ticket.read" and row.success and row.resource_id == ticket_id
    assert row.ip_prefix == "203.0.113.0/24"
    import hashlib
    assert row.session_id_hash == hashlib.sha256(b"session-123").hexdigest()
    client.get("/api/v1/support/tickets", headers=bearer("alice@example.com"),
               environ_base={"REMOTE_ADDR": "2001:db8:abcd:12::1"})
    rows = db.session.scalars(select(SupportAuditLog).order_by(SupportAuditLog.id)).all()
    assert rows[-1].ip_prefix == "2001:db8:abcd::/48"
    assert all("alice" not in str(r.__dict__) for r in rows)


def test_rate_limits_answer_429_with_retry_after(client, db):
    headers = bearer("limited@example.com")
    codes = [client.post("/api/v1/support/tickets", headers=headers, json={"subject": f"s{i}", "body": "b"}).status_code
             for i in range(11)]
    assert codes[:10] == [201] * 10 and codes[10] == 429
    limited = client.post("/api/v1/support/tickets", headers=headers, json={"subject": "s", "body": "b"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert limited.get_json()["error"] == "rate_limited"
    other = client.post("/api/v1/support/tickets", headers=bearer("other@example.com"),
                        json={"subject": "s", "body": "b"})
    assert other.status_code == 201  # limits are per customer
    assert db.session.scalar(select(func.count()).select_from(Ticket)) == 11


def test_overall_limit_is_sixty_a_minute(client, db):
    headers = bearer("busy@example.com")
    codes = [client.get("/api/v1/support/tickets", headers=headers).status_code for _ in range(61)]
    assert codes.count(200) == 60 and codes[-1] == 429


def test_erasure_deletes_attachment_bytes_from_s3(s3_app, s3_server):
    import boto3

    from echo.extensions import db as _db
    from echo.privacy.service import delete_erased_bytes

    client = s3_app.test_client()
    post_inbound(client, inbound_payload(attachments=[attachment("id.pdf", b"%PDF-1.4 passport", "application/pdf")]))
    key = _db.session.scalar(select(Attachment.s3_key))
    bucket = s3_app.config["ECHO"].s3_bucket
    s3 = boto3.client("s3", endpoint_url=s3_server)
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"%PDF-1.4 passport"
    receipt = erase_customer("alice@example.com", actor=SYSTEM)
    _db.session.commit()
    assert delete_erased_bytes(receipt) == 1
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_sign_up_requests_are_limited_per_address_of_origin(client):
    codes = [client.post("/api/sessions/enrol", json={"email": f"x{i}@example.com"},
                         environ_base={"REMOTE_ADDR": "192.0.2.9"}).status_code for i in range(6)]
    assert codes == [202] * 5 + [429]
    other = client.post("/api/sessions/enrol", json={"email": "y@example.com"},
                        environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert other.status_code == 202
