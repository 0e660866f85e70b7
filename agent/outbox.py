"""The durable outbox: every envelope is written to SQLite before it is sent, and deleted only when acked."""

from __future__ import annotations

import json
import logging
import os
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from agent.salvage import salvage
from shared.base import Signal
from shared.clock import Clock, system_clock
from shared.private import private_sqlite
from shared.wire import LEGACY_EPOCH, SCHEMA_VERSION, Envelope, Unknown

log = logging.getLogger(__name__)
T = TypeVar("T")

OUTBOX_FILE = "outbox.sqlite3"
# The WAL is checkpointed every this many pages (SQLite's default is 1000) and cut back to this size after.
WAL_PAGES = 256
WAL_BYTES = 1024 * 1024
# Signals that repeat by nature: a new one carries no news, so they are the first to go when space is short.
ROUTINE_KINDS = frozenset({"heartbeat"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS envelopes (
    seq INTEGER PRIMARY KEY,
    queued_at REAL NOT NULL,
    state_change INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body TEXT NOT NULL,
    rejected TEXT
);
CREATE TABLE IF NOT EXISTS last_content (kind TEXT PRIMARY KEY, digest TEXT NOT NULL);
-- Envelopes read back from a damaged outbox, sent again under their own stream and number, before the rest.
CREATE TABLE IF NOT EXISTS salvaged (
    id INTEGER PRIMARY KEY,
    epoch TEXT NOT NULL,
    seq INTEGER NOT NULL,
    queued_at REAL NOT NULL,
    aged REAL,
    state_change INTEGER NOT NULL,
    size INTEGER NOT NULL,
    body TEXT NOT NULL,
    rejected TEXT,
    UNIQUE (epoch, seq)
);
"""


@dataclass(frozen=True)
class OutboxStats:
    """What `fieldpost-agent status` shows about the outbox."""

    pending: int
    pending_bytes: int
    oldest_pending_at: datetime | None
    rejected: int
    # The collector's reason for the newest refused envelope, and when that envelope was queued.
    last_rejection: str | None
    last_rejection_queued_at: datetime | None
    next_seq: int
    last_upload_at: datetime | None
    last_upload_result: str | None
    # What went wrong with the outbox itself (a damaged file moved aside, reports dropped), and when.
    warning: str | None = None
    warning_at: datetime | None = None
    # Routine envelopes dropped to stay within the bounds, since the outbox was created.
    dropped: int = 0


@dataclass(frozen=True)
class Rejected:
    """An envelope the collector refused; kept (and not resent) so a technician can look at it."""

    seq: int
    reason: str
    body: str


def _set_kind(signals: Sequence[Signal]) -> str:
    """The check a signal set came from (an `unknown` signal names its check)."""
    return ",".join(sorted({s.check if isinstance(s, Unknown) else s.kind for s in signals}))


def _without_times(value: Any) -> Any:
    """`value` with every timestamp removed, so that only a change of content counts as a change."""
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items() if not isinstance(v, datetime)}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


def content_digest(signals: Sequence[Signal]) -> str:
    """A stable text of what the signals say, ignoring when they were collected."""
    return json.dumps([_without_times(s.model_dump()) for s in signals], sort_keys=True, default=str)


def _from_ts(value: float | str | None) -> datetime | None:
    """A UTC datetime from stored unix seconds."""
    return None if value is None else datetime.fromtimestamp(float(value), UTC)


def _connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), WAL, fsync at every commit; the file
    (queued reports) owner-only."""
    db = sqlite3.connect(private_sqlite(path), isolation_level=None)
    db.execute("PRAGMA busy_timeout = 5000")
    db.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is on disk before put() returns, so power loss cannot undo a queued envelope.
    db.execute("PRAGMA synchronous = FULL")
    # Without a size limit a WAL never shrinks: on a small state disk it would hold the space it once took.
    db.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
    db.execute(f"PRAGMA journal_size_limit = {WAL_BYTES}")
    return db


# SQLite's primary result codes for a file that is not (or no longer) a sound database.
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})


class DamagedOutbox(Exception):
    """The outbox file cannot be read as a sound database (truncated, overwritten, not SQLite)."""


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    """True when SQLite says the file itself is damaged (not: locked, full, unwritable)."""
    return (getattr(exc, "sqlite_errorcode", 0) & 0xFF) in _DAMAGE_CODES


