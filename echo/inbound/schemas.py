"""The Postmark inbound webhook payload, validated into typed values before anything is written."""

from __future__ import annotations

import email.utils

from pydantic import BaseModel, ConfigDict, Field, model_validator

from echo.errors import InvalidPayload
from echo.validation import validate

Text = str | None


class _Model(BaseModel):
    # Postmark adds fields over time; unknown ones are ignored, known ones are type-checked.
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _nulls_are_absent(cls, data):
        # Postmark sends null for some absent values: they take the field's default (one pass per
        # object rather than a validator per field: this runs for every header of every email).
        if isinstance(data, dict) and None in data.values():
            return {key: value for key, value in data.items() if value is not None}
        return data


class Address(_Model):
    Email: str = Field(default="", max_length=320)
    Name: str = Field(default="", max_length=500)
    MailboxHash: str = Field(default="", max_length=200)


class Header(_Model):
    Name: str = Field(max_length=200)
    Value: str = Field(default="", max_length=100_000)


class Attachment(_Model):
    Name: str = Field(default="", max_length=1000)
    Content: str = ""
    ContentType: str = Field(default="application/octet-stream", max_length=255)
    ContentLength: int = Field(default=0, ge=0)
    ContentID: str = Field(default="", max_length=1000)


class InboundEmail(_Model):
    From: str = Field(default="", max_length=1000)
    FromName: str = Field(default="", max_length=500)
    FromFull: Address | None = None
    To: str = Field(default="", max_length=100_000)
    ToFull: list[Address] = Field(default_factory=list, max_length=1000)
    Cc: str = Field(default="", max_length=100_000)
    CcFull: list[Address] = Field(default_factory=list, max_length=1000)
    Subject: str = Field(default="", max_length=10_000)
    MessageID: str = Field(min_length=1, max_length=100)
    Date: str = Field(default="", max_length=200)
    TextBody: str = ""
    HtmlBody: str = ""
    StrippedTextReply: str = ""
    MailboxHash: str = Field(default="", max_length=200)
    Headers: list[Header] = Field(default_factory=list, max_length=2000)
    Attachments: list[Attachment] = Field(default_factory=list, max_length=500)

    def header_map(self) -> dict[str, str]:
        """Headers by lower-cased name; the first occurrence wins (the one nearest the sender's client)."""
        headers: dict[str, str] = {}
        for header in self.Headers:
            headers.setdefault(header.Name.strip().lower(), header.Value)
        return headers

    def sender(self) -> tuple[str, str]:
        """The sender's normalised email and display name, from FromFull or else the From header."""
        if self.FromFull and self.FromFull.Email.strip():
            address, name = self.FromFull.Email, self.FromFull.Name or self.FromName
        else:
            name, address = email.utils.parseaddr(self.From)
        return normalize_email(address), " ".join(name.split())[:200]


def normalize_email(address: str) -> str:
    address = address.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address):
        return ""
    return f"{local}@{domain}".lower()


def parse_inbound(data: object) -> InboundEmail:
    """Validate a decoded JSON body as a Postmark inbound payload or raise InvalidPayload."""
    message = validate(InboundEmail, data, "The payload does not match Postmark's inbound format.")
    if not message.sender()[0]:
        raise InvalidPayload("The message has no sender address.", code="missing_sender")
    return message
