"""The SQLite backend: a writing connection on its own worker thread, WAL, one writer at a time.

Every write transaction starts with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front: within
a process an asyncio.Lock queues transactions on the one connection, and between processes (two
collectors on one file) `busy_timeout` makes the second wait for the first instead of failing.
Reads (`read()`) use a second, read-only connection on a thread of its own, which WAL lets read the
last commit while a write is under way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from collector.store import Contact, EnvelopeRow, PingRow, PushJobRow, PushJobState, Tx
from collector.store.codec import SqliteCodec
from collector.store.migrate import load_migrations, migrate
from collector.store.sql import SqlMigrationTx, SqlStore, SqlTx, _push_job
from shared.private import private_sqlite
from shared.wire import LEGACY_EPOCH

BUSY_TIMEOUT_MS = 5000
# Result codes (primary, the low byte of extended ones) of a database that is busy, locked, full or failing
# to read or write: conditions of the moment, not of the request.
TRANSIENT_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR,
                             sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOMEM})
_CODEC = SqliteCodec()
# FULL: each commit (one per ingested batch) is fsync'ed before it returns, so an acknowledged report survives
# a power cut; NORMAL would sync the WAL only at checkpoints, and a cut would undo reports the agents deleted.
SYNCHRONOUS = "FULL"

# Reports per multi-row INSERT: 6 parameters each stays far below SQLite's 32,766 parameters a statement.
_ROWS_PER_INSERT = 500
T = TypeVar("T")
A = TypeVar("A")


class _Connection:
    """A sqlite3 connection used from one thread of its own, so the event loop never waits on the disk.

    `run` executes several statements in one trip to that thread: on the ingest path the trips,
    not SQLite, were the cost. A trip is a queue put and one wake-up of the loop, without a
    ThreadPoolExecutor's locks and the futures that `wrap_future` and `shield` chain.
    """

    def __init__(self, db: sqlite3.Connection, thread: _DatabaseThread) -> None:
        self._db = db
        self._thread = thread
        self._begin: str | None = None

    @classmethod
    async def connect(cls, path: str, read_only: bool = False) -> _Connection:
        """Open the database in autocommit mode: transactions are begun explicitly, never behind our back."""
        thread = _DatabaseThread("fieldpost-sqlite-read" if read_only else "fieldpost-sqlite")

        def connect(_: None) -> sqlite3.Connection:
            if read_only:
                uri = f"{Path(path).absolute().as_uri()}?mode=ro"
                db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            else:
                if path != ":memory:" and not path.startswith("file:"):
                    private_sqlite(Path(path))  # it holds channel URLs with passwords
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            return db

        try:
            return cls(await thread.call(connect, None), thread)
        except BaseException:
            thread.stop()
            raise

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` on the database thread; once submitted it runs even if the caller is cancelled.

        Work is never dropped from the queue: a dropped ROLLBACK would leave the connection inside a
        transaction for the next caller.
        """
        begin, self._begin = self._begin, None
        if begin is not None:
            return await self._thread.call(functools.partial(_begun, begin, work), self._db)
        return await self._thread.call(work, self._db)

    def begin_with_next(self, statement: str) -> None:
        """Execute `statement` (a BEGIN) in the same trip as the next work: a transaction costs no trip of its own."""
        self._begin = statement

    async def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """Execute one statement."""
        return await self.run(lambda db: db.execute(sql, params))

    async def execute_fetchall(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """Execute one statement and fetch all its rows."""
        return await self.run(lambda db: db.execute(sql, params).fetchall())

    async def executemany(self, sql: str, rows: Sequence[Any]) -> None:
        """Execute one statement for each row of parameters."""
        await self.run(lambda db: db.executemany(sql, rows))

    async def end_transaction(self) -> None:
        """Roll back the open transaction, if any, deciding on the database thread.

        Deciding there, not here, keeps a cancelled caller safe: its BEGIN may still be queued on
        the thread, and this runs after it, so the next block never finds a transaction open.
        """

        def end(db: sqlite3.Connection) -> None:
            if db.in_transaction:
                db.execute("ROLLBACK")

        self._begin = None
        await self.run(end)

    async def close(self) -> None:
        """Close the connection and stop its thread."""
        await self.run(lambda db: db.close())
        self._thread.stop()


class _DatabaseThread(threading.Thread):
    """One thread that runs the work put on its queue, in order, and hands each result to the caller's loop."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._queue: queue.SimpleQueue[tuple[Callable[[Any], Any], Any, asyncio.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self.start()

    async def call(self, work: Callable[[A], T], arg: A) -> T:
        """`work(arg)` on this thread; a cancelled caller stops waiting, but the work still runs."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((work, arg, future))
        return await future

    def stop(self) -> None:
        """Let the thread end once the work queued before this has run."""
        self._queue.put(None)

    def run(self) -> None:
        """Run queued work until `stop`."""
        while (item := self._queue.get()) is not None:
            work, arg, future = item
            try:
                outcome: tuple[Any, BaseException | None] = (work(arg), None)
            except BaseException as exc:
                outcome = (None, exc)
            with contextlib.suppress(RuntimeError):  # the caller's loop has closed: nobody is waiting
                future.get_loop().call_soon_threadsafe(_settle, future, *outcome)


def _settle(future: asyncio.Future[Any], result: Any, exc: BaseException | None) -> None:
    """Hand a result to a waiting caller (on its loop); a caller that stopped waiting gets nothing."""
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)


