"""Unpack the files inside an Outlook TNEF attachment (`winmail.dat`, application/ms-tnef).

tnefparse reads the format, but it believes every count in the stream (a few bytes can claim
four billion properties) and reads each attribute from a fresh copy of the rest of the stream,
which costs the square of its size. So Echo walks the stream first, as MS-OXTNEF lays it out
and as tnefparse will read it, and hands tnefparse one small stream per attached file: the
message's own properties and recipients, which Echo does not use, are left out, and a stream
whose counts do not fit its bytes, that nests messages too deep or would still cost too much
to read is not read at all. The winmail.dat itself is always kept as it came.
"""

from __future__ import annotations

import itertools
import mimetypes
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from tnefparse import TNEF  # type: ignore[import-untyped]

CONTENT_TYPES = frozenset({"application/ms-tnef", "application/vnd.ms-tnef"})
FILENAME = "winmail.dat"
MAX_FILES = 100
MAX_DEPTH = 4  # messages attached to attached messages
MAX_ATTRIBUTES = 20_000  # about seven a file
MAX_VALUES = 100_000  # MAPI properties and their values, each one object in tnefparse
MAX_COPIED = 1 << 30  # bytes tnefparse may copy while reading, about a sixth of a second

_SIGNATURE = 0x223E9F78
_EMBEDDED_MESSAGE = b"\x07\x03\x02\x00\x00\x00\x00\x00\xc0\x00\x00\x00\x00\x00\x00\x46"
_ATTACHMENT_LEVEL = 2
_OEM_CODEPAGE, _ATTACH_RENDERING = 0x9007, 0x9002  # the codepage of 8-bit names; the start of each file
_MAPI_PROPERTIES, _RECIPIENTS, _ATTACHMENT = 0x9003, 0x9004, 0x9005  # the attributes that hold MAPI properties
_SKIPPED = (0x0004).to_bytes(2, "little") + (0x0006).to_bytes(2, "little")  # an id and a type tnefparse skips
_ATTACH_DATA_OBJECT, _ATTACH_MIME_TAG = 0x3701, 0x370E
_FIXED_SIZES = {0x2: 2, 0xB: 2, 0x3: 4, 0x4: 4, 0xA: 4, 0x5: 8, 0x6: 8, 0x7: 8, 0x14: 8, 0x40: 8, 0x48: 16}
_VARIABLE = {0x0, 0xD, 0x1E, 0x1F, 0x102}  # unspecified, object, string, unicode string, binary
_BINARY = {0x0, 0xD, 0x102}
_MULTI_VALUE, _NAMED = 0x1000, 0x8000
_MIME_TYPES = mimetypes.MimeTypes()  # built-in table only, so the same name gets the same type on every host


@dataclass(frozen=True)
class Member:
    filename: str
    content_type: str
    data: bytes


class NotUnpacked(Exception):
    """The stream is not TNEF, or not one that is safe to read; the message says why, for an agent."""


def is_tnef(filename: str, content_type: str) -> bool:
    """Whether an attachment is a TNEF stream, by its type or by the name Outlook gives it."""
    return content_type.split(";", 1)[0].strip().lower() in CONTENT_TYPES or filename.strip().lower() == FILENAME


def unpack(data: bytes, name: str, max_bytes: int) -> tuple[list[Member], list[str]]:
    """Return the files inside a TNEF stream, and a sentence each for what of it could not be kept.

    The files of attached messages are unpacked too. Never raises: a stream that cannot be read
    gives no files and says so.
    """
    try:
        budget, members = _Budget(), list[Member]()
        for stream in _file_streams(data):
            _check_stream(memoryview(stream), 1, budget)
            members += _members(TNEF(bytes(stream), do_checksum=False))
    except NotUnpacked as reason:
        return [], [f"The attachment {name!r} is an Outlook winmail.dat that could not be unpacked ({reason}); "
                    "it is kept as it came."]
    except Exception:
        return [], [f"The attachment {name!r} is an Outlook winmail.dat that could not be read; it is kept as it came."]
    problems = []
    if len(members) > MAX_FILES:
        problems.append(f"The attachment {name!r} holds {len(members):,} files; the first {MAX_FILES} were unpacked.")
        members = members[:MAX_FILES]
    kept = []
    for member in members:
        if len(member.data) > max_bytes:
            problems.append(f"The file {member.filename!r} inside {name!r} is larger than the "
                            f"{max_bytes / (1024 * 1024):g} MB limit and was not kept.")
        else:
            kept.append(member)
    return kept, problems


