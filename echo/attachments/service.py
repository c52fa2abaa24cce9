"""Attachment use cases: check and decode incoming files, store their bytes, undo on rollback."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import unicodedata
import uuid
from dataclasses import dataclass

import puremagic
from sqlalchemy import event
from sqlalchemy.orm import Session

from echo.attachments import tnef
from echo.attachments.models import Attachment
from echo.attachments.storage import new_key, storage
from echo.extensions import db

log = logging.getLogger(__name__)

URL_PATH = "/tickets/attachments/{id}"
# Raster formats browsers cannot execute; everything else (SVG, HTML, PDF…) is only ever downloaded.
INLINE_IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,126}/[a-z0-9][a-z0-9!#$&^_.+-]{0,126}$")
_UNSAFE_FILENAME = re.compile(r"[\x00-\x1f\x7f/\\]+")
_NOT_PLAIN_ASCII = re.compile(r"[^\x20-\x7e]")
_INVISIBLE = {"Cf": "", "Cc": "_", "Cs": "_", "Zl": "_", "Zp": "_"}  # Unicode category → replacement
_NEW_KEYS = "echo_new_storage_keys"
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/]+")
MAX_CONTENT_ID = 255


@dataclass
class IncomingFile:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None


def decode_files(items, max_bytes: int) -> tuple[list[IncomingFile], list[str]]:
    """Decode the base64 attachments of an email, and say in a sentence each what could not be kept.

    Mail is never refused for an attachment: one over the size limit is left out (its size is
    checked before anything is decoded), base64 with stray characters or missing padding is
    read as mail clients read it, and what is no base64 at all is kept undecoded. The files
    inside an Outlook winmail.dat are unpacked beside it.
    """
    files, problems = [], []
    limit = f"{max_bytes / (1024 * 1024):g} MB"
    for index, item in enumerate(items, start=1):
        name = clean_filename(item.Name, index)
        if len(item.Content) > (max_bytes * 4) // 3 + 8:
            problems.append(f"The attachment {name!r} is larger than the {limit} limit and was not kept.")
            continue
        data = _lenient_base64(item.Content)
        if data is None:  # kept as it came, for whoever can make sense of it
            kept = clean_filename(f"{name}.undecoded", index)
            problems.append(f"The attachment {name!r} was not valid base64; what came is kept as {kept!r}.")
            files.append(IncomingFile(kept, "application/octet-stream", item.Content.encode("utf-8", "replace"), None))
            continue
        if len(data) > max_bytes:
            problems.append(f"The attachment {name!r} is larger than the {limit} limit and was not kept.")
            continue
        files.append(IncomingFile(
            filename=name, content_type=checked_content_type(item.ContentType, data), data=data,
            content_id=item.ContentID.strip().strip("<>").lower() or None,
        ))
        if tnef.is_tnef(name, item.ContentType):  # Outlook's winmail.dat: its files go beside it
            inside, unpack_problems = tnef.unpack(data, name, max_bytes)
            problems += unpack_problems
            for member in inside:
                files.append(IncomingFile(clean_filename(member.filename, len(files) + 1),
                                          checked_content_type(member.content_type, member.data), member.data, None))
    return files, problems


def _lenient_base64(content: str) -> bytes | None:
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        pass
    cleaned = _NOT_BASE64.sub("", content)  # line breaks, spaces, stray characters
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
    except (binascii.Error, ValueError):  # a lone character past a multiple of four
        return None


def clean_filename(name: str, index: int) -> str:
    """A name to store and show: no path, no control characters, nothing invisible that reorders it.

    Bidi controls and other format characters (Unicode category Cf) are removed, since "invoice",
    U+202E, "fdp.exe" shows as "invoiceexe.pdf"; other controls, line separators and lone
    surrogates become `_`. Only the first characters are looked at: the name is cut to 255 anyway.
    """
    name = _UNSAFE_FILENAME.sub("_", name[:4 * 255])
    name = _NOT_PLAIN_ASCII.sub(lambda char: _INVISIBLE.get(unicodedata.category(char[0]), char[0]), name)
    return name.strip(" .")[:255] or f"attachment-{index}"


def checked_content_type(declared: str, data: bytes) -> str:
    """The declared type, unless it is malformed or claims an image the bytes are not."""
    content_type = declared.split(";", 1)[0].strip().lower()
    if not _CONTENT_TYPE.match(content_type):
        return "application/octet-stream"
    if content_type in INLINE_IMAGE_TYPES or content_type == "image/jpg":
        try:
            sniffed = puremagic.from_string(data[:8192], mime=True)
        except (puremagic.PureError, ValueError):
            sniffed = ""
        if sniffed != content_type and not (sniffed == "image/jpeg" and content_type == "image/jpg"):
            return "application/octet-stream"
        return sniffed
    return content_type


def content_disposition(kind: str, filename: str) -> str:
    """`inline`/`attachment` with an ASCII fallback name and the UTF-8 one (RFC 6266).

    The name is cleaned again: names stored before bidi controls were removed must not reach a
    download dialog either.
    """
    from urllib.parse import quote

    filename = clean_filename(filename, 1)
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "'").replace("?", "_")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"


def is_inline_image(content_type: str) -> bool:
    """Whether bytes of this (already checked) type may be shown inline rather than downloaded."""
    return content_type in INLINE_IMAGE_TYPES


def store_file(thread_id: uuid.UUID, file: IncomingFile, *, add: bool = True) -> Attachment:
    """Write the bytes under a random key and make the attachment row (added to the session unless told not to).

    The intake adds its rows itself, once the thread they belong to has been written.
    """
    key = new_key()
    storage().put(key, file.data, file.content_type)
    db.session.info.setdefault(_NEW_KEYS, []).append(key)
    attachment = Attachment(
        id=uuid.uuid4(), thread_id=thread_id, filename=file.filename, content_type=file.content_type,
        size_bytes=len(file.data), s3_key=key, content_id=file.content_id[:MAX_CONTENT_ID] if file.content_id else None,
        sha256=hashlib.sha256(file.data).hexdigest(),
    )
    if add:
        db.session.add(attachment)
    return attachment


@event.listens_for(Session, "after_commit")
def _keep_stored(session: Session) -> None:
    session.info.pop(_NEW_KEYS, None)


@event.listens_for(Session, "after_rollback")
def _remove_orphans(session: Session) -> None:
    """Bytes written for a transaction that rolled back would belong to nothing: delete them."""
    for key in session.info.pop(_NEW_KEYS, None) or ():
        try:
            storage().delete(key)
        except Exception:
            log.warning("could not delete orphaned attachment bytes")