def _begun(begin: str, work: Callable[[sqlite3.Connection], T], db: sqlite3.Connection) -> T:
    """`work(db)` after executing `begin` (on the database thread)."""
    db.execute(begin)
    return work(db)


class _SqliteTx(SqlTx):
    """The Store operations inside one SQLite transaction."""

    dialect = "sqlite"
    codec = _CODEC
    ALERT_IDS = "group_concat(l.alert_id)"
    APPEND_FEED = "INSERT INTO feed_events (at, type, data) VALUES (:at, :type, :data) RETURNING id, at"

    _conn: _Connection

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[sqlite3.Row]:
        return await self._conn.execute_fetchall(sql, args)

    async def _fetchrow(self, sql: str, args: Sequence[Any]) -> sqlite3.Row | None:
        return await self._conn.run(lambda db: db.execute(sql, args).fetchone())

    async def _execute(self, sql: str, args: Sequence[Any]) -> int:
        return (await self._conn.execute(sql, args)).rowcount

    async def _executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, args)

    async def record_envelope(
        self, agent_id: str, seq: int, boot_id: str, sent_at: datetime, received_at: datetime,
        rows: list[tuple[str, datetime, str]], *, epoch: str = LEGACY_EPOCH,
    ) -> bool:
        [stored] = await self.record_envelopes([EnvelopeRow(agent_id, seq, boot_id, sent_at, received_at, rows, epoch)])
        return stored

    async def record_envelopes(self, envelopes: list[EnvelopeRow]) -> list[bool]:
        # One trip to the database thread for a whole group, and a few statements for it, not a few per
        # report: on the ingest path the trips and statements, not SQLite's own work, were the cost.
        ts = self.codec.param
        reports = [(e.agent_id, e.epoch, e.seq, e.boot_id, ts(e.sent_at), ts(e.received_at)) for e in envelopes]
        observations = [[(e.agent_id, e.epoch, e.seq, kind, ts(at), payload) for kind, at, payload in e.rows]
                        for e in envelopes]

        def work(db: sqlite3.Connection) -> list[bool]:
            inserted: set[tuple[str, str, int]] = set()
            for start in range(0, len(reports), _ROWS_PER_INSERT):
                chunk = reports[start:start + _ROWS_PER_INSERT]
                inserted.update(tuple(row) for row in db.execute(
                    "INSERT INTO reports (agent_id, epoch, seq, boot_id, sent_at, received_at) VALUES "
                    + ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(chunk))
                    + " ON CONFLICT (agent_id, epoch, seq) DO NOTHING RETURNING agent_id, epoch, seq",
                    [value for report in chunk for value in report],
                ).fetchall())
            # An envelope sent twice in one group is stored once: its first copy is the stored one.
            stored = []
            for report in reports:
                stored.append(report[:3] in inserted)
                inserted.discard(report[:3])
            db.executemany(
                "INSERT INTO observations (agent_id, epoch, seq, kind, collected_at, payload) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [row for new, rows in zip(stored, observations, strict=True) if new for row in rows],
            )
            return stored

        return await self._conn.run(work)

    async def touch_agent(self, agent_id: str, seen_at: datetime, seq: int, hostname: str | None) -> datetime | None:
        [before] = await self.touch_agents([Contact(agent_id, seen_at, seq, hostname)])
        return before

    async def touch_agents(self, contacts: list[Contact]) -> list[datetime | None]:
        if not contacts:
            return []
        params = [{"hostname": c.hostname, "seen": self.codec.param(c.seen_at), "seq": c.seq, "agent_id": c.agent_id}
                  for c in contacts]
        agent_ids = sorted({c.agent_id for c in contacts})

        def work(db: sqlite3.Connection) -> list[str | None]:
            # Each contact's previous time is the stored one, or a contact before it in the list: read once,
            # then followed here as the updates below move it (ISO text in UTC sorts as time).
            seen: dict[str, str | None] = dict(tuple(row) for row in db.execute(
                f"SELECT agent_id, last_seen_at FROM agents WHERE agent_id IN ({', '.join('?' * len(agent_ids))})",
                agent_ids,
            ).fetchall())
            previous = []
            for contact in params:
                before = seen.get(contact["agent_id"])
                previous.append(before)
                if contact["agent_id"] in seen:
                    seen[contact["agent_id"]] = max(before or contact["seen"], contact["seen"])
            # The hostname follows the newest contact only, so a late, older report cannot rename it back.
            db.executemany(
                "UPDATE agents SET "
                "hostname = CASE WHEN :hostname IS NOT NULL AND (last_seen_at IS NULL OR last_seen_at <= :seen) "
                "THEN :hostname ELSE hostname END, "
                "last_seen_at = max(coalesce(last_seen_at, :seen), :seen), "
                "last_seq = max(last_seq, :seq) "
                "WHERE agent_id = :agent_id",
                params,
            )
            return previous

        return [self.codec.moment(at) for at in await self._conn.run(work)]

    async def _push_states(self, job_id: int | None) -> list[PushJobState]:
        def work(db: sqlite3.Connection) -> list[PushJobState]:
            rows = db.execute(
                "SELECT * FROM backup_push_jobs WHERE (:job IS NULL OR id = :job) AND deleted_at IS NULL "
                "ORDER BY agent_id, name",
                {"job": job_id},
            ).fetchall()
            return [_push_state(db, _push_job(row, self.codec)) for row in rows]

        return await self._conn.run(work)

    async def backups_verified(self, client_id: int, since: datetime, until: datetime) -> int:
        # Agents report the same last success again and again: a run is (device, job, its success time).
        # julianday() reads the agent's ISO text whatever its offset notation.
        row = await self._row(
            "SELECT count(*) AS runs FROM ("
            "SELECT DISTINCT o.agent_id, json_extract(j.value, '$.name'), "
            "julianday(json_extract(j.value, '$.last_success_at')) AS done "
            "FROM observations o JOIN agents a ON a.agent_id = o.agent_id JOIN sites s ON s.id = a.site_id, "
            "json_each(o.payload, '$.jobs') j "
            "WHERE s.client_id = :client AND o.kind = 'backup_results' AND o.collected_at >= :since "
            "AND done >= julianday(:since) AND done < julianday(:until) "
            "UNION ALL SELECT j.agent_id, j.name, julianday(p.at) FROM backup_pings p "
            "JOIN backup_push_jobs j ON j.id = p.job_id JOIN agents a ON a.agent_id = j.agent_id "
            "JOIN sites s ON s.id = a.site_id WHERE s.client_id = :client AND p.kind = 'success' "
            "AND p.at >= :since AND p.at < :until)",
            client=client_id, since=since, until=until,
        )
        return row["runs"] if row is not None else 0


