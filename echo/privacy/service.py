"""GDPR erasure (SPEC §9): scrub a customer everywhere, keep only non-personal audit facts."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import delete, or_, select, update

from echo.actors import Actor
from echo.attachments.models import Attachment
from echo.attachments.storage import storage
from echo.audit import service as audit
from echo.audit.models import SupportAuditLog
from echo.customers.models import Customer
from echo.db import affected_rows, utcnow
from echo.extensions import db
from echo.inbound.schemas import normalize_email
from echo.mail.models import OutboxMessage
from echo.passkeys.models import Passkey
from echo.portal.models import CustomerEnrolment, CustomerSession
from echo.tickets.models import MessageId, Thread, Ticket

log = logging.getLogger(__name__)
DELETED = "[deleted]"


@dataclass
class Receipt:
    email_hash: str
    customer_id: uuid.UUID | None
    erased_on: date
    tickets: int = 0
    threads: int = 0
    attachments: int = 0
    sessions: int = 0
    passkeys: int = 0
    portal_audit_rows: int = 0
    outbox_rows: int = 0
    storage_keys: list[str] = field(default_factory=list, repr=False)

    def lines(self) -> list[str]:
        if self.customer_id is None:
            return [f"No customer with that address (sha256 {self.email_hash[:12]}…); nothing to erase."]
        return [
            f"Erasure receipt — {self.erased_on.isoformat()}",
            f"  customer: {self.customer_id} (email and name now {DELETED})",
            f"  tickets scrubbed: {self.tickets}", f"  messages replaced: {self.threads}",
            f"  attachments deleted: {self.attachments}", f"  sessions dropped: {self.sessions}",
            f"  passkeys dropped: {self.passkeys}", f"  portal access log rows purged: {self.portal_audit_rows}",
            f"  outgoing mail records scrubbed: {self.outbox_rows}",
            "  kept: audit_log action metadata (ids and times only)",
        ]


def erase_customer(email: str, *, actor: Actor, today: date | None = None) -> Receipt:
    """Erase the live customer with this email; safe to run again (the second run finds nothing)."""
    import hashlib

    address = normalize_email(email) or email.strip().lower()
    today = today or utcnow().date()
    receipt = Receipt(hashlib.sha256(address.encode()).hexdigest(), None, today)
    customer = db.session.scalar(select(Customer).where(Customer.email == address, Customer.deleted_at.is_(None)))
    if customer is None:
        return receipt
    receipt.customer_id = customer.id
    marker = f"[erased per DSR {today.isoformat()}]"
    ticket_ids = select(Ticket.id).where(Ticket.customer_id == customer.id).scalar_subquery()
    # Every message on their own tickets (ours quote them) and every message they sent anywhere else
    # (a reply-all onto a colleague's ticket): their words are erased wherever they live.
    theirs = or_(Thread.ticket_id.in_(ticket_ids), Thread.customer_id == customer.id)
    thread_ids = db.session.scalars(select(Thread.id).where(theirs)).all()

    receipt.tickets = affected_rows(db.session.execute(
        update(Ticket).where(Ticket.customer_id == customer.id).values(subject=marker)
    ))
    receipt.threads = affected_rows(db.session.execute(
        update(Thread).where(Thread.id.in_(thread_ids))
        .values(body_text=marker, body_html="", stripped_text=marker, subject=None, sender_email=None,
                sender_name=None, in_reply_to=None, references=None, rfc_message_id=None, notices=None,
                erased_at=utcnow())
        .execution_options(synchronize_session=False)
    ))
    files = db.session.scalars(
        select(Attachment).where(Attachment.thread_id.in_(thread_ids), Attachment.erased_at.is_(None))
    ).all()
    for file in files:
        receipt.storage_keys.append(file.s3_key)
        file.erased_at, file.filename = utcnow(), "[erased]"
    receipt.attachments = len(files)
    db.session.execute(delete(MessageId).where(or_(MessageId.ticket_id.in_(ticket_ids),
                                                   MessageId.thread_id.in_(thread_ids))))
    receipt.outbox_rows = affected_rows(db.session.execute(
        update(OutboxMessage).where(OutboxMessage.to_email == customer.email).values(to_email=DELETED, context={})
    ))
    receipt.sessions = affected_rows(db.session.execute(
        delete(CustomerSession).where(CustomerSession.customer_id == customer.id)))
    db.session.execute(delete(CustomerEnrolment).where(CustomerEnrolment.customer_id == customer.id))
    receipt.passkeys = affected_rows(db.session.execute(delete(Passkey).where(Passkey.customer_id == customer.id)))
    receipt.portal_audit_rows = affected_rows(db.session.execute(
        delete(SupportAuditLog).where(SupportAuditLog.customer_id == customer.id)
    ))
    customer.email, customer.display_name, customer.deleted_at = DELETED, DELETED, utcnow()
    audit.record(actor, "customers.erased", "customer", customer.id, tickets=receipt.tickets,
                 threads=receipt.threads, attachments=receipt.attachments)
    db.session.flush()
    return receipt


def delete_erased_bytes(receipt: Receipt) -> int:
    """After the commit: remove the attachment bytes (idempotent; a failure is logged and can be re-run)."""
    removed = 0
    for key in receipt.storage_keys:
        try:
            storage().delete(key)
            removed += 1
        except Exception:
            log.exception("could not delete erased attachment bytes")
    return removed


RETENTION = {"ticket.list": timedelta(days=30)}
DEFAULT_RETENTION = timedelta(days=90)


def purge_support_audit_log(now=None) -> int:
    """Nightly: list rows after 30 days, everything else after 90."""
    now = now or utcnow()
    removed = affected_rows(db.session.execute(
        delete(SupportAuditLog).where(SupportAuditLog.action == "ticket.list",
                                      SupportAuditLog.created_at < now - RETENTION["ticket.list"])
    ))
    removed += affected_rows(db.session.execute(
        delete(SupportAuditLog).where(SupportAuditLog.action != "ticket.list",
                                      SupportAuditLog.created_at < now - DEFAULT_RETENTION)
    ))
    return removed
