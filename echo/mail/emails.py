"""Each email Echo sends is a named template set plus one function that builds its context."""

from __future__ import annotations

from typing import Callable

from flask import current_app, render_template

from echo.extensions import db
from echo.mail import reply_token
from echo.mail.models import OutboxMessage
from echo.mail.postmark import OutgoingEmail
from echo.tickets.models import Ticket

Builder = Callable[[OutboxMessage], tuple[dict, dict[str, str]]]
_BUILDERS: dict[str, Builder] = {}


def email(kind: str):
    def register(builder: Builder) -> Builder:
        _BUILDERS[kind] = builder
        return builder

    return register


def portal_link(ticket: Ticket) -> str | None:
    portal = current_app.config["ECHO"].portal_url
    return f"{portal}/tickets/{ticket.id}" if portal else None


def threading_headers(*message_ids: str | None) -> dict[str, str]:
    ids = [f"<{m}>" for m in message_ids if m]
    return {"In-Reply-To": ids[-1], "References": " ".join(ids)} if ids else {}


@email("acknowledgement")
def acknowledgement(outbox: OutboxMessage) -> tuple[dict, dict[str, str]]:
    ticket = db.session.get(Ticket, outbox.ticket_id)
    context = {"ticket": ticket, "portal_link": portal_link(ticket)}
    headers = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
    headers.update(threading_headers(outbox.context.get("in_reply_to")))
    return context, headers


def render(outbox: OutboxMessage) -> OutgoingEmail:
    """Turn an outbox entry into the email Postmark will send."""
    settings = current_app.config["ECHO"]
    context, headers = _BUILDERS[outbox.kind](outbox)
    context.setdefault("from_name", settings.from_name)
    headers.setdefault("X-Loop", settings.support_address)
    template = f"email/{outbox.kind}"
    ticket = context.get("ticket")
    reply_to = (
        reply_token.reply_address(settings.secret_key, settings.support_address, ticket.id)
        if ticket is not None else settings.support_address
    )
    metadata = {"echo_outbox_id": str(outbox.id)}
    if ticket is not None:
        metadata["echo_ticket_id"] = str(ticket.id)
    return OutgoingEmail(
        to=outbox.to_email,
        subject=" ".join(render_template(f"{template}/subject.txt", **context).split()),
        text_body=render_template(f"{template}/body.txt", **context),
        html_body=render_template(f"{template}/body.html", **context),
        reply_to=reply_to,
        headers=headers,
        metadata=metadata,
        tag=outbox.kind,
    )