async def _enable_wal(db: _Connection) -> str:
    """Switch the database to WAL and return the journal mode it is in now.

    SQLite does not apply busy_timeout to this switch, so when two collectors open a new file at once,
    the one that finds it locked retries until the timeout.
    """
    deadline = asyncio.get_running_loop().time() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            rows = await db.execute_fetchall("PRAGMA journal_mode = WAL")
            return str(next(iter(rows))[0])
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY or asyncio.get_running_loop().time() > deadline:
                raise
        await asyncio.sleep(0.01)


def _statements(script: str) -> Iterator[str]:
    """A script's statements, cut at each `;` that SQLite says ends one (not one in a string or trigger)."""
    pending = ""
    *pieces, rest = script.split(";")
    for piece in pieces:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            yield pending
            pending = ""
    if (pending + rest).strip():
        yield pending + rest


def _push_state(db: sqlite3.Connection, job: PushJobRow) -> PushJobState:
    """What the job's pings tell (on the database thread, inside the caller's transaction)."""

    def newest(where: str, *params: Any, limit: int = 1) -> list[sqlite3.Row]:
        """The job's newest pings matching `where`, newest first."""
        return db.execute(
            f"SELECT * FROM backup_pings WHERE job_id = ? AND {where} ORDER BY id DESC LIMIT ?",
            (job.job_id, *params, limit),
        ).fetchall()

    start = next(iter(newest("kind = 'start'")), None)
    end = next(iter(newest("kind <> 'start'")), None)
    before_end = next(iter(newest("id < ?", end["id"])), None) if end is not None else None
    run_started_at = None
    if before_end is not None and before_end["kind"] == "start":
        run_started_at = _CODEC.moment(before_end["at"])
    good = tuple(map(_ping, newest("kind IN ('success', 'warning')", limit=2)))
    return PushJobState(
        job, _ping(start) if start else None, _ping(end) if end else None, run_started_at, good
    )