def _members(parsed: TNEF, depth: int = 1) -> Iterator[Member]:
    for attachment in parsed.attachments:
        embedded = getattr(attachment, "embed", None)
        if embedded is not None and depth < MAX_DEPTH:  # an attached message: what counts is its files
            yield from _members(embedded, depth + 1)
            continue
        data, filename = attachment.data, _filename(attachment, parsed.codepage)
        if isinstance(data, bytes) and (data or filename):
            yield Member(filename, _content_type(attachment, filename), data)


def _filename(attachment, codepage: str | None) -> str:
    try:
        name = attachment.long_filename()
    except (UnicodeError, LookupError, TypeError, ValueError, struct.error):  # a short name that is not UTF-8
        name = getattr(attachment, "_name", "")
    if isinstance(name, bytes):
        name = name.decode(codepage or "cp1252", errors="replace")
    return str(name).replace("\x00", "").strip()


def _content_type(attachment, filename: str) -> str:
    for prop in attachment.mapi_attrs:
        if prop.name == _ATTACH_MIME_TAG:
            try:
                declared = prop.data
            except Exception:
                break
            if isinstance(declared, str) and "/" in declared:
                return declared.strip()
    return _MIME_TYPES.guess_type(filename, strict=False)[0] or "application/octet-stream"


# --- the walk before tnefparse ---------------------------------------------------------------


class _Budget:
    """What reading the stream will cost tnefparse, checked as the walk goes."""

    def __init__(self) -> None:
        self.attributes = self.values = self.copied = 0

    def spend(self, attributes: int = 0, values: int = 0, copied: int = 0) -> None:
        self.attributes += attributes
        self.values += values
        self.copied += copied
        if self.attributes > MAX_ATTRIBUTES:
            raise NotUnpacked(f"more than {MAX_ATTRIBUTES:,} attributes")
        if self.values > MAX_VALUES:
            raise NotUnpacked(f"more than {MAX_VALUES:,} properties")
        if self.copied > MAX_COPIED:
            raise NotUnpacked("too costly to read")


class _Ended(Exception):
    """A read ran past the end of a property list: tnefparse stops reading the list there too."""


def _uint(view: memoryview, offset: int, size: int) -> int:
    if offset < 0 or offset + size > len(view):
        raise _Ended
    return int.from_bytes(view[offset:offset + size], "little")


def _attributes(view: memoryview) -> Iterator[tuple[int, int, int, int]]:
    """Yield each attribute's level, name, start and end, as tnefparse's own loop finds them."""
    if len(view) < 6 or int.from_bytes(view[:4], "little") != _SIGNATURE:
        raise NotUnpacked("not a TNEF file")
    offset = 6
    while offset + 12 < len(view):  # level, id (name and type), length, value, checksum
        length = min(len(view) - offset, _uint(view, offset + 5, 4) + 11)
        yield view[offset], _uint(view, offset + 1, 2), offset, offset + length
        offset += length


def _file_streams(data: bytes) -> list[bytearray]:
    """Split a TNEF stream into one per attached file: its header, its codepage, that file's attributes."""
    view = memoryview(data)
    spans = list(itertools.islice(_attributes(view), MAX_ATTRIBUTES + 1))
    if len(spans) > MAX_ATTRIBUTES:
        raise NotUnpacked(f"more than {MAX_ATTRIBUTES:,} attributes")
    head = bytes(view[:6]) + b"".join(view[start:end] for level, name, start, end in spans
                                      if level != _ATTACHMENT_LEVEL and name == _OEM_CODEPAGE)
    streams: list[bytearray] = []
    for level, name, start, end in spans:
        if level == _ATTACHMENT_LEVEL and name == _ATTACH_RENDERING:
            streams.append(bytearray(head))
        if level == _ATTACHMENT_LEVEL and streams:  # tnefparse cannot read a file's attributes before its start
            streams[-1] += view[start:end]
    return streams


