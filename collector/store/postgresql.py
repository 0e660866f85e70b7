"""The PostgreSQL backend (asyncpg): a connection pool, one pooled connection per transaction.

Transactions run at READ COMMITTED, so several collector processes work side by side. What must
happen once is decided by single statements: a unique index with `ON CONFLICT ... DO NOTHING`, or an
`UPDATE ... WHERE state = old` that the second writer re-checks after waiting for the first. Where a
step needs several rows at once, a CTE does it in one round trip.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import asyncpg

from collector.store import PingRow, PushJobRow, PushJobState, Tx
from collector.store.codec import Codec, utc
from collector.store.migrate import load_migrations, migrate
from collector.store.sql import SqlMigrationTx, SqlStore, SqlTx, _push_job
from shared.wire import LEGACY_EPOCH

log = logging.getLogger(__name__)

# pg_advisory_xact_lock key that serialises migrations across collectors: "fieldpst" in ASCII.
MIGRATION_LOCK = 0x6669656C64707374
POOL_MIN = 1
POOL_MAX = 10
# A statement waits at most this long for a lock another session holds (like SQLite's busy_timeout), then
# fails as transient: a stuck session makes requests answer 503, not hang.
LOCK_TIMEOUT_MS = 5000
# SQLSTATE classes and codes of conditions of the moment: connection lost (08), a transaction to run again
# (40: serialization failure, deadlock), resources short (53: disk full, too many connections), the server
# shutting down or starting (57, which also covers a cancelled statement), a system error (58), lock not
# available (55P03).
TRANSIENT_SQLSTATE_CLASSES = ("08", "40", "53", "57", "58")
TRANSIENT_SQLSTATES = frozenset({"55P03"})

# Every push job (or the one numbered :job) with the pings its state is read from, tagged by what they are:
# newest start, newest end, the ping right before that end, and the two newest good ones.
_PUSH_STATES = """
    SELECT j.*, p.tag, p.id AS p_id, p.at AS p_at, p.kind AS p_kind, p.bytes AS p_bytes, p.log AS p_log
    FROM backup_push_jobs j LEFT JOIN LATERAL (
        (SELECT 'start' AS tag, * FROM backup_pings WHERE job_id = j.id AND kind = 'start'
         ORDER BY id DESC LIMIT 1)
        UNION ALL
        (SELECT 'end', * FROM backup_pings WHERE job_id = j.id AND kind <> 'start' ORDER BY id DESC LIMIT 1)
        UNION ALL
        (SELECT 'before_end', * FROM backup_pings b WHERE b.job_id = j.id AND b.id < (
            SELECT max(id) FROM backup_pings WHERE job_id = j.id AND kind <> 'start')
         ORDER BY b.id DESC LIMIT 1)
        UNION ALL
        (SELECT 'good', * FROM backup_pings WHERE job_id = j.id AND kind IN ('success', 'warning')
         ORDER BY id DESC LIMIT 2)
    ) p ON TRUE
    WHERE (:job::bigint IS NULL OR j.id = :job) AND j.deleted_at IS NULL
    ORDER BY j.agent_id, j.name, j.id, p.id DESC
