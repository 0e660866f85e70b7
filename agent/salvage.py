"""Salvage from a damaged outbox: the envelopes still readable in its pages, read by hand in Python.

SQLite gives up on a damaged file (a destroyed header, a truncated or overwritten page); its own recovery
tools are not on every PC. This reads the file format (https://www.sqlite.org/fileformat.html) page by
page instead: every table-leaf page of the file and of its WAL, each cell decoded as a row, and the rows
shaped like the outbox's envelopes kept. What cannot be decoded is skipped and counted.

Every version of a page is read (the file's and each WAL frame's), so an envelope already acknowledged
may come back: the collector stores each (agent, epoch, seq) once and answers it as a duplicate.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

from shared.wire import LEGACY_EPOCH

HEADER_MAGIC = b"SQLite format 3\x00"
WAL_HEADER = 32
WAL_FRAME_HEADER = 24
TABLE_INTERIOR = 0x05
TABLE_LEAF = 0x0D
# The first byte of every b-tree page: interior index, interior table, leaf index, leaf table.
BTREE_PAGES = frozenset({0x02, 0x05, 0x0A, 0x0D})
DEFAULT_PAGE_SIZE = 4096


@dataclass(frozen=True)
class SalvagedEnvelope:
    """An envelope read from a damaged outbox, with the stream and number it was sent under."""

    epoch: str
    seq: int
    queued_at: float
    aged: float | None
    state_change: bool
    body: str
    rejected: str | None


@dataclass(frozen=True)
class Salvage:
    """What a damaged outbox still held: envelopes read back, and how many pages were found unreadable."""

    envelopes: list[SalvagedEnvelope]
    unreadable: int


class _Unreadable(Exception):
    """A cell or page that does not decode."""


def _varint(data: bytes, at: int) -> tuple[int, int]:
    """SQLite's big-endian variable-length integer at `at`: (value, offset after it)."""
    value = 0
    for i in range(9):
        if at + i >= len(data):
            raise _Unreadable("varint past the end of the page")
        byte = data[at + i]
        if i == 8:
            return (value << 8) | byte, at + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, at + i + 1
    raise AssertionError("unreachable")


def _page_size(db: bytes, wal: bytes) -> int:
    """The page size from the file's header, else from the WAL's, else SQLite's default."""
    if db.startswith(HEADER_MAGIC) and len(db) >= 100:
        (size,) = struct.unpack(">H", db[16:18])
        size = 65536 if size == 1 else size
        if size >= 512 and size & (size - 1) == 0:
            return size
    if len(wal) >= WAL_HEADER:
        (size,) = struct.unpack(">I", wal[8:12])
        if 512 <= size <= 65536 and size & (size - 1) == 0:
            return size
    return DEFAULT_PAGE_SIZE