def _open_sound(path: Path) -> sqlite3.Connection:
    """The outbox file, checked page by page; DamagedOutbox when it is not a sound database."""
    db: sqlite3.Connection | None = None
    try:
        db = _connect(path)
        db.executescript(SCHEMA)
        if "aged" not in {row[1] for row in db.execute("PRAGMA table_info(envelopes)")}:
            # Outboxes from before the age clock: their envelopes are aged by the wall clock they were queued at.
            db.execute("ALTER TABLE envelopes ADD COLUMN aged REAL")
        problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
    except sqlite3.DatabaseError as exc:
        if db is not None:
            db.close()
        if _is_damage(exc):
            raise DamagedOutbox(str(exc)) from exc
        raise
    if problems != ["ok"]:
        db.close()
        raise DamagedOutbox("; ".join(problems))
    return db


def _stats(db: sqlite3.Connection) -> OutboxStats:
    """Counts and markers of the outbox behind `db`."""
    pending, pending_bytes, oldest = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(queued_at) FROM "
        "(SELECT size, queued_at FROM envelopes WHERE rejected IS NULL "
        "UNION ALL SELECT size, queued_at FROM salvaged WHERE rejected IS NULL)"
    ).fetchone()
    (rejected,) = db.execute("SELECT (SELECT COUNT(*) FROM envelopes WHERE rejected IS NOT NULL) "
                             "+ (SELECT COUNT(*) FROM salvaged WHERE rejected IS NOT NULL)").fetchone()
    newest = db.execute(
        "SELECT rejected, queued_at FROM envelopes WHERE rejected IS NOT NULL ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
    return OutboxStats(
        pending=pending, pending_bytes=pending_bytes, oldest_pending_at=_from_ts(oldest), rejected=rejected,
        last_rejection=newest[0] if newest else None,
        last_rejection_queued_at=_from_ts(newest[1]) if newest else None,
        next_seq=int(meta.get("next_seq", 1)), last_upload_at=_from_ts(meta.get("last_upload_at")),
        last_upload_result=meta.get("last_upload_result"), warning=meta.get("warning"),
        warning_at=_from_ts(meta.get("warning_at")), dropped=int(meta.get("dropped", 0)),
    )


def read_stats(path: Path) -> OutboxStats | None:
    """The outbox's stats without taking it over; None when there is no outbox yet.

    A damaged file reads as empty, with a warning saying so (the service moves it aside when it opens it).
    """
    if not path.exists():
        return None
    try:
        db = _connect(path)
        try:
            db.executescript(SCHEMA)
            return _stats(db)
        finally:
            db.close()
    except sqlite3.DatabaseError as exc:
        if not _is_damage(exc):
            raise
        return OutboxStats(
            pending=0, pending_bytes=0, oldest_pending_at=None, rejected=0, last_rejection=None,
            last_rejection_queued_at=None, next_seq=1, last_upload_at=None, last_upload_result=None,
            warning=f"the outbox file is damaged ({exc}); the agent service moves it aside and starts a new one",
        )


class Outbox:
    """Envelopes waiting to be sent, in one SQLite file; sequence numbers are never reused."""

    def __init__(self, path: Path, agent_id: str, boot_id: str, *, max_bytes: int = 50 * 1024 * 1024,
                 max_age: timedelta = timedelta(days=14), clock: Clock = system_clock,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.agent_id = agent_id
        self.boot_id = boot_id
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.clock = clock
        self.monotonic = monotonic
        self.path = path
        try:
            self._db = _open_sound(path)
        except DamagedOutbox as exc:
            self._db = self._start_anew(str(exc))
        self._adopt(agent_id)
        # The stream this outbox's sequence numbers count in; None: the legacy stream, named by no field.
        self.epoch = self._stream()

    def close(self) -> None:
        """Close the file."""
        self._db.close()

    def _start_anew(self, damage: str) -> sqlite3.Connection:
        """Move the damaged outbox file (and its WAL) aside and start a new one, in a new stream.

        The envelopes still readable in the damaged file are queued again under their own stream and number
        (so the collector stores each once), to be sent first; the agent goes on reporting, and the next
        heartbeats carry the warning (with what was salvaged and what was not) so the device shows it.
        """
        stamp = self.clock().strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            part = Path(f"{self.path}{suffix}")
            if part.exists():
                os.replace(part, Path(f"{aside}{suffix}"))
        found = salvage(aside, self.agent_id)
        waiting = sum(1 for envelope in found.envelopes if envelope.rejected is None)
        warning = (f"the outbox was damaged ({damage}); it was moved aside to {aside.name} and a new one "
                   f"started: {waiting} queued reports salvaged from it and sent again, {found.unreadable} "
                   "unreadable pages skipped (reports in them are lost)")
        log.error("OUTBOX DAMAGED: %s (%s): moved aside to %s; %d queued envelopes salvaged and sent again, "
                  "%d unreadable pages skipped; a new outbox is started and the agent goes on",
                  self.path, damage, aside, waiting, found.unreadable)
        db = _open_sound(self.path)
        db.execute("BEGIN IMMEDIATE")
        db.executemany(
            "INSERT INTO salvaged (epoch, seq, queued_at, aged, state_change, size, body, rejected) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (epoch, seq) DO NOTHING",
            [(e.epoch, e.seq, e.queued_at, e.aged, int(e.state_change), len(e.body.encode()), e.body, e.rejected)
             for e in found.envelopes])
        self._set_meta(db, "warning", warning)
        self._set_meta(db, "warning_at", self.clock().timestamp())
        db.execute("COMMIT")
        return db

    def _surviving_damage(self, operation: Callable[[], T]) -> T:
        """Run `operation`; if the file turns out damaged while the agent runs, start anew and run it again."""
        try:
            return operation()
        except sqlite3.DatabaseError as exc:
            if not _is_damage(exc):
                raise
            self._db.close()
            self._db = self._start_anew(str(exc))
            self._adopt(self.agent_id)
            self.epoch = self._stream()
            return operation()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: all of it is on disk, or none of it."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        """One stored marker."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, db: sqlite3.Connection, key: str, value: object) -> None:
        """Store one marker inside the caller's transaction."""
        db.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                   "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, str(value)))

    def _adopt(self, agent_id: str) -> None:
        """Bind the outbox to this agent; envelopes queued under an earlier enrolment cannot be sent."""
        previous = self._meta("agent_id")
        if previous == agent_id:
            return
        with self._transaction() as db:
            if previous is not None:
                stale = db.execute(
                    "UPDATE envelopes SET rejected = ? WHERE rejected IS NULL",
                    (f"queued for agent {previous}; this device was enrolled again as {agent_id}",),
                ).rowcount
                db.execute("DELETE FROM last_content")
                log.warning("outbox: %d envelopes of former agent %s kept unsent", stale, previous)
            self._set_meta(db, "agent_id", agent_id)

    def _stream(self) -> str | None:
        """The outbox's stream, chosen when the outbox is created: a new random id, so that the collector
        tells this outbox's sequence numbers from those of an outbox that was lost. An outbox made before
        streams existed goes on in the legacy stream, whose envelopes name none."""
        epoch = self._meta("epoch")
        if epoch is None:
            with self._transaction() as db:
                used = self._meta("next_seq") is not None
                epoch = LEGACY_EPOCH if used else secrets.token_hex(8)
                self._set_meta(db, "epoch", epoch)
        return None if epoch == LEGACY_EPOCH else epoch

    def put(self, signals: Sequence[Signal], *, state_change: bool | None = None,
            now: datetime | None = None) -> int:
        """Queue one envelope durably and return its sequence number (see `_put`)."""
        return self._surviving_damage(lambda: self._put(signals, state_change=state_change, now=now))

    def _put(self, signals: Sequence[Signal], *, state_change: bool | None = None,
             now: datetime | None = None) -> int:
        """Queue one envelope durably and return its sequence number.

        `state_change` None means: decided here, true when the content differs from the last set of the
        same kind (routine kinds never are). Then the outbox is brought back within its bounds.
        """
        now = now or self.clock()
        kind = _set_kind(signals)
        digest = content_digest(signals)
        with self._transaction() as db:
            seq = int(self._meta("next_seq") or 1)
            if state_change is None:
                row = db.execute("SELECT digest FROM last_content WHERE kind = ?", (kind,)).fetchone()
                state_change = kind not in ROUTINE_KINDS and (row is None or row[0] != digest)
            envelope = Envelope(schema_version=SCHEMA_VERSION, agent_id=self.agent_id, epoch=self.epoch,
                                seq=seq, boot_id=self.boot_id, sent_at=now, signals=list(signals))
            # A legacy stream's envelopes carry no epoch field, which collectors from before streams refuse.
            body = envelope.model_dump_json(exclude={"epoch"} if self.epoch is None else None)
            aged = self._age_clock(db, now)
            db.execute("INSERT INTO envelopes (seq, queued_at, aged, state_change, size, body) "
                       "VALUES (?, ?, ?, ?, ?, ?)",
                       (seq, now.timestamp(), aged, int(state_change), len(body.encode()), body))
            self._set_meta(db, "next_seq", seq + 1)
            db.execute("INSERT INTO last_content (kind, digest) VALUES (?, ?) "
                       "ON CONFLICT (kind) DO UPDATE SET digest = excluded.digest", (kind, digest))
            self._enforce_bounds(db, now, aged)
        return seq

    def _age_clock(self, db: sqlite3.Connection, now: datetime) -> float:
        """The outbox's own time, in seconds, by which envelopes grow old.

        Within a boot it advances as the monotonic clock does, so a wall clock stepped by weeks (a PC whose
        clock was wrong, then corrected, either way) neither ages what is queued nor makes it younger.
        Across a reboot only the wall clock can tell how long the PC was off (never less than nothing).
        """
        wall, mono = now.timestamp(), self.monotonic()
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key LIKE 'age_%'").fetchall())
        if "age_clock" not in meta:
            aged = wall
        else:
            same_boot = meta.get("age_boot") == self.boot_id
            step = mono - float(meta["age_mono"]) if same_boot else wall - float(meta["age_wall"])
            aged = float(meta["age_clock"]) + max(0.0, step)
        for key, value in (("age_clock", aged), ("age_wall", wall), ("age_mono", mono), ("age_boot", self.boot_id)):
            self._set_meta(db, key, value)
        return aged

    def _enforce_bounds(self, db: sqlite3.Connection, now: datetime, aged: float) -> None:
        """Drop what is older than `max_age` by the age clock (`aged` is its now), then the oldest droppable
        envelopes until under `max_bytes`.

        Droppable are rejected envelopes (first: they will never be sent) and routine ones;
        state changes are never dropped, since the collector would miss the change itself.
        """
        droppable = "(state_change = 0 OR rejected IS NOT NULL)"
        cutoff = aged - self.max_age.total_seconds()
        doomed = db.execute(f"SELECT seq, size FROM envelopes WHERE COALESCE(aged, queued_at) < ? AND {droppable}",
                            (cutoff,)).fetchall()
        (total,) = db.execute("SELECT COALESCE(SUM(size), 0) FROM envelopes").fetchone()
        total -= sum(size for _, size in doomed)
        if total > self.max_bytes:
            rest = db.execute(f"SELECT seq, size FROM envelopes WHERE COALESCE(aged, queued_at) >= ? AND {droppable} "
                              "ORDER BY rejected IS NULL, seq", (cutoff,))
            for seq, size in rest:
                if total <= self.max_bytes:
                    break
                doomed.append((seq, size))
                total -= size
        if doomed:
            seqs = sorted(seq for seq, _ in doomed)
            db.executemany("DELETE FROM envelopes WHERE seq = ?", [(s,) for s in seqs])
            dropped = int(self._meta("dropped") or 0) + len(seqs)
            self._set_meta(db, "dropped", dropped)
            self._set_meta(db, "warning", f"{dropped} routine reports were dropped to keep the outbox within its "
                           f"bounds ({self.max_bytes} bytes, {self.max_age}); state changes are kept")
            self._set_meta(db, "warning_at", now.timestamp())
            log.warning("outbox over its bounds (%d bytes, %s): dropped %d envelopes (seq %s, %d bytes); "
                        "state changes are kept", self.max_bytes, self.max_age, len(seqs), _ranges(seqs),
                        sum(size for _, size in doomed))
        if total > self.max_bytes:
            log.warning("outbox holds %d bytes of state changes, over its bound of %d", total, self.max_bytes)

    def pending(self, max_bytes: int, limit: int = 100) -> list[tuple[int, str]]:
        """Envelopes to send, oldest first: up to `max_bytes` in all (at least one) and `limit` many."""
        return self._surviving_damage(lambda: self._pending(max_bytes, limit))

    def _salvaged_stream(self) -> str | None:
        """The stream of the salvaged envelopes sent now (the first salvaged still to send), or None.

        While one is left, `pending`, `ack` and `mark_rejected` deal with that stream's salvaged envelopes
        alone: a batch holds one stream, so the numbers the collector answers with name its envelopes.
        """
        row = self._db.execute("SELECT epoch FROM salvaged WHERE rejected IS NULL ORDER BY id LIMIT 1").fetchone()
        return row[0] if row else None

    def _pending(self, max_bytes: int, limit: int) -> list[tuple[int, str]]:
        """The envelopes `pending` returns: salvaged ones first, one stream at a time."""
        batch: list[tuple[int, str]] = []
        used = 0
        stream = self._salvaged_stream()
        rows = self._db.execute(
            "SELECT seq, body, size FROM salvaged WHERE rejected IS NULL AND epoch = ? ORDER BY seq LIMIT ?",
            (stream, limit),
        ) if stream is not None else self._db.execute(
            "SELECT seq, body, size FROM envelopes WHERE rejected IS NULL ORDER BY seq LIMIT ?", (limit,)
        )
        for seq, body, size in rows:
            if batch and used + size > max_bytes:
                break
            batch.append((seq, body))
            used += size
        return batch

    def ack(self, seqs: Iterable[int]) -> int:
        """Delete envelopes the collector has stored; returns how many were deleted.

        When the file cannot be written (a full disk) nothing is deleted and 0 returned: the uploader
        then backs off as from a failed upload instead of sending the same batch again at once.
        Once the outbox is empty, the WAL is checkpointed and cut back to nothing.
        """
        try:
            with self._transaction() as db:
                stream = self._salvaged_stream()
                if stream is None:
                    deleted = db.executemany("DELETE FROM envelopes WHERE seq = ?", [(s,) for s in seqs]).rowcount
                else:
                    deleted = db.executemany("DELETE FROM salvaged WHERE epoch = ? AND seq = ?",
                                             [(stream, s) for s in seqs]).rowcount
        except sqlite3.OperationalError as exc:
            log.error("outbox %s: cannot delete acknowledged envelopes (%s); they are sent again later",
                      self.path, exc)
            return 0
        if self._db.execute("SELECT 1 FROM envelopes WHERE rejected IS NULL UNION ALL "
                            "SELECT 1 FROM salvaged WHERE rejected IS NULL LIMIT 1").fetchone() is None:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return deleted

    def mark_rejected(self, seq: int, reason: str) -> None:
        """Keep an envelope the collector refused for inspection; it is not sent again."""
        with self._transaction() as db:
            stream = self._salvaged_stream()
            if stream is None:
                db.execute("UPDATE envelopes SET rejected = ? WHERE seq = ?", (reason, seq))
            else:
                db.execute("UPDATE salvaged SET rejected = ? WHERE epoch = ? AND seq = ?", (reason, stream, seq))

    def rejected(self) -> list[Rejected]:
        """The refused envelopes, oldest first."""
        rows = self._db.execute(
            "SELECT seq, rejected, body FROM envelopes WHERE rejected IS NOT NULL ORDER BY seq")
        return [Rejected(seq, reason, body) for seq, reason, body in rows]

    def record_upload(self, result: str, now: datetime | None = None) -> None:
        """Remember the outcome of the last upload round, for `status` (not at all when the file is unwritable)."""
        try:
            with self._transaction() as db:
                self._set_meta(db, "last_upload_at", (now or self.clock()).timestamp())
                self._set_meta(db, "last_upload_result", result)
        except sqlite3.OperationalError as exc:
            log.warning("outbox: cannot record the upload result (%s)", exc)

    def stats(self) -> OutboxStats:
        """Counts and markers, as `status` shows them."""
        return _stats(self._db)


def _ranges(seqs: Sequence[int]) -> str:
    """Sequence numbers as compact ranges: 1-4,7."""
    parts: list[str] = []
    start = prev = seqs[0]
    for seq in [*seqs[1:], None]:
        if seq is not None and seq == prev + 1:
            prev = seq
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if seq is not None:
            start = prev = seq
    return ",".join(parts)