"""


# The NOTIFY channel that tells every collector's live feed to look for new events.
FEED_CHANNEL = "fieldpost_feed"
# How often a lost feed listener tries to connect again.
LISTEN_RETRY_SECONDS = 1.0


class _PostgresTx(SqlTx):
    """The Store operations inside one PostgreSQL transaction."""

    dialect = "postgresql"
    codec = Codec()
    ALERT_IDS = "string_agg(l.alert_id::text, ',')"
    # The notification is delivered when the transaction commits, to every collector listening.
    APPEND_FEED = (
        "WITH added AS (INSERT INTO feed_events (at, type, data) VALUES (:at, :type, :data) RETURNING id, at) "
        f"SELECT id, at, pg_notify('{FEED_CHANNEL}', '') FROM added"
    )

    _conn: asyncpg.Connection

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[asyncpg.Record]:
        return await self._conn.fetch(sql, *args)

    async def _fetchrow(self, sql: str, args: Sequence[Any]) -> asyncpg.Record | None:
        return await self._conn.fetchrow(sql, *args)

    async def _execute(self, sql: str, args: Sequence[Any]) -> int:
        # The status tag ends with the row count: "UPDATE 1", "INSERT 0 1", "DELETE 3".
        status = await self._conn.execute(sql, *args)
        return int(status.rsplit(" ", 1)[-1])

    async def _executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        await self._conn.executemany(sql, args)

    async def _lock_alert(self, alert_id: int) -> None:
        await self._conn.execute("SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE", alert_id)

    async def record_envelope(
        self, agent_id: str, seq: int, boot_id: str, sent_at: datetime, received_at: datetime,
        rows: list[tuple[str, datetime, str]], *, epoch: str = LEGACY_EPOCH,
    ) -> bool:
        # One statement: the observations are inserted only when the report row was (not on a resend).
        row = await self._row(
            "WITH report AS (INSERT INTO reports (agent_id, epoch, seq, boot_id, sent_at, received_at) "
            "  VALUES (:agent, :epoch, :seq, :boot, :sent, :received) ON CONFLICT (agent_id, epoch, seq) DO NOTHING "
            "  RETURNING agent_id, epoch, seq), "
            "signals AS (INSERT INTO observations (agent_id, epoch, seq, kind, collected_at, payload) "
            "  SELECT r.agent_id, r.epoch, r.seq, o.kind, o.collected_at, o.payload FROM report r, "
            "  unnest(:kinds::text[], :times::timestamptz[], :payloads::json[]) WITH ORDINALITY "
            "    AS o(kind, collected_at, payload, n) ORDER BY o.n) "
            "SELECT count(*) AS stored FROM report",
            agent=agent_id, epoch=epoch, seq=seq, boot=boot_id, sent=sent_at, received=received_at,
            kinds=[kind for kind, _, _ in rows], times=[utc(at) for _, at, _ in rows],
            payloads=[payload for _, _, payload in rows],
        )
        return row is not None and row["stored"] == 1

    async def touch_agent(self, agent_id: str, seen_at: datetime, seq: int, hostname: str | None) -> datetime | None:
        # The locked sub-select hands back the row as it was before this UPDATE changed it.
        row = await self._row(
            "UPDATE agents a SET "
            "hostname = CASE WHEN :hostname::text IS NOT NULL "
            "AND (a.last_seen_at IS NULL OR a.last_seen_at <= :seen) THEN :hostname ELSE a.hostname END, "
            "last_seen_at = GREATEST(a.last_seen_at, :seen), last_seq = GREATEST(a.last_seq, :seq) "
            "FROM (SELECT agent_id, last_seen_at FROM agents WHERE agent_id = :agent FOR UPDATE) before "
            "WHERE a.agent_id = before.agent_id RETURNING before.last_seen_at",
            agent=agent_id, seen=seen_at, hostname=hostname, seq=seq,
        )
        return row["last_seen_at"] if row is not None else None

    async def _push_states(self, job_id: int | None) -> list[PushJobState]:
        return _push_states(await self._rows(_PUSH_STATES, job=job_id))

    async def backups_verified(self, client_id: int, since: datetime, until: datetime) -> int:
        # Agents report the same last success again and again: a run is (device, job, its success time).
        # The cast to timestamptz reads the agent's ISO text whatever its offset notation.
        row = await self._row(
            "SELECT count(*) AS runs FROM ("
            "SELECT DISTINCT o.agent_id, j.job ->> 'name', (j.job ->> 'last_success_at')::timestamptz AS done "
            "FROM observations o JOIN agents a ON a.agent_id = o.agent_id JOIN sites s ON s.id = a.site_id "
            "CROSS JOIN LATERAL json_array_elements(o.payload -> 'jobs') AS j(job) "
            "WHERE s.client_id = :client AND o.kind = 'backup_results' AND o.collected_at >= :since "
            "AND (j.job ->> 'last_success_at')::timestamptz >= :since "
            "AND (j.job ->> 'last_success_at')::timestamptz < :until "
            "UNION ALL SELECT j.agent_id, j.name, p.at FROM backup_pings p "
            "JOIN backup_push_jobs j ON j.id = p.job_id JOIN agents a ON a.agent_id = j.agent_id "
            "JOIN sites s ON s.id = a.site_id WHERE s.client_id = :client AND p.kind = 'success' "
            "AND p.at >= :since AND p.at < :until) AS runs",
            client=client_id, since=since, until=until,
        )
        return row["runs"] if row is not None else 0


class _PostgresMigrationTx(SqlMigrationTx, _PostgresTx):
    """The migration runner's view of a PostgreSQL transaction."""

    async def exclude_others(self) -> None:
        # Another collector's migrations may take longer than a request's lock wait: wait for them.
        await self._conn.execute("SET LOCAL lock_timeout = 0")
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)

    async def run_script(self, sql: str) -> None:
        """Run the script (without arguments, asyncpg sends it whole: several statements at once)."""
        await self._conn.execute(sql)


