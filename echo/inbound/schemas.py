"""The Postmark inbound webhook payload, validated into typed values before anything is written."""

from __future__ import annotations

import email.utils
import re

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from echo.errors import InvalidPayload
from echo.inbound import limits
from echo.validation import validate

Text = str | None
MAX_COPIED = 50  # others on a message kept for reply-all


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


# The bounds below are those `limits.fit_payload` cuts every field to before validation: the
# content of a message never fails them (mail is never refused for its size); only values of the
# wrong type, or a payload that is not Postmark's at all, do.
class Address(_Model):
    Email: str = Field(default="", max_length=320)
    Name: str = Field(default="", max_length=limits.MAX_NAME)
    MailboxHash: str = Field(default="", max_length=200)


class Header(_Model):
    Name: str = Field(max_length=limits.MAX_HEADER_NAME)
    Value: str = Field(default="", max_length=limits.MAX_HEADER_VALUE)


class Attachment(_Model):
    Name: str = ""
    Content: str = ""
    ContentType: str = "application/octet-stream"
    ContentLength: int = 0
    ContentID: str = ""


class InboundEmail(_Model):
    From: str = Field(default="", max_length=1000)
    FromName: str = Field(default="", max_length=limits.MAX_NAME)
    FromFull: Address | None = None
    To: str = Field(default="", max_length=limits.MAX_ADDRESS_LIST)
    ToFull: list[Address] = Field(default_factory=list, max_length=limits.MAX_RECIPIENTS)
    Cc: str = Field(default="", max_length=limits.MAX_ADDRESS_LIST)
    CcFull: list[Address] = Field(default_factory=list, max_length=limits.MAX_RECIPIENTS)
    Subject: str = Field(default="", max_length=10 * limits.MAX_SUBJECT)
    MessageID: str = Field(min_length=1, max_length=100)  # Postmark's own id, never the sender's
    Date: str = Field(default="", max_length=200)
    TextBody: str = Field(default="", max_length=limits.MAX_BODY_CHARS)
    HtmlBody: str = Field(default="", max_length=limits.MAX_HTML_CHARS)
    StrippedTextReply: str = Field(default="", max_length=limits.MAX_BODY_CHARS)
    MailboxHash: str = Field(default="", max_length=200)
    ReplyTo: str = Field(default="", max_length=1000)
    Headers: list[Header] = Field(default_factory=list, max_length=limits.MAX_HEADERS)
    Attachments: list[Attachment] = Field(default_factory=list, max_length=limits.MAX_ATTACHMENTS)
    # What fitting the payload to Echo's bounds cut (sentences for the agent), and the message
    # as it came: the payload before it was cut, or the raw .eml it was read from.
    _notices: list[str] = PrivateAttr(default_factory=list)
    _source: dict | None = PrivateAttr(default=None)
    _raw: bytes | None = PrivateAttr(default=None)

    @property
    def notices(self) -> list[str]:
        return self._notices

    def original(self) -> bytes:
        """The whole message as Echo received it: the raw .eml when it came as one, else rebuilt from the payload."""
        if self._raw is not None:
            return self._raw
        return limits.original_eml(self._source if self._source is not None else self.model_dump())

    def header_map(self) -> dict[str, str]:
        """Headers by lower-cased name; the first occurrence wins (the one nearest the sender's client)."""
        headers: dict[str, str] = {}
        for header in self.Headers:
            headers.setdefault(header.Name.strip().lower(), header.Value)
        return headers

    def copied(self, sender: str, support_address: str) -> list[str]:
        """Everyone else the message was written to (To and Cc), normalised, without the sender and
        without support's own addresses (its +tagged reply addresses too), at most MAX_COPIED."""
        local, _, domain = support_address.lower().rpartition("@")
        found: list[str] = []
        for entry in [*self.ToFull, *self.CcFull]:
            address = normalize_email(entry.Email)
            if not address or address == sender or address in found:
                continue
            name, _, host = address.rpartition("@")
            if host == domain and (name == local or name.startswith(local + "+")):
                continue
            if host.endswith("inbound.postmarkapp.com"):
                continue
            found.append(address)
            if len(found) == MAX_COPIED:
                break
        return found

    def sender(self) -> tuple[str, str]:
        """The sender's normalised email and display name, from FromFull or else the From header.

        Malformed senders are read as well as they can be (several addresses: the first; an
        address without its brackets), and mail with no address in From: falls back to the
        Sender:, Reply-To: and Return-Path: headers before it is refused.
        """
        if self.FromFull and self.FromFull.Email.strip():
            address, name = self.FromFull.Email, self.FromFull.Name or self.FromName
        else:
            name, address = email.utils.parseaddr(self.From)
        found = normalize_email(address)
        if not found:
            headers = self.header_map()
            for value in (self.From, self.FromFull.Email if self.FromFull else "", headers.get("sender", ""),
                          self.ReplyTo, headers.get("reply-to", ""), headers.get("return-path", "")):
                if (match := _ADDRESS.search(value[:1000])) and (found := normalize_email(match.group(0))):
                    break
        return found, " ".join(name.split())[:200]


_ADDRESS = re.compile(r"[^\s<>,;:\"()\[\]@]+@[^\s<>,;:\"()\[\]@]+\.[^\s<>,;:\"()\[\]@]+")


def is_address(address: str) -> bool:
    """Whether a (normalised) address has the shape mail can be sent to: local@domain.tld."""
    return bool(address) and _ADDRESS.fullmatch(address) is not None


def normalize_email(address: str) -> str:
    address = address.strip().strip("<>").strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in address) or len(address) > 320:
        return ""
    return f"{local}@{domain}".lower()


def parse_inbound(data: object, raw: bytes | None = None) -> InboundEmail:
    """Validate a decoded JSON body as a Postmark inbound payload or raise InvalidPayload.

    Every field is first cut to Echo's bounds (`limits.fit_payload`); `raw` is the message's
    .eml when it was read from one, kept as its original if anything has to be cut.
    """
    fitted = limits.fit_payload(data) if isinstance(data, dict) else None
    message = validate(InboundEmail, fitted.data if fitted else data,
                       "The payload does not match Postmark's inbound format.")
    if fitted is not None:
        message._notices, message._source, message._raw = fitted.notices, data, raw
    if not message.sender()[0]:
        raise InvalidPayload("The message has no sender address.", code="missing_sender")
    return message
