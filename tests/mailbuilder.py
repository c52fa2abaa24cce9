"""Build Postmark inbound webhook payloads the way Postmark sends them."""

from __future__ import annotations

import base64
import uuid

from tests.conftest import WEBHOOK_AUTH


def inbound_payload(
    *, sender: str = "alice@example.com", name: str = "Alice Example", subject: str = "Cannot export my trades",
    text: str = "Hello,\n\nThe export button does nothing.\n\nAlice", html: str | None = None,
    message_id: str | None = None, postmark_id: str | None = None, in_reply_to: str | None = None,
    references: str | None = None, mailbox_hash: str = "", headers: dict[str, str] | None = None,
    attachments: list[dict] | None = None, stripped: str = "",
) -> dict:
    rfc_id = message_id or f"<{uuid.uuid4().hex}@mail.example.com>"
    header_list = [{"Name": "Message-ID", "Value": rfc_id}]
    if in_reply_to:
        header_list.append({"Name": "In-Reply-To", "Value": in_reply_to})
    if references:
        header_list.append({"Name": "References", "Value": references})
    for key, value in (headers or {}).items():
        header_list.append({"Name": key, "Value": value})
    to = f"support+{mailbox_hash}@raxx.app" if mailbox_hash else "support@raxx.app"
    return {
        "From": f'"{name}" <{sender}>', "FromName": name,
        "FromFull": {"Email": sender, "Name": name, "MailboxHash": ""},
        "To": to, "ToFull": [{"Email": to, "Name": "Raxx Support", "MailboxHash": mailbox_hash}],
        "Cc": "", "CcFull": [], "OriginalRecipient": to, "ReplyTo": "",
        "Subject": subject, "MessageID": postmark_id or str(uuid.uuid4()),
        "Date": "Sun, 22 Nov 2026 09:12:00 +0000", "MailboxHash": mailbox_hash,
        "TextBody": text, "HtmlBody": html if html is not None else "<p>" + text.replace("\n", "<br>") + "</p>",
        "StrippedTextReply": stripped, "Tag": "", "Headers": header_list, "Attachments": attachments or [],
    }


def attachment(name: str, data: bytes, content_type: str, content_id: str = "") -> dict:
    return {"Name": name, "Content": base64.b64encode(data).decode(), "ContentType": content_type,
            "ContentLength": len(data), "ContentID": content_id}


def post_inbound(client, payload, auth=WEBHOOK_AUTH):
    return client.post("/tickets/inbound", json=payload, auth=auth)