def _push_states(rows: Sequence[asyncpg.Record]) -> list[PushJobState]:
    """The rows of `_PUSH_STATES` (a job's rows together, each tag's pings newest first) as job states."""
    tagged: dict[int, tuple[PushJobRow, dict[str, list[asyncpg.Record]]]] = {}
    for row in rows:
        _, pings = tagged.setdefault(row["id"], (_push_job(row, _PostgresTx.codec), {}))
        if row["tag"] is not None:
            pings.setdefault(row["tag"], []).append(row)
    states = []
    for job, pings in tagged.values():
        [start] = pings.get("start", [None])
        [end] = pings.get("end", [None])
        [before_end] = pings.get("before_end", [None])
        run_started_at = None
        if before_end is not None and before_end["p_kind"] == "start":
            run_started_at = before_end["p_at"]
        good = tuple(_ping(row) for row in pings.get("good", []))
        states.append(PushJobState(
            job, _ping(start) if start else None, _ping(end) if end else None, run_started_at, good
        ))
    return states


def _ping(row: asyncpg.Record) -> PingRow:
    """A ping of `_PUSH_STATES` as a PingRow."""
    return PingRow(row["p_at"], row["p_kind"], row["p_bytes"], row["p_log"])


class PostgresStore(SqlStore):
    """A Store kept in a PostgreSQL database, shared safely by several collector processes."""

    tx_type = _PostgresTx
    migration_tx_type = _PostgresMigrationTx

    def __init__(self, dsn: str, min_size: int = POOL_MIN, max_size: int = POOL_MAX) -> None:
        super().__init__()
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None
        # Connecting the feed listener again after the connection was lost.
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False

    async def open(self) -> None:
        """Connect the pool and apply pending migrations."""
        self._closing = False
        # Moments travel as UTC instants either way; the session zone only matters for text casts.
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=self._min_size, max_size=self._max_size,
            server_settings={"timezone": "UTC", "application_name": "fieldpost-collector",
                             "lock_timeout": str(LOCK_TIMEOUT_MS)},
        )
        try:
            await migrate(self.migration_tx, load_migrations("postgresql"))
        except BaseException:
            await self.close()
            raise

    async def watch_feed(self, wake: Callable[[], None]) -> None:
        """LISTEN on the feed's channel on a connection of its own; every collector's new event wakes `wake`.

        When that connection is lost (the server restarted), it is made again in the background, retrying
        until the server is back, and `wake` is called once then for what was missed meanwhile.
        """
        self._listener = await asyncpg.connect(self._dsn, server_settings={"application_name": "fieldpost-feed"})
        await self._listener.add_listener(FEED_CHANNEL, lambda *_: wake())

        def lost(_: object) -> None:
            if not self._closing and self._relisten is None:
                self._relisten = asyncio.get_running_loop().create_task(self._listen_again(wake))

        self._listener.add_termination_listener(lost)

    async def _listen_again(self, wake: Callable[[], None]) -> None:
        """Connect the feed listener again after it was lost, every LISTEN_RETRY_SECONDS until it works."""
        while not self._closing:
            try:
                await self.watch_feed(wake)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("live feed: cannot listen on the database again (%s); retrying", exc)
                await asyncio.sleep(LISTEN_RETRY_SECONDS)
                continue
            log.info("live feed: listening on the database again")
            self._relisten = None
            wake()
            return

    def is_transient(self, exc: BaseException) -> bool:
        if isinstance(exc, asyncpg.PostgresError):
            state = exc.sqlstate or ""
            return state in TRANSIENT_SQLSTATES or state.startswith(TRANSIENT_SQLSTATE_CLASSES)
        # A connection lost or refused, or the pool closing under a request.
        return isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError))

    async def close(self) -> None:
        """Close the feed listener and the pool (a store that is not open is left as it is)."""
        self._closing = True
        if self._relisten is not None:
            self._relisten.cancel()
            self._relisten = None
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Tx]:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        # REPEATABLE READ: every query of the block reads one snapshot; READ ONLY refuses writes.
        async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield _PostgresTx(conn, self.unreadable)

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside a READ COMMITTED transaction for the block."""
        if self._pool is None:
            raise RuntimeError("the store is not open")
        async with self._pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            yield conn