def _pages(db: bytes, wal: bytes, size: int) -> tuple[list[tuple[int, bytes]], dict[int, bytes]]:
    """Every version of every whole page as (number, bytes), and the newest version of each by number."""
    versions = [(n // size + 1, db[n:n + size]) for n in range(0, len(db) - size + 1, size)]
    if len(wal) >= WAL_HEADER:
        frame = WAL_FRAME_HEADER + size
        for at in range(WAL_HEADER, len(wal) - frame + 1, frame):
            (number,) = struct.unpack(">I", wal[at:at + 4])
            if number:
                versions.append((number, wal[at + WAL_FRAME_HEADER:at + frame]))
    return versions, dict(versions)


def _payload(page: bytes, at: int, length: int, usable: int, newest: dict[int, bytes]) -> bytes:
    """A table-leaf cell's payload of `length` bytes starting at `at`, with its overflow pages."""
    most = usable - 35
    if length <= most:
        local = length
    else:
        least = (usable - 12) * 32 // 255 - 23
        local = least + (length - least) % (usable - 4)
        local = local if local <= most else least
    data = page[at:at + local]
    if len(data) < local:
        raise _Unreadable("cell past the end of the page")
    if local == length:
        return data
    parts = [data]
    (following,) = struct.unpack(">I", page[at + local:at + local + 4])
    remaining = length - local
    seen: set[int] = set()
    while remaining > 0:
        overflow = newest.get(following)
        if overflow is None or following in seen:
            raise _Unreadable(f"overflow page {following} missing")
        seen.add(following)
        chunk = overflow[4:4 + min(remaining, usable - 4)]
        parts.append(chunk)
        remaining -= len(chunk)
        (following,) = struct.unpack(">I", overflow[:4])
    return b"".join(parts)


def _record(payload: bytes) -> list[object]:
    """The columns of a record (https://www.sqlite.org/fileformat.html#record_format)."""
    header_size, at = _varint(payload, 0)
    if header_size > len(payload):
        raise _Unreadable("record header past the payload")
    types = []
    while at < header_size:
        kind, at = _varint(payload, at)
        types.append(kind)
    values: list[object] = []
    at = header_size
    sizes = {1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8}
    for kind in types:
        if kind in (0, 10, 11):
            values.append(None)
        elif kind in sizes:
            values.append(int.from_bytes(payload[at:at + sizes[kind]], "big", signed=True))
            at += sizes[kind]
        elif kind == 7:
            values.append(struct.unpack(">d", payload[at:at + 8])[0])
            at += 8
        elif kind in (8, 9):
            values.append(kind - 8)
        else:
            length = (kind - 12) // 2 if kind % 2 == 0 else (kind - 13) // 2
            raw = payload[at:at + length]
            values.append(raw if kind % 2 == 0 else raw.decode())
            at += length
        if at > len(payload):
            raise _Unreadable("record past the payload")
    return values


Row = tuple[int, list[object]]


def _rows(page: bytes, first: bool, usable: int, newest: dict[int, bytes]) -> tuple[list[Row], bool]:
    """The rows of a table-leaf page as (rowid, columns), and whether any of its cells did not decode."""
    base = 100 if first else 0
    (cells,) = struct.unpack(">H", page[base + 3:base + 5])
    if base + 8 + 2 * cells > usable:
        raise _Unreadable("more cells than the page holds")
    rows: list[Row] = []
    bad = 0
    for i in range(cells):
        try:
            pointer_at = base + 8 + 2 * i
            if pointer_at + 2 > len(page):
                raise _Unreadable("cell pointer past the page")
            (at,) = struct.unpack(">H", page[pointer_at:pointer_at + 2])
            if not base + 8 <= at < usable:
                raise _Unreadable("cell pointer out of the page")
            length, at = _varint(page, at)
            rowid, at = _varint(page, at)
            rows.append((rowid, _record(_payload(page, at, length, usable, newest))))
        except (_Unreadable, struct.error, UnicodeDecodeError):
            bad += 1
    return rows, bad > 0


def _children(page: bytes, first: bool, last_page: int) -> set[int]:
    """The page numbers an interior table page points to (its cells' left children and its right-most child);
    none when the page only looks like one (garbage whose first byte happens to match)."""
    base = 100 if first else 0
    (cells,) = struct.unpack(">H", page[base + 3:base + 5])
    (right,) = struct.unpack(">I", page[base + 8:base + 12])
    if base + 12 + 2 * cells > len(page):
        return set()
    children = {right}
    for i in range(cells):
        pointer_at = base + 12 + 2 * i
        (at,) = struct.unpack(">H", page[pointer_at:pointer_at + 2])
        if not base + 12 + 2 * cells <= at <= len(page) - 4:
            return set()
        children.add(struct.unpack(">I", page[at:at + 4])[0])
    return children if all(1 <= child <= last_page for child in children) else set()


def _envelope(rowid: int, columns: list[object], agent_id: str) -> SalvagedEnvelope | None:
    """The row as an envelope of this agent's outbox; None when it is another table's row."""
    if len(columns) not in (6, 7) or columns[0] is not None or not isinstance(columns[4], str):
        return None
    queued_at, state_change, _size, body, rejected = columns[1:6]
    aged = columns[6] if len(columns) == 7 else None
    if not isinstance(queued_at, int | float) or not isinstance(state_change, int):
        return None
    try:
        fields = json.loads(body)
    except ValueError:
        raise _Unreadable("an envelope's body is not JSON") from None
    if not isinstance(fields, dict) or fields.get("seq") != rowid or fields.get("agent_id") != agent_id:
        return None
    return SalvagedEnvelope(
        epoch=str(fields.get("epoch") or LEGACY_EPOCH), seq=rowid, queued_at=float(queued_at),
        aged=float(aged) if isinstance(aged, int | float) else None, state_change=bool(state_change), body=body,
        rejected=rejected if isinstance(rejected, str) else None,
    )


def salvage(path: Path, agent_id: str) -> Salvage:
    """The envelopes of `agent_id` still readable in the outbox file `path` and its WAL (`path`-wal),
    each once (by stream and number, a refusal kept), oldest first; and how many pages did not read.

    An unreadable page is one a table's interior page points to that is not a b-tree page (overwritten) or
    not there (truncated), or a table-leaf page with a cell that does not decode (which may be garbage
    whose first byte happens to match)."""
    db = path.read_bytes() if path.exists() else b""
    wal_path = Path(f"{path}-wal")
    wal = wal_path.read_bytes() if wal_path.exists() else b""
    size = _page_size(db, wal)
    # Bytes at the end of each page that extensions reserve; none in an outbox, unless the header says so.
    usable = size - (db[20] if db.startswith(HEADER_MAGIC) and len(db) > 20 else 0)
    versions, newest = _pages(db, wal, size)
    found: dict[tuple[str, int], SalvagedEnvelope] = {}
    unreadable: set[int] = set()
    # The file's size in pages, by its header (counting pages truncated away) or else by what is there.
    last_page = max(newest, default=0)
    if db.startswith(HEADER_MAGIC) and len(db) >= 32:
        last_page = max(last_page, struct.unpack(">I", db[28:32])[0])
    for number, page in newest.items():
        base = 100 if number == 1 else 0
        if page[base] == TABLE_INTERIOR:
            for child in _children(page, number == 1, last_page):
                if child not in newest or newest[child][100 if child == 1 else 0] not in BTREE_PAGES:
                    unreadable.add(child)
    for number, page in versions:
        base = 100 if number == 1 else 0
        if page[base] != TABLE_LEAF:
            continue
        try:
            rows, damaged = _rows(page, number == 1, usable, newest)
        except (_Unreadable, struct.error):
            rows, damaged = [], True
        if damaged:
            unreadable.add(number)
        for rowid, columns in rows:
            try:
                envelope = _envelope(rowid, columns, agent_id)
            except _Unreadable:
                unreadable.add(number)
                continue
            if envelope is None:
                continue
            key = (envelope.epoch, envelope.seq)
            known = found.get(key)
            if known is None or (envelope.rejected and not known.rejected):
                found[key] = envelope
    return Salvage(sorted(found.values(), key=lambda e: (e.queued_at, e.seq)), len(unreadable))