def _check_stream(view: memoryview, depth: int, budget: _Budget) -> None:
    """Walk a TNEF stream's attributes as tnefparse reads them, hiding the message's own properties.

    `view` is writable: the message-level property list and recipient table are renamed, in
    place, to an attribute tnefparse skips.
    """
    if depth > MAX_DEPTH:
        raise NotUnpacked(f"messages attached more than {MAX_DEPTH} deep")
    for level, name, start, end in _attributes(view):
        budget.spend(attributes=1, copied=len(view) - start)  # tnefparse copies the rest for each attribute
        if level == _ATTACHMENT_LEVEL and name == _ATTACHMENT:
            _check_properties(view[start + 9:end - 2], depth, budget)
        elif level != _ATTACHMENT_LEVEL and name in (_MAPI_PROPERTIES, _RECIPIENTS):
            view[start + 1:start + 5] = _SKIPPED


def _check_properties(view: memoryview, depth: int, budget: _Budget) -> None:
    """Walk one attachment's MAPI property list, refusing counts that cannot fit in the bytes left.

    Where a read runs past the end, tnefparse stops reading the list, and so does the walk.
    """
    offset = 0
    try:
        count = _uint(view, offset, 4)
        offset += 4
        _fits(count, 4, len(view) - offset)
        budget.spend(values=count)
        for _ in range(count):
            if offset >= len(view):
                break
            kind, name = _uint(view, offset, 2), _uint(view, offset + 2, 2)
            offset += 4
            if name >= _NAMED:  # a GUID, then a number or a padded name
                offset += 16
                offset += 4 + (4 if _uint(view, offset, 4) == 0 else 4 + _padded(_uint(view, offset + 4, 4)))
            values = None
            if kind & _MULTI_VALUE:
                kind ^= _MULTI_VALUE
                values = _uint(view, offset, 4)
                offset += 4
            if kind in _FIXED_SIZES:
                size = _FIXED_SIZES[kind]
                _fits(values or 1, size, len(view) - offset)  # tnefparse reads these on past the end
                budget.spend(values=values or 1)
                offset += size * (values or 1) + (2 if size == 2 and (values or 1) % 2 else 0)
            elif kind in _VARIABLE:
                offset = _check_values(view, offset, kind, name, values, depth, budget)
            else:
                return  # a type tnefparse does not know: it stops reading the list
    except _Ended:
        return


def _check_values(view: memoryview, offset: int, kind: int, name: int, values: int | None, depth: int,
                  budget: _Budget) -> int:
    """Walk the values of one string or binary property, and any message attached in them."""
    _fits(values or 1, 4, len(view) - offset)
    for _ in range(values or 1):
        count = 1 if values else _uint(view, offset, 4)
        offset += 0 if values else 4
        _fits(count, 4, len(view) - offset)
        budget.spend(values=count)
        parts = []
        for _ in range(count):
            size = _padded(_uint(view, offset, 4))
            parts.append(view[offset + 4:offset + 4 + size])
            offset += 4 + size
        if name == _ATTACH_DATA_OBJECT and kind in _BINARY:
            _check_embedded(parts, depth, budget)
    return offset


def _check_embedded(parts: list[memoryview], depth: int, budget: _Budget) -> None:
    """Walk the message an attachment may be, which tnefparse reads as a TNEF stream of its own.

    tnefparse joins the value's parts with their trailing NULs stripped, and reads what follows
    the attached-message signature; only a message in one part can be walked where it lies.
    """
    stripped = [bytes(part).rstrip(b"\x00") for part in parts]
    if not b"".join(stripped).startswith(_EMBEDDED_MESSAGE):
        return
    if len(parts) > 1:
        raise NotUnpacked("an attached message in pieces")
    _check_stream(parts[0][len(_EMBEDDED_MESSAGE):len(stripped[0])], depth + 1, budget)


def _fits(count: int, size: int, room: int) -> None:
    if count > max(room, 0) // size + 1:
        raise NotUnpacked("counts that do not fit in the file")


def _padded(size: int) -> int:
    return size + (-size % 4)