def _ping(row: sqlite3.Row) -> PingRow:
    """A backup_pings row as a PingRow."""
    return PingRow(_CODEC.moment(row["at"]), row["kind"], row["bytes"], row["log"])


class _SqliteMigrationTx(SqlMigrationTx, _SqliteTx):
    """The migration runner's view of a SQLite transaction."""

    async def run_script(self, sql: str) -> None:
        """Run each statement of the script (sqlite3's executescript would COMMIT our transaction first)."""
        for statement in _statements(sql):
            await self._conn.execute(statement)


class SqliteStore(SqlStore):
    """A Store kept in one SQLite file (or `:memory:`).

    Writes go through one connection on its own thread, one transaction at a time. Reads use a second,
    read-only connection on a thread of its own: in WAL mode a reader sees the last commit and never
    waits for the writer.
    """

    tx_type = _SqliteTx
    migration_tx_type = _SqliteMigrationTx

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path
        self._db: _Connection | None = None
        self._reader: _Connection | None = None
        self._lock = asyncio.Lock()
        self._read_lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect, configure the connection and apply pending migrations."""
        db = await _Connection.connect(self._path)
        try:
            # Set first: switching to WAL needs a lock that another collector may be holding.
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = await _enable_wal(db)
            if mode != "wal" and self._path != ":memory:":
                raise RuntimeError(f"{self._path}: SQLite refused WAL mode (journal mode is {mode!r})")
            await db.execute(f"PRAGMA synchronous = {SYNCHRONOUS}")
            await db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            await db.close()
            raise
        self._db = db
        try:
            await migrate(self.migration_tx, load_migrations("sqlite"))
            if self._path != ":memory:":
                # Opened after the migrations: a read-only connection cannot create the file.
                self._reader = await _Connection.connect(self._path, read_only=True)
                await self._reader.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connections (a store that is not open is left as it is)."""
        if self._reader is not None:
            reader, self._reader = self._reader, None
            await reader.close()
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def watch_feed(self, wake: Callable[[], None]) -> None:
        """Nothing to watch: SQLite cannot tell other processes' writes, so the feed polls for them."""

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, sqlite3.Error):
            code = getattr(exc, "sqlite_errorcode", None)
            return code is not None and code & 0xFF in TRANSIENT_CODES
        return isinstance(exc, OSError)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        if self._reader is None:
            # `:memory:` is private to its connection: there, reads are write transactions.
            async with self.transaction() as tx:
                yield tx
            return
        reader = self._reader
        async with self._read_lock:
            try:
                # A deferred BEGIN takes no lock; the first SELECT fixes the snapshot the block reads.
                await reader.execute("BEGIN")
                yield _SqliteTx(reader, self.unreadable)
            finally:
                # Nothing to commit; also reached when a closed feed cancels the reader mid-BEGIN.
                await reader.end_transaction()

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[_Connection]:
        """Hold the write lock for the block: COMMIT when it ends, ROLLBACK when it raises."""
        if self._db is None:
            raise RuntimeError("the store is not open")
        db = self._db
        async with self._lock:
            try:
                # Taken with the block's first statement: on the ingest path the trips were the cost.
                db.begin_with_next("BEGIN IMMEDIATE")
                yield db
                await db.execute("COMMIT")
            except BaseException:
                # Some errors (a full disk, an interrupt) end the transaction inside SQLite already.
                await db.end_transaction()
                raise
