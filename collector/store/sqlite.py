"""The SQLite backend: one connection per store on its own worker thread, WAL, one writer at a time.

Every transaction starts with `BEGIN IMMEDIATE`, which takes SQLite's write lock up front: within a
process an asyncio.Lock queues transactions on the one connection, and between processes (two
collectors on one file) `busy_timeout` makes the second wait for the first instead of failing.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from collector.alerts.silence import Matchers, Silence
from collector.billing.model import BreakFixRates, Classification, Contract, DeviceClass, Part
from collector.store import (
    OFFLINE_CANDIDATES_SQL,
    AgentRow,
    AlertOwner,
    AlertRow,
    AlertState,
    ChannelRow,
    ClientRow,
    EnrolmentRefused,
    FeedEvent,
    ObservationRow,
    PingKind,
    PingRow,
    PushJobRow,
    PushJobState,
    QueuedNotification,
    Severity,
    SiteRef,
    Tx,
)
from collector.store.account_rows import EnrolmentTokenRow, TechnicianRow, WebSessionRow
from collector.store.billing_rows import (
    ContractRow,
    DeviceBillingRow,
    IncidentRow,
    IncidentStatus,
    NoteRow,
    RatesRow,
    TimeEntryRow,
)
from collector.store.migrate import Migration, MigrationTx, load_migrations, migrate

BUSY_TIMEOUT_MS = 5000
# Pings kept per push job (besides its two newest good ones): enough to look back at, bounded when a
# script calls its URL far more often than it runs backups.
PINGS_KEPT = 100

_AGENTS = """
    SELECT a.*, s.name AS site_name, c.id AS client_id, c.name AS client_name
    FROM agents a JOIN sites s ON s.id = a.site_id JOIN clients c ON c.id = s.client_id
"""
# Incidents with the alerts they cover (callers add WHERE ... GROUP BY i.id).
_INCIDENTS = """
    SELECT i.*, c.name AS client_name, group_concat(l.alert_id) AS alert_ids
    FROM incidents i JOIN clients c ON c.id = i.client_id LEFT JOIN incident_alerts l ON l.incident_id = i.id
"""

T = TypeVar("T")


class _Connection:
    """A sqlite3 connection used from one worker thread, so the event loop never waits on the disk.

    `run` executes several statements in one trip to that thread: on the ingest path the trips,
    not SQLite, were the cost.
    """

    def __init__(self, db: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._db = db
        self._executor = executor

    @classmethod
    async def connect(cls, path: str) -> _Connection:
        """Open the database in autocommit mode: transactions are begun explicitly, never behind our back."""
        executor = ThreadPoolExecutor(1, thread_name_prefix="fieldpost-sqlite")

        def connect() -> sqlite3.Connection:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            return db

        return cls(await asyncio.get_running_loop().run_in_executor(executor, connect), executor)

    async def run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run `work(connection)` on the database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, self._db)

    async def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        """Execute one statement."""
        return await self.run(lambda db: db.execute(sql, params))

    async def execute_fetchall(self, sql: str, params: Any = ()) -> list[sqlite3.Row]:
        """Execute one statement and fetch all its rows."""
        return await self.run(lambda db: db.execute(sql, params).fetchall())

    async def executemany(self, sql: str, rows: Sequence[Any]) -> None:
        """Execute one statement for each row of parameters."""
        await self.run(lambda db: db.executemany(sql, rows))

    @property
    def in_transaction(self) -> bool:
        """True while a transaction is open."""
        return self._db.in_transaction

    async def close(self) -> None:
        """Close the connection and stop its thread."""
        await self.run(lambda db: db.close())
        self._executor.shutdown()


class SqliteStore:
    """A Store kept in one SQLite file (or `:memory:`)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._db: _Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect, configure the connection and apply pending migrations."""
        db = await _Connection.connect(self._path)
        try:
            # Set first: switching to WAL needs a lock that another collector may be holding.
            await db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = await _enable_wal(db)
            if mode != "wal" and self._path != ":memory:":
                raise RuntimeError(f"{self._path}: SQLite refused WAL mode (journal mode is {mode!r})")
            await db.execute("PRAGMA synchronous = NORMAL")
            await db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            await db.close()
            raise
        self._db = db
        try:
            await migrate(self.migration_tx, load_migrations("sqlite"))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Close the connection (a store that is not open is left as it is)."""
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    async def watch_feed(self, wake: Callable[[], None]) -> None:
        """Nothing to watch: SQLite cannot tell other processes' writes, so the feed polls for them."""

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A transaction: committed when the block ends normally, rolled back on an exception."""
        async with self._exclusive() as db:
            yield _SqliteTx(db)

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A consistent read-only view for queries (for now a transaction like any other)."""
        return self.transaction()

    @asynccontextmanager
    async def migration_tx(self) -> AsyncIterator[MigrationTx]:
        """A transaction for the migration runner."""
        async with self._exclusive() as db:
            yield _SqliteMigrationTx(db)

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[_Connection]:
        """Hold the write lock for the block: COMMIT when it ends, ROLLBACK when it raises."""
        if self._db is None:
            raise RuntimeError("the store is not open")
        db = self._db
        async with self._lock:
            await db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                await db.execute("COMMIT")
            except BaseException:
                # Some errors (a full disk, an interrupt) end the transaction inside SQLite already.
                if db.in_transaction:
                    await db.execute("ROLLBACK")
                raise


class _SqliteMigrationTx:
    """The migration runner's view of a SQLite transaction."""

    def __init__(self, db: _Connection) -> None:
        self._db = db

    async def run_script(self, sql: str) -> None:
        """Run each statement of the script (sqlite3's executescript would COMMIT our transaction first)."""
        for statement in _statements(sql):
            await self._db.execute(statement)

    async def applied(self) -> dict[int, str]:
        """The recorded versions and their names."""
        rows = await self._db.execute_fetchall("SELECT version, name FROM schema_migrations")
        return {row["version"]: row["name"] for row in rows}

    async def record(self, migration: Migration, applied_at: datetime) -> None:
        """Record a migration as applied."""
        await self._db.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
            (migration.version, migration.name, _ts(applied_at)),
        )


class _SqliteTx:
    """The Store operations inside one SQLite transaction."""

    def __init__(self, db: _Connection) -> None:
        self._db = db

    async def _one(self, sql: str, params: Any = ()) -> sqlite3.Row | None:
        """The first row of a query, or None."""
        rows = await self._db.execute_fetchall(sql, params)
        return next(iter(rows), None)

    async def site(self, client: str, site: str) -> SiteRef:
        """The site, creating the client and site on first use."""
        await self._db.execute(
            "INSERT INTO clients (name) VALUES (?) ON CONFLICT (name) DO NOTHING", (client,)
        )
        await self._db.execute(
            "INSERT INTO sites (client_id, name) SELECT id, ? FROM clients WHERE name = ? "
            "ON CONFLICT (client_id, name) DO NOTHING",
            (site, client),
        )
        row = await self._one(
            "SELECT c.id AS client_id, s.id AS site_id FROM clients c JOIN sites s ON s.client_id = c.id "
            "WHERE c.name = ? AND s.name = ?",
            (client, site),
        )
        assert row is not None  # both rows were inserted or found above, in this transaction
        return SiteRef(row["client_id"], client, row["site_id"], site)

    async def clients(self) -> list[ClientRow]:
        """All clients, their sites and device counts, by name."""
        rows = await self._db.execute_fetchall(
            "SELECT c.id, c.name, s.name AS site_name, count(a.agent_id) AS devices FROM clients c "
            "LEFT JOIN sites s ON s.client_id = c.id "
            "LEFT JOIN agents a ON a.site_id = s.id AND a.revoked_at IS NULL "
            "GROUP BY c.id, s.id ORDER BY c.name, s.name"
        )
        clients: dict[int, ClientRow] = {}
        for row in rows:
            client = clients.setdefault(row["id"], ClientRow(row["id"], row["name"]))
            if row["site_name"] is not None:
                client.sites.append((row["site_name"], row["devices"]))
        return list(clients.values())

    async def add_enrolment_token(
        self, token_hash: str, site: SiteRef, created_at: datetime, expires_at: datetime | None,
        uses: int | None,
    ) -> None:
        """Record a new enrolment token (only its hash is stored)."""
        await self._db.execute(
            "INSERT INTO enrolment_tokens (token_hash, site_id, created_at, expires_at, uses_left) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_hash, site.site_id, _ts(created_at), _ts_or_none(expires_at), uses),
        )

    async def consume_enrolment_token(self, token_hash: str, now: datetime) -> SiteRef:
        """Use one enrolment of the token, or raise EnrolmentRefused saying why."""
        # One conditional UPDATE decides, so two enrolments racing for the last use cannot both win.
        used = await self._one(
            "UPDATE enrolment_tokens SET uses_left = uses_left - 1 "
            "WHERE token_hash = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) "
            "AND (uses_left IS NULL OR uses_left > 0) RETURNING site_id",
            (token_hash, _ts(now)),
        )
        if used is not None:
            return await self._site_ref(used["site_id"])
        token = await self._one("SELECT * FROM enrolment_tokens WHERE token_hash = ?", (token_hash,))
        if token is None:
            raise EnrolmentRefused("unknown enrolment token")
        if token["revoked_at"] is not None:
            raise EnrolmentRefused("enrolment token revoked")
        if token["uses_left"] == 0:
            raise EnrolmentRefused("enrolment token used up")
        raise EnrolmentRefused(f"enrolment token expired at {_dt(token['expires_at']).isoformat()}")

    async def revoke_enrolment_token(self, token_hash: str, at: datetime) -> bool:
        """Stop a token from enrolling anything more; False when it is unknown or was revoked before."""
        cursor = await self._db.execute(
            "UPDATE enrolment_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
            (_ts(at), token_hash),
        )
        return cursor.rowcount == 1

    async def _site_ref(self, site_id: int) -> SiteRef:
        """The site with this id (it exists: foreign keys point at it)."""
        row = await self._one(
            "SELECT c.id AS client_id, c.name AS client_name, s.name AS site_name "
            "FROM sites s JOIN clients c ON c.id = s.client_id WHERE s.id = ?",
            (site_id,),
        )
        assert row is not None
        return SiteRef(row["client_id"], row["client_name"], site_id, row["site_name"])

    async def add_agent(self, agent: AgentRow) -> None:
        """Record a newly enrolled agent."""
        await self._db.execute(
            "INSERT INTO agents (agent_id, public_key, hostname, site_id, enrolled_at, last_seen_at, "
            "last_seq, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                agent.agent_id, agent.public_key, agent.hostname, agent.site.site_id, _ts(agent.enrolled_at),
                _ts_or_none(agent.last_seen_at), agent.last_seq,
                # AgentRow carries no revocation time; an agent recorded as revoked was revoked at enrolment.
                _ts(agent.enrolled_at) if agent.revoked else None,
            ),
        )

    async def revoke_agent(self, agent_id: str, at: datetime) -> bool:
        """Refuse the agent's requests from now on; False when it is unknown or was revoked before."""
        cursor = await self._db.execute(
            "UPDATE agents SET revoked_at = ? WHERE agent_id = ? AND revoked_at IS NULL", (_ts(at), agent_id)
        )
        return cursor.rowcount == 1

    async def agent(self, agent_id: str) -> AgentRow | None:
        """One agent, or None."""
        row = await self._one(_AGENTS + " WHERE a.agent_id = ?", (agent_id,))
        return _agent(row) if row is not None else None

    async def agents(self) -> list[AgentRow]:
        """All agents, by client, site and hostname."""
        rows = await self._db.execute_fetchall(_AGENTS + " ORDER BY c.name, s.name, a.hostname, a.agent_id")
        return [_agent(row) for row in rows]

    async def record_envelope(
        self, agent_id: str, seq: int, boot_id: str, sent_at: datetime, received_at: datetime,
        rows: list[tuple[str, datetime, str]],
    ) -> bool:
        """Store an envelope and its signals; False (and nothing written) when it was stored before."""
        report = (agent_id, seq, boot_id, _ts(sent_at), _ts(received_at))
        observations = [(agent_id, seq, kind, _ts(at), payload) for kind, at, payload in rows]

        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute(
                "INSERT INTO reports (agent_id, seq, boot_id, sent_at, received_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (agent_id, seq) DO NOTHING",
                report,
            )
            if cursor.rowcount != 1:
                return False
            db.executemany(
                "INSERT INTO observations (agent_id, seq, kind, collected_at, payload) VALUES (?, ?, ?, ?, ?)",
                observations,
            )
            return True

        return await self._db.run(work)

    async def touch_agent(
        self, agent_id: str, seen_at: datetime, seq: int, hostname: str | None
    ) -> datetime | None:
        """Update when the agent was last heard from (never moving backwards); returns the previous time."""
        params = {"hostname": hostname, "seen": _ts(seen_at), "seq": seq, "agent_id": agent_id}

        def work(db: sqlite3.Connection) -> datetime | None:
            before = db.execute("SELECT last_seen_at FROM agents WHERE agent_id = ?", (agent_id,)).fetchone()
            # The hostname follows the newest contact only, so a late, older report cannot rename the device back.
            db.execute(
                "UPDATE agents SET "
                "hostname = CASE WHEN :hostname IS NOT NULL AND (last_seen_at IS NULL OR last_seen_at <= :seen) "
                "THEN :hostname ELSE hostname END, "
                "last_seen_at = max(coalesce(last_seen_at, :seen), :seen), "
                "last_seq = max(last_seq, :seq) "
                "WHERE agent_id = :agent_id",
                params,
            )
            return _dt_or_none(before["last_seen_at"]) if before is not None else None

        return await self._db.run(work)

    async def observations(self, agent_id: str, kind: str, limit: int) -> list[ObservationRow]:
        """The agent's latest observations of a kind, newest first."""
        rows = await self._db.execute_fetchall(
            "SELECT * FROM observations WHERE agent_id = ? AND kind = ? ORDER BY id DESC LIMIT ?",
            (agent_id, kind, limit),
        )
        return [_observation(row) for row in rows]

    async def site_observations(self, site_id: int, kind: str, since: datetime) -> list[tuple[str, ObservationRow]]:
        """Observations of a kind from every device of a site collected since a time, newest first."""
        rows = await self._db.execute_fetchall(
            "SELECT o.*, a.hostname FROM observations o JOIN agents a ON a.agent_id = o.agent_id "
            "WHERE a.site_id = ? AND o.kind = ? AND o.collected_at >= ? ORDER BY o.id DESC",
            (site_id, kind, _ts(since)),
        )
        return [(row["hostname"], _observation(row)) for row in rows]

    async def open_alert(self, fingerprint: str) -> AlertRow | None:
        """The open alert with this fingerprint, if any."""
        row = await self._one("SELECT * FROM alerts WHERE fingerprint = ? AND state = 'open'", (fingerprint,))
        return _alert(row) if row is not None else None

    async def open_alerts_of(self, agent_id: str) -> list[AlertRow]:
        """The agent's open alerts."""
        rows = await self._db.execute_fetchall(
            "SELECT * FROM alerts WHERE agent_id = ? AND state = 'open'", (agent_id,)
        )
        return [_alert(row) for row in rows]

    async def insert_alert(
        self, fingerprint: str, rule: str, owner: AlertOwner, subject: str, severity: Severity, summary: str,
        details: dict[str, Any], at: datetime,
    ) -> AlertRow | None:
        """Open an alert; None when another writer opened one for this fingerprint first."""
        # The conflict target is the partial unique index: losing the race yields no row, not an error.
        row = await self._one(
            "INSERT INTO alerts (fingerprint, rule, agent_id, site_id, client, site, hostname, subject, severity, "
            "state, summary, details, opened_at, last_seen_at, occurrences) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, 1) "
            "ON CONFLICT (fingerprint) WHERE state = 'open' DO NOTHING RETURNING *",
            (fingerprint, rule, owner.agent_id, owner.site_id, owner.client, owner.site, owner.hostname, subject,
             severity, summary, json.dumps(details), _ts(at), _ts(at)),
        )
        return _alert(row) if row is not None else None

    async def update_alert(
        self, alert_id: int, severity: Severity, summary: str, details: dict[str, Any], at: datetime
    ) -> AlertRow:
        """Record a repeat bad evaluation; the run of good evaluations starts again."""
        return await self._changed(
            "UPDATE alerts SET severity = ?, summary = ?, details = ?, last_seen_at = max(last_seen_at, ?), "
            "occurrences = occurrences + 1, good_streak = 0, good_since = NULL WHERE id = ? RETURNING *",
            (severity, summary, json.dumps(details), _ts(at), alert_id),
        )

    async def record_good(self, alert_id: int, at: datetime) -> AlertRow:
        """Count one more good evaluation of an open alert."""
        return await self._changed(
            "UPDATE alerts SET good_streak = good_streak + 1, good_since = coalesce(good_since, ?) "
            "WHERE id = ? RETURNING *",
            (_ts(at), alert_id),
        )

    async def set_flapping(self, alert_id: int, flapping: bool) -> AlertRow:
        """Mark or clear an alert as flapping."""
        return await self._changed("UPDATE alerts SET flapping = ? WHERE id = ? RETURNING *", (int(flapping), alert_id))

    async def _changed(self, sql: str, params: Any) -> AlertRow:
        """The alert an UPDATE ... RETURNING * changed; LookupError when there was none."""
        row = await self._one(sql, params)
        if row is None:
            raise LookupError(f"no alert with id {params[-1]}")
        return _alert(row)

    async def resolve_alert(self, alert_id: int, at: datetime) -> AlertRow | None:
        """Resolve an open alert; None when it was not open any more."""
        row = await self._one(
            "UPDATE alerts SET state = 'resolved', resolved_at = ?, snoozed_until = NULL "
            "WHERE id = ? AND state = 'open' RETURNING *",
            (_ts(at), alert_id),
        )
        return _alert(row) if row is not None else None

    async def reopen_alert(self, fingerprint: str, resolved_since: datetime, at: datetime) -> AlertRow | None:
        """Reopen the alert with this fingerprint resolved at or after `resolved_since`, if there is one."""
        row = await self._one(
            "UPDATE alerts SET state = 'open', resolved_at = NULL, last_seen_at = ?, "
            "good_streak = 0, good_since = NULL, acknowledged_at = NULL, acknowledged_by = NULL "
            "WHERE id = (SELECT id FROM alerts WHERE fingerprint = ? AND state = 'resolved' AND resolved_at >= ? "
            "ORDER BY resolved_at DESC LIMIT 1) "
            "AND NOT EXISTS (SELECT 1 FROM alerts WHERE fingerprint = ? AND state = 'open') RETURNING *",
            (_ts(at), fingerprint, _ts(resolved_since), fingerprint),
        )
        return _alert(row) if row is not None else None

    async def alert(self, alert_id: int) -> AlertRow | None:
        """One alert, or None."""
        row = await self._one("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return _alert(row) if row is not None else None

    async def acknowledge(self, alert_id: int, by: str, at: datetime) -> AlertRow | None:
        """Mark an open alert acknowledged; None when it is not open or was acknowledged before."""
        row = await self._one(
            "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? "
            "WHERE id = ? AND state = 'open' AND acknowledged_at IS NULL RETURNING *",
            (_ts(at), by, alert_id),
        )
        return _alert(row) if row is not None else None

    async def snooze(self, alert_id: int, until: datetime | None) -> AlertRow | None:
        """Hold an open alert's notifications until a time (None ends the snooze); None when not open."""
        row = await self._one(
            "UPDATE alerts SET snoozed_until = ? WHERE id = ? AND state = 'open' RETURNING *",
            (_ts_or_none(until), alert_id),
        )
        return _alert(row) if row is not None else None

    async def alerts(self, state: AlertState | None) -> list[AlertRow]:
        """Alerts in a state (all when None), newest first."""
        rows = await self._db.execute_fetchall(
            "SELECT * FROM alerts WHERE :state IS NULL OR state = :state ORDER BY opened_at DESC, id DESC",
            {"state": state},
        )
        return [_alert(row) for row in rows]

    async def add_alert_event(
        self, alert_id: int, at: datetime, type: str, actor: str, detail: dict[str, Any]
    ) -> None:
        """Append to an alert's history."""
        await self._db.execute(
            "INSERT INTO alert_events (alert_id, at, type, actor, detail) VALUES (?, ?, ?, ?, ?)",
            (alert_id, _ts(at), type, actor, json.dumps(detail)),
        )

    async def alert_events(self, alert_id: int) -> list[tuple[datetime, str, str, dict[str, Any]]]:
        """An alert's history, oldest first, as (at, type, actor, detail)."""
        rows = await self._db.execute_fetchall(
            "SELECT at, type, actor, detail FROM alert_events WHERE alert_id = ? ORDER BY at, id", (alert_id,)
        )
        return [(_dt(row["at"]), row["type"], row["actor"], json.loads(row["detail"])) for row in rows]

    async def append_feed(self, at: datetime, type: str, data: dict[str, Any]) -> FeedEvent:
        """Add an event to the live feed."""
        stored_at = _ts(at)
        row = await self._one(
            "INSERT INTO feed_events (at, type, data) VALUES (?, ?, ?) RETURNING id",
            (stored_at, type, json.dumps(data)),
        )
        assert row is not None  # an INSERT without a conflict clause returns its row
        return FeedEvent(row["id"], _dt(stored_at), type, data)

    async def feed_since(self, after_id: int, limit: int) -> list[FeedEvent]:
        """Feed events with id greater than `after_id`, oldest first."""
        rows = await self._db.execute_fetchall(
            "SELECT * FROM feed_events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
        )
        return [FeedEvent(row["id"], _dt(row["at"]), row["type"], json.loads(row["data"])) for row in rows]

    async def feed_last_id(self) -> int:
        """The id of the newest feed event, 0 when there is none."""
        row = await self._one("SELECT coalesce(max(id), 0) AS id FROM feed_events")
        return row["id"] if row is not None else 0

    async def add_push_job(
        self, token_hash: str, agent_id: str, name: str, schedule: str, timezone: str,
        grace_seconds: float | None, created_at: datetime,
    ) -> PushJobRow | None:
        """Record a push job (only its token's hash); None when the device has a push job of that name."""
        row = await self._one(
            "INSERT INTO backup_push_jobs (token_hash, agent_id, name, schedule, timezone, grace_seconds, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id, name) DO NOTHING RETURNING *",
            (token_hash, agent_id, name, schedule, timezone, grace_seconds, _ts(created_at)),
        )
        return _push_job(row) if row is not None else None

    async def push_jobs(self) -> list[PushJobState]:
        """Every push job with what its pings tell, by device and name."""

        def work(db: sqlite3.Connection) -> list[PushJobState]:
            rows = db.execute("SELECT * FROM backup_push_jobs ORDER BY agent_id, name").fetchall()
            return [_push_state(db, _push_job(row)) for row in rows]

        return await self._db.run(work)

    async def record_ping(
        self, token_hash: str, at: datetime, kind: PingKind, size_bytes: int | None, log: str | None
    ) -> PushJobState | None:
        """Store a ping of the job with this token and return the job's state; None for an unknown token."""

        def work(db: sqlite3.Connection) -> PushJobState | None:
            row = db.execute("SELECT * FROM backup_push_jobs WHERE token_hash = ?", (token_hash,)).fetchone()
            if row is None:
                return None
            job = _push_job(row)
            db.execute(
                "INSERT INTO backup_pings (job_id, at, kind, bytes, log) VALUES (?, ?, ?, ?, ?)",
                (job.job_id, _ts(at), kind, size_bytes, log),
            )
            # A NULL cut-off (fewer pings than kept) deletes nothing.
            db.execute(
                "DELETE FROM backup_pings WHERE job_id = :job AND id < ("
                "  SELECT id FROM backup_pings WHERE job_id = :job ORDER BY id DESC LIMIT 1 OFFSET :kept) "
                "AND id NOT IN (SELECT id FROM backup_pings WHERE job_id = :job "
                "  AND kind IN ('success', 'warning') ORDER BY id DESC LIMIT 2)",
                {"job": job.job_id, "kept": PINGS_KEPT - 1},
            )
            return _push_state(db, job)

        return await self._db.run(work)

    async def add_channel(self, channel: ChannelRow, at: datetime) -> ChannelRow:
        """Create a channel (its `channel_id` is assigned); ValueError when the name is taken."""
        try:
            row = await self._one(
                "INSERT INTO channels (name, url, min_severity, clients, kinds, quiet_start, quiet_end, timezone, "
                "digest_at, group_wait_seconds, group_interval_seconds, repeat_interval_seconds, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (channel.name, channel.url, channel.min_severity, json.dumps(list(channel.clients)),
                 json.dumps(list(channel.kinds)), _hhmm(channel.quiet_start), _hhmm(channel.quiet_end),
                 channel.timezone, _hhmm(channel.digest_at), channel.group_wait.total_seconds(),
                 channel.group_interval.total_seconds(), channel.repeat_interval.total_seconds(), _ts(at)),
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"there is a channel named {channel.name!r} already") from exc
        assert row is not None
        return _channel(row)

    async def channels(self) -> list[ChannelRow]:
        """Every channel, by name."""
        return [_channel(row) for row in await self._db.execute_fetchall("SELECT * FROM channels ORDER BY name")]

    async def record_delivery(
        self, channel_id: int, at: datetime, ok: bool, items: int, title: str, error: str | None
    ) -> ChannelRow:
        """Log one delivery attempt; success resets the failure count and marks when the channel last sent."""

        def work(db: sqlite3.Connection) -> sqlite3.Row:
            db.execute("INSERT INTO deliveries (channel_id, at, ok, items, title, error) VALUES (?, ?, ?, ?, ?, ?)",
                       (channel_id, _ts(at), int(ok), items, title, error))
            if ok:
                sql = "UPDATE channels SET last_sent_at = ?, failures = 0 WHERE id = ? RETURNING *"
                return db.execute(sql, (_ts(at), channel_id)).fetchone()
            return db.execute("UPDATE channels SET failures = failures + 1 WHERE id = ? RETURNING *",
                              (channel_id,)).fetchone()

        return _channel(await self._db.run(work))

    async def mark_channel_broken(self, channel_id: int, at: datetime, reason: str) -> None:
        """Stop using a channel until a technician fixes it."""
        await self._db.execute("UPDATE channels SET broken_at = ?, broken_reason = ? WHERE id = ?",
                               (_ts(at), reason, channel_id))

    async def mark_digest_sent(self, channel_id: int, day: date) -> None:
        """Remember that a channel's digest for a day went out."""
        await self._db.execute("UPDATE channels SET last_digest_on = ? WHERE id = ?", (day.isoformat(), channel_id))

    async def add_silence(self, silence: Silence, at: datetime) -> Silence:
        """Record a silence (its `silence_id` is assigned)."""
        matchers = {k: v for k, v in asdict(silence.matchers).items() if v is not None}
        row = await self._one(
            "INSERT INTO silences (matchers, starts_at, ends_at, cron, duration_seconds, timezone, comment, "
            "created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (json.dumps(matchers), _ts(silence.starts_at), _ts_or_none(silence.ends_at), silence.cron,
             silence.duration.total_seconds() if silence.duration else None, silence.timezone, silence.comment,
             silence.created_by, _ts(at)),
        )
        assert row is not None
        return _silence(row)

    async def silences(self) -> list[Silence]:
        """Every silence that was not expired by hand, newest first."""
        rows = await self._db.execute_fetchall("SELECT * FROM silences WHERE expired_at IS NULL ORDER BY id DESC")
        return [_silence(row) for row in rows]

    async def expire_silence(self, silence_id: int, at: datetime) -> bool:
        """End a silence now and release what it held; False when there is none or it was expired before."""

        def work(db: sqlite3.Connection) -> bool:
            cursor = db.execute("UPDATE silences SET expired_at = ? WHERE id = ? AND expired_at IS NULL",
                                (_ts(at), silence_id))
            if cursor.rowcount != 1:
                return False
            # The dispatcher checks the remaining silences again before it sends these.
            db.execute("UPDATE notifications SET due_at = ? WHERE state = 'pending' AND reason = 'silenced' "
                       "AND due_at > ?", (_ts(at), _ts(at)))
            return True

        return await self._db.run(work)

    async def enqueue(self, rows: list[tuple[int, int, str, datetime, datetime, str]]) -> None:
        """Queue notifications as (channel_id, alert_id, event, created_at, due_at, reason)."""
        await self._db.executemany(
            "INSERT INTO notifications (channel_id, alert_id, event, created_at, due_at, state, reason) "
            "VALUES (?, ?, ?, ?, ?, 'pending', ?)",
            [(c, a, e, _ts(created), _ts(due), reason) for c, a, e, created, due, reason in rows],
        )

    async def due_notifications(self, now: datetime) -> list[QueuedNotification]:
        """Pending notifications due by `now`, oldest first."""
        rows = await self._db.execute_fetchall(
            "SELECT n.id AS n_id, n.channel_id, n.event, n.created_at AS n_created_at, n.due_at, n.reason, "
            "n.attempts, a.* FROM notifications n JOIN alerts a ON a.id = n.alert_id "
            "WHERE n.state = 'pending' AND n.due_at <= ? ORDER BY n.id",
            (_ts(now),),
        )
        return [
            QueuedNotification(row["n_id"], row["channel_id"], _alert(row), row["event"], _dt(row["n_created_at"]),
                               _dt(row["due_at"]), row["reason"], row["attempts"])
            for row in rows
        ]

    async def claim(self, notification_ids: list[int], claimer: str) -> list[int]:
        """Take pending notifications for sending; returns the ids this claimer got."""
        if not notification_ids:
            return []
        marks = ",".join("?" * len(notification_ids))
        rows = await self._db.execute_fetchall(
            f"UPDATE notifications SET state = 'sending', claimed_by = ? "
            f"WHERE id IN ({marks}) AND state = 'pending' RETURNING id",
            (claimer, *notification_ids),
        )
        return sorted(row["id"] for row in rows)

    async def finish(
        self, notification_ids: list[int], state: str, at: datetime, error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Mark claimed notifications sent, failed or dropped, or (with `retry_at`) pending again."""
        if retry_at is not None:
            await self._db.executemany(
                "UPDATE notifications SET state = 'pending', due_at = ?, attempts = attempts + 1, last_error = ?, "
                "claimed_by = NULL WHERE id = ?",
                [(_ts(retry_at), error, n) for n in notification_ids],
            )
            return
        await self._db.executemany(
            "UPDATE notifications SET state = ?, sent_at = ?, last_error = ?, attempts = attempts + 1 WHERE id = ?",
            [(state, _ts(at), error, n) for n in notification_ids],
        )

    async def last_notified(self, alert_id: int, channel_id: int, sent_only: bool) -> datetime | None:
        """When the alert was last queued for the channel (sent or waiting; only sent with `sent_only`)."""
        states = "('sent')" if sent_only else "('pending', 'sending', 'sent')"
        row = await self._one(
            f"SELECT max(created_at) AS last FROM notifications WHERE alert_id = ? AND channel_id = ? "
            f"AND state IN {states}",
            (alert_id, channel_id),
        )
        return _dt_or_none(row["last"]) if row is not None else None

    async def alert_events_since(self, since: datetime) -> list[tuple[AlertRow, datetime, str]]:
        """Every alert change since a time, as (alert now, when, what), oldest first."""
        rows = await self._db.execute_fetchall(
            "SELECT e.at AS e_at, e.type AS e_type, a.* FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
            "WHERE e.at >= ? ORDER BY e.id",
            (_ts(since),),
        )
        return [(_alert(row), _dt(row["e_at"]), row["e_type"]) for row in rows]

    async def get_meta(self, key: str) -> str | None:
        """A collector-wide value."""
        row = await self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return row["value"] if row is not None else None

    async def set_meta(self, key: str, value: str) -> None:
        """Set a collector-wide value."""
        await self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # Billing ---------------------------------------------------------------------------------------------

    async def client_id(self, name: str) -> int | None:
        """The id of the client with this name, or None."""
        row = await self._one("SELECT id FROM clients WHERE name = ?", (name,))
        return row["id"] if row is not None else None

    async def set_device_billing(
        self,
        agent_id: str,
        device_class: DeviceClass,
        contact: str,
        active_from: date | None,
        active_to: date | None,
    ) -> bool:
        """Set a device's class, contact and (optionally) managed days; False when there is no such device."""
        if await self._one("SELECT 1 FROM agents WHERE agent_id = ?", (agent_id,)) is None:
            return False
        await self._db.execute(
            "INSERT INTO device_billing (agent_id, device_class, contact, active_from, active_to) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET "
            "device_class = excluded.device_class, "
            "contact = excluded.contact, active_from = excluded.active_from, active_to = excluded.active_to",
            (agent_id, device_class, contact, _day_or_none(active_from), _day_or_none(active_to)),
        )
        return True

    async def billing_devices(self, client_id: int) -> list[DeviceBillingRow]:
        """The client's enrolled devices with their billing facts, by hostname."""
        rows = await self._db.execute_fetchall(
            "SELECT a.agent_id, a.hostname, s.name AS site_name, a.enrolled_at, a.revoked_at, "
            "b.device_class, "
            "b.contact, b.active_from, b.active_to FROM agents a JOIN sites s ON s.id = a.site_id "
            "LEFT JOIN device_billing b ON b.agent_id = a.agent_id WHERE s.client_id = ? "
            "ORDER BY a.hostname, a.agent_id",
            (client_id,),
        )
        return [
            DeviceBillingRow(
                row["agent_id"],
                row["hostname"],
                row["site_name"],
                _dt(row["enrolled_at"]),
                _dt_or_none(row["revoked_at"]),
                row["device_class"] or "workstation",
                row["contact"] or "",
                _date_or_none(row["active_from"]),
                _date_or_none(row["active_to"]),
            )
            for row in rows
        ]

    async def add_contract(self, client_id: int, contract: Contract, at: datetime) -> ContractRow:
        """Record a contract version; ValueError when the client has one taking effect that day."""
        c = contract
        try:
            row = await self._one(
                "INSERT INTO contracts (client_id, effective_from, effective_to, start, term_months, "
                "workstation_rate, server_rate, covers_remote, covers_onsite, covers_after_hours, "
                "included_hours, "
                "onboarding_workstation_months, onboarding_server_months, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    client_id,
                    _day(c.effective_from),
                    _day_or_none(c.effective_to),
                    _day(c.start),
                    c.term_months,
                    str(c.workstation_rate),
                    str(c.server_rate),
                    int(c.covers_remote),
                    int(c.covers_onsite),
                    int(c.covers_after_hours),
                    _money_or_none(c.included_hours),
                    str(c.onboarding_workstation_months),
                    str(c.onboarding_server_months),
                    _ts(at),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(
                f"the client has a contract version taking effect on {c.effective_from}"
            ) from exc
        assert row is not None
        return _contract(row)

    async def contracts(self, client_id: int) -> list[ContractRow]:
        """The client's contract versions, oldest first."""
        rows = await self._db.execute_fetchall(
            "SELECT * FROM contracts WHERE client_id = ? ORDER BY effective_from", (client_id,)
        )
        return [_contract(row) for row in rows]

    async def add_rates(self, client_id: int | None, rates: BreakFixRates, at: datetime) -> RatesRow:
        """Record a rate card version (client None: for everyone); ValueError when one starts that day."""
        r = rates
        try:
            row = await self._one(
                "INSERT INTO breakfix_rates (client_id, effective_from, effective_to, hourly_rate, "
                "minimum_minutes, "
                "increment_minutes, after_hours_multiplier, onsite_minimum_minutes, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    client_id,
                    _day(r.effective_from),
                    _day_or_none(r.effective_to),
                    str(r.hourly_rate),
                    r.minimum_minutes,
                    r.increment_minutes,
                    str(r.after_hours_multiplier),
                    r.onsite_minimum_minutes,
                    _ts(at),
                ),
            )
        except sqlite3.IntegrityError as exc:
            raise ValueError(f"a rate card version takes effect on {r.effective_from} already") from exc
        assert row is not None
        return _rates(row)

    async def rate_cards(self) -> list[RatesRow]:
        """Every rate card version, oldest first."""
        rows = await self._db.execute_fetchall("SELECT * FROM breakfix_rates ORDER BY effective_from, id")
        return [_rates(row) for row in rows]

    async def add_incident(
        self,
        client_id: int,
        title: str,
        category: str,
        emergency: bool,
        alert_id: int | None,
        at: datetime,
        by: str,
    ) -> IncidentRow | None:
        """Open an incident (linked to `alert_id` if given); None when that alert belongs to an incident."""

        def work(db: sqlite3.Connection) -> int | None:
            if (
                alert_id is not None
                and db.execute("SELECT 1 FROM incident_alerts WHERE alert_id = ?", (alert_id,)).fetchone()
            ):
                return None
            incident_id = db.execute(
                "INSERT INTO incidents (client_id, title, category, emergency, status, alert_id, opened_at, "
                "opened_by) VALUES (?, ?, ?, ?, 'open', ?, ?, ?) RETURNING id",
                (client_id, title, category, int(emergency), alert_id, _ts(at), by),
            ).fetchone()["id"]
            if alert_id is not None:
                db.execute(
                    "INSERT INTO incident_alerts (incident_id, alert_id, linked_at) VALUES (?, ?, ?)",
                    (incident_id, alert_id, _ts(at)),
                )
            return incident_id

        incident_id = await self._db.run(work)
        return await self.incident(incident_id) if incident_id is not None else None

    async def incident(self, incident_id: int) -> IncidentRow | None:
        """One incident, or None."""
        rows = await self._db.execute_fetchall(_INCIDENTS + " WHERE i.id = ? GROUP BY i.id", (incident_id,))
        return _incident(rows[0]) if rows else None

    async def incident_of_alert(self, alert_id: int) -> int | None:
        """The incident an alert belongs to, if any."""
        row = await self._one("SELECT incident_id FROM incident_alerts WHERE alert_id = ?", (alert_id,))
        return row["incident_id"] if row is not None else None

    async def incidents(
        self,
        client_id: int | None,
        status: IncidentStatus | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[IncidentRow]:
        """Incidents (of a client, in a status, opened from `since` to before `until`), oldest first."""
        rows = await self._db.execute_fetchall(
            _INCIDENTS + " WHERE (:client IS NULL OR i.client_id = :client) "
            "AND (:status IS NULL OR i.status = :status) AND (:since IS NULL OR i.opened_at >= :since) "
            "AND (:until IS NULL OR i.opened_at < :until) "
            "GROUP BY i.id ORDER BY i.opened_at, i.id",
            {"client": client_id, "status": status, "since": _ts_or_none(since), "until": _ts_or_none(until)},
        )
        return [_incident(row) for row in rows]

    async def link_alert(self, incident_id: int, alert_id: int, at: datetime) -> bool:
        """Add an alert to an incident; False when the alert belongs to an incident already."""
        cursor = await self._db.execute(
            "INSERT INTO incident_alerts (incident_id, alert_id, linked_at) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (incident_id, alert_id, _ts(at)),
        )
        return cursor.rowcount == 1

    async def close_incident(
        self, incident_id: int, at: datetime, by: str, resolution: str
    ) -> IncidentRow | None:
        """Close an open incident; None when it is not open."""
        cursor = await self._db.execute(
            "UPDATE incidents SET status = 'closed', closed_at = ?, closed_by = ?, resolution = ? "
            "WHERE id = ? AND status = 'open'",
            (_ts(at), by, resolution, incident_id),
        )
        return await self.incident(incident_id) if cursor.rowcount == 1 else None

    async def add_incident_note(self, incident_id: int, at: datetime, author: str, text: str) -> NoteRow:
        """Add a note to an incident."""
        row = await self._one(
            "INSERT INTO incident_notes (incident_id, at, author, text) VALUES (?, ?, ?, ?) RETURNING *",
            (incident_id, _ts(at), author, text),
        )
        assert row is not None
        return _note(row)

    async def incident_notes(self, incident_id: int) -> list[NoteRow]:
        """An incident's notes, oldest first."""
        rows = await self._db.execute_fetchall(
            "SELECT * FROM incident_notes WHERE incident_id = ? ORDER BY id", (incident_id,)
        )
        return [_note(row) for row in rows]

    async def start_timer(
        self, incident_id: int, technician: str, at: datetime, on_site: bool, after_hours: bool
    ) -> TimeEntryRow | None:
        """Start the technician's timer on an incident; None when it is running already."""
        # The partial unique index on running timers decides, so a double start cannot make two.
        row = await self._one(
            "INSERT INTO time_entries (incident_id, technician, started_at, on_site, after_hours) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (incident_id, technician) WHERE minutes IS NULL DO NOTHING "
            "RETURNING *",
            (incident_id, technician, _ts(at), int(on_site), int(after_hours)),
        )
        return _time_entry(row) if row is not None else None

    async def stop_timer(self, incident_id: int, technician: str, at: datetime) -> TimeEntryRow | None:
        """Stop the technician's running timer, counting every started minute; None when none runs."""

        def work(db: sqlite3.Connection) -> sqlite3.Row | None:
            running = db.execute(
                "SELECT id, started_at FROM time_entries "
                "WHERE incident_id = ? AND technician = ? AND minutes IS NULL",
                (incident_id, technician),
            ).fetchone()
            if running is None:
                return None
            seconds = (at - _dt(running["started_at"])).total_seconds()
            return db.execute(
                "UPDATE time_entries SET stopped_at = ?, minutes = ? WHERE id = ? RETURNING *",
                (_ts(at), max(0, math.ceil(seconds / 60)), running["id"]),
            ).fetchone()

        row = await self._db.run(work)
        return _time_entry(row) if row is not None else None

    async def add_time_entry(self, entry: TimeEntryRow) -> TimeEntryRow:
        """Record finished time (its `entry_id` is assigned)."""
        e = entry
        row = await self._one(
            "INSERT INTO time_entries (incident_id, technician, started_at, stopped_at, minutes, on_site, "
            "after_hours, override, override_reason, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (
                e.incident_id,
                e.technician,
                _ts(e.started_at),
                _ts_or_none(e.stopped_at),
                e.minutes,
                int(e.on_site),
                int(e.after_hours),
                e.override,
                e.override_reason,
                e.note,
            ),
        )
        assert row is not None
        return _time_entry(row)

    async def override_time_entry(
        self, entry_id: int, override: Classification | None, reason: str | None
    ) -> TimeEntryRow | None:
        """Set or clear an entry's classification override; None when there is no such entry."""
        row = await self._one(
            "UPDATE time_entries SET override = ?, override_reason = ? WHERE id = ? RETURNING *",
            (override, reason, entry_id),
        )
        return _time_entry(row) if row is not None else None

    async def time_entries(
        self, client_id: int | None = None, incident_id: int | None = None
    ) -> list[TimeEntryRow]:
        """Time entries of a client or an incident (running ones too), by start."""
        rows = await self._db.execute_fetchall(
            "SELECT t.* FROM time_entries t JOIN incidents i ON i.id = t.incident_id "
            "WHERE (:client IS NULL OR i.client_id = :client) "
            "AND (:incident IS NULL OR t.incident_id = :incident) "
            "ORDER BY t.started_at, t.id",
            {"client": client_id, "incident": incident_id},
        )
        return [_time_entry(row) for row in rows]

    async def add_part(self, part: Part) -> Part:
        """Record a part fitted for an incident (its `id` is assigned)."""
        row = await self._one(
            "INSERT INTO parts (incident_id, day, description, cost, price, quantity) "
            "VALUES (?, ?, ?, ?, ?, ?) "
            "RETURNING *",
            (
                part.incident_id,
                _day(part.day),
                part.description,
                str(part.cost),
                str(part.price),
                part.quantity,
            ),
        )
        assert row is not None
        return _part(row)

    async def parts(self, client_id: int | None = None, incident_id: int | None = None) -> list[Part]:
        """Parts of a client or an incident, by day."""
        rows = await self._db.execute_fetchall(
            "SELECT p.* FROM parts p JOIN incidents i ON i.id = p.incident_id "
            "WHERE (:client IS NULL OR i.client_id = :client) "
            "AND (:incident IS NULL OR p.incident_id = :incident) "
            "ORDER BY p.day, p.id",
            {"client": client_id, "incident": incident_id},
        )
        return [_part(row) for row in rows]

    async def client_feed_events(
        self, client: str, types: list[str], since: datetime, until: datetime
    ) -> list[FeedEvent]:
        """Feed events of these types about the client's devices, `since` to before `until`, oldest first."""
        marks = ",".join("?" * len(types))
        rows = await self._db.execute_fetchall(
            f"SELECT * FROM feed_events WHERE type IN ({marks}) AND json_extract(data, '$.client') = ? "
            f"AND at >= ? AND at < ? ORDER BY id",
            (*types, client, _ts(since), _ts(until)),
        )
        return [FeedEvent(row["id"], _dt(row["at"]), row["type"], json.loads(row["data"])) for row in rows]

    async def backups_verified(self, client_id: int, since: datetime, until: datetime) -> int:
        """Distinct successful backup runs of the client's devices that ended `since` to before `until`."""
        # Agents report the same last success again and again: a run is (device, job, its success time).
        # julianday() reads the agent's ISO text whatever its offset notation.
        row = await self._one(
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
            {"client": client_id, "since": _ts(since), "until": _ts(until)},
        )
        return row["runs"] if row is not None else 0

    # Technician accounts ---------------------------------------------------------------------------------

    async def add_technician(self, name: str, password_hash: str, at: datetime) -> TechnicianRow | None:
        """Create a technician account; None when the name is taken."""
        row = await self._one(
            "INSERT INTO technicians (name, password_hash, created_at) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING RETURNING *",
            (name, password_hash, _ts(at)),
        )
        return _technician(row) if row is not None else None

    async def technician(self, name: str) -> TechnicianRow | None:
        """The technician with this name, or None."""
        row = await self._one("SELECT * FROM technicians WHERE name = ?", (name,))
        return _technician(row) if row is not None else None

    async def set_password(self, technician_id: int, password_hash: str, end_sessions: bool) -> None:
        """Replace a technician's password hash; `end_sessions` logs out every browser of theirs."""
        await self._db.execute("UPDATE technicians SET password_hash = ? WHERE id = ?", (password_hash, technician_id))
        if end_sessions:
            await self._db.execute("DELETE FROM web_sessions WHERE technician_id = ?", (technician_id,))

    async def add_web_session(
        self, token_hash: str, technician_id: int, csrf_token: str, created_at: datetime, expires_at: datetime
    ) -> None:
        """Record a logged-in browser (only its cookie's hash); expired sessions are cleared meanwhile."""
        await self._db.execute("DELETE FROM web_sessions WHERE expires_at <= ?", (_ts(created_at),))
        await self._db.execute(
            "INSERT INTO web_sessions (token_hash, technician_id, csrf_token, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_hash, technician_id, csrf_token, _ts(created_at), _ts(expires_at)),
        )

    async def web_session(self, token_hash: str, now: datetime) -> WebSessionRow | None:
        """The unexpired session whose cookie has this hash, or None."""
        row = await self._one(
            "SELECT s.technician_id, t.name, s.csrf_token, s.expires_at FROM web_sessions s "
            "JOIN technicians t ON t.id = s.technician_id WHERE s.token_hash = ? AND s.expires_at > ?",
            (token_hash, _ts(now)),
        )
        if row is None:
            return None
        return WebSessionRow(row["technician_id"], row["name"], row["csrf_token"], _dt(row["expires_at"]))

    async def end_web_session(self, token_hash: str) -> None:
        """Log a browser out."""
        await self._db.execute("DELETE FROM web_sessions WHERE token_hash = ?", (token_hash,))

    async def enrolment_tokens(self) -> list[EnrolmentTokenRow]:
        """Every enrolment token (revoked ones too), newest first."""
        rows = await self._db.execute_fetchall(
            "SELECT t.*, c.name AS client_name, s.name AS site_name FROM enrolment_tokens t "
            "JOIN sites s ON s.id = t.site_id JOIN clients c ON c.id = s.client_id "
            "ORDER BY t.created_at DESC, t.token_hash"
        )
        return [
            EnrolmentTokenRow(row["token_hash"], row["client_name"], row["site_name"], _dt(row["created_at"]),
                              _dt_or_none(row["expires_at"]), row["uses_left"], _dt_or_none(row["revoked_at"]))
            for row in rows
        ]

    async def last_observed(self, kinds: list[str]) -> dict[tuple[str, str], datetime]:
        """When each device last reported each of these kinds, by (agent_id, kind); absent: never."""
        if not kinds:
            return {}
        # One lookup per device and kind down the (agent_id, kind, id) index, not a scan of every observation.
        kind_rows = " UNION ALL ".join(["SELECT ? AS kind"] * len(kinds))
        rows = await self._db.execute_fetchall(
            f"SELECT a.agent_id, k.kind, (SELECT o.collected_at FROM observations o WHERE o.agent_id = a.agent_id "
            f"AND o.kind = k.kind ORDER BY o.id DESC LIMIT 1) AS at FROM agents a CROSS JOIN ({kind_rows}) k",
            kinds,
        )
        return {(row["agent_id"], row["kind"]): _dt(row["at"]) for row in rows if row["at"] is not None}


    # --- offline sweep (issue 24, pipeline slice) ---

    async def offline_candidates(
        self, device_rule: str, site_rule: str, silent_since: datetime
    ) -> list[tuple[AgentRow, bool]]:
        sql = OFFLINE_CANDIDATES_SQL.replace("$", "?")  # $1 -> ?1: SQLite's numbered parameters
        rows = await self._db.execute_fetchall(sql, (device_rule, site_rule, _ts(silent_since)))
        return [(_agent(row), bool(row["offline_open"])) for row in rows]

def _technician(row: sqlite3.Row) -> TechnicianRow:
    """A technicians row as a TechnicianRow."""
    return TechnicianRow(row["id"], row["name"], row["password_hash"], _dt(row["created_at"]))


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


def _ts(value: datetime) -> str:
    """A datetime as sortable ISO 8601 UTC text (always with microseconds, so equal lengths compare right)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store keeps timezone-aware UTC times only")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _ts_or_none(value: datetime | None) -> str | None:
    """`_ts`, passing None through."""
    return None if value is None else _ts(value)


def _dt(value: str) -> datetime:
    """Stored text back to a timezone-aware UTC datetime."""
    return datetime.fromisoformat(value)


def _dt_or_none(value: str | None) -> datetime | None:
    """`_dt`, passing None through."""
    return None if value is None else _dt(value)


def _agent(row: sqlite3.Row) -> AgentRow:
    """An agents row (joined with its site and client) as an AgentRow."""
    return AgentRow(
        agent_id=row["agent_id"],
        public_key=row["public_key"],
        hostname=row["hostname"],
        site=SiteRef(row["client_id"], row["client_name"], row["site_id"], row["site_name"]),
        enrolled_at=_dt(row["enrolled_at"]),
        last_seen_at=_dt_or_none(row["last_seen_at"]),
        last_seq=row["last_seq"],
        revoked=row["revoked_at"] is not None,
    )


def _observation(row: sqlite3.Row) -> ObservationRow:
    """An observations row as the interface returns it."""
    return ObservationRow(
        row["agent_id"], row["seq"], row["kind"], _dt(row["collected_at"]), json.loads(row["payload"])
    )


def _push_job(row: sqlite3.Row) -> PushJobRow:
    """A backup_push_jobs row as a PushJobRow."""
    return PushJobRow(
        job_id=row["id"],
        agent_id=row["agent_id"],
        name=row["name"],
        schedule=row["schedule"],
        timezone=row["timezone"],
        grace_seconds=row["grace_seconds"],
        created_at=_dt(row["created_at"]),
    )


def _ping(row: sqlite3.Row) -> PingRow:
    """A backup_pings row as a PingRow."""
    return PingRow(_dt(row["at"]), row["kind"], row["bytes"], row["log"])


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
        run_started_at = _dt(before_end["at"])
    good = tuple(map(_ping, newest("kind IN ('success', 'warning')", limit=2)))
    return PushJobState(
        job, _ping(start) if start else None, _ping(end) if end else None, run_started_at, good
    )


def _hhmm(value: time | None) -> str | None:
    """A time of day as HH:MM."""
    return value.strftime("%H:%M") if value is not None else None


def _time_or_none(value: str | None) -> time | None:
    """HH:MM as a time of day."""
    return time.fromisoformat(value) if value else None


def _channel(row: sqlite3.Row) -> ChannelRow:
    """A channels row as a ChannelRow."""
    return ChannelRow(
        channel_id=row["id"], name=row["name"], url=row["url"], min_severity=row["min_severity"],
        clients=tuple(json.loads(row["clients"])), kinds=tuple(json.loads(row["kinds"])),
        quiet_start=_time_or_none(row["quiet_start"]), quiet_end=_time_or_none(row["quiet_end"]),
        timezone=row["timezone"], digest_at=_time_or_none(row["digest_at"]),
        group_wait=timedelta(seconds=row["group_wait_seconds"]),
        group_interval=timedelta(seconds=row["group_interval_seconds"]),
        repeat_interval=timedelta(seconds=row["repeat_interval_seconds"]),
        last_sent_at=_dt_or_none(row["last_sent_at"]),
        last_digest_on=date.fromisoformat(row["last_digest_on"]) if row["last_digest_on"] else None,
        failures=row["failures"], broken_at=_dt_or_none(row["broken_at"]), broken_reason=row["broken_reason"],
    )


def _silence(row: sqlite3.Row) -> Silence:
    """A silences row as a Silence."""
    return Silence(
        silence_id=row["id"], matchers=Matchers(**json.loads(row["matchers"])), starts_at=_dt(row["starts_at"]),
        ends_at=_dt_or_none(row["ends_at"]), cron=row["cron"],
        duration=timedelta(seconds=row["duration_seconds"]) if row["duration_seconds"] is not None else None,
        timezone=row["timezone"], comment=row["comment"], created_by=row["created_by"],
        expired_at=_dt_or_none(row["expired_at"]),
    )


def _alert(row: sqlite3.Row) -> AlertRow:
    """An alerts row as an AlertRow."""
    return AlertRow(
        alert_id=row["id"],
        fingerprint=row["fingerprint"],
        rule=row["rule"],
        owner=AlertOwner(row["agent_id"], row["site_id"], row["client"], row["site"], row["hostname"]),
        subject=row["subject"],
        severity=row["severity"],
        state=row["state"],
        summary=row["summary"],
        details=json.loads(row["details"]),
        opened_at=_dt(row["opened_at"]),
        last_seen_at=_dt(row["last_seen_at"]),
        resolved_at=_dt_or_none(row["resolved_at"]),
        occurrences=row["occurrences"],
        acknowledged_at=_dt_or_none(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        snoozed_until=_dt_or_none(row["snoozed_until"]),
        good_streak=row["good_streak"],
        good_since=_dt_or_none(row["good_since"]),
        flapping=bool(row["flapping"]),
    )


# Billing rows -------------------------------------------------------------------------------------------


def _day(value: date) -> str:
    """A day as ISO text."""
    return value.isoformat()


def _day_or_none(value: date | None) -> str | None:
    """`_day`, passing None through."""
    return None if value is None else value.isoformat()


def _date_or_none(value: str | None) -> date | None:
    """ISO text back to a day."""
    return None if value is None else date.fromisoformat(value)


def _money_or_none(value: Decimal | None) -> str | None:
    """A Decimal as its exact text (money never goes through a float)."""
    return None if value is None else str(value)


def _contract(row: sqlite3.Row) -> ContractRow:
    """A contracts row as a ContractRow."""
    included = row["included_hours"]
    return ContractRow(
        row["id"],
        Contract(
            client=row["client_id"],
            effective_from=date.fromisoformat(row["effective_from"]),
            effective_to=_date_or_none(row["effective_to"]),
            start=date.fromisoformat(row["start"]),
            term_months=row["term_months"],
            workstation_rate=Decimal(row["workstation_rate"]),
            server_rate=Decimal(row["server_rate"]),
            covers_remote=bool(row["covers_remote"]),
            covers_onsite=bool(row["covers_onsite"]),
            covers_after_hours=bool(row["covers_after_hours"]),
            included_hours=Decimal(included) if included is not None else None,
            onboarding_workstation_months=Decimal(row["onboarding_workstation_months"]),
            onboarding_server_months=Decimal(row["onboarding_server_months"]),
        ),
    )


def _rates(row: sqlite3.Row) -> RatesRow:
    """A breakfix_rates row as a RatesRow."""
    return RatesRow(
        row["id"],
        row["client_id"],
        BreakFixRates(
            effective_from=date.fromisoformat(row["effective_from"]),
            effective_to=_date_or_none(row["effective_to"]),
            hourly_rate=Decimal(row["hourly_rate"]),
            minimum_minutes=row["minimum_minutes"],
            increment_minutes=row["increment_minutes"],
            after_hours_multiplier=Decimal(row["after_hours_multiplier"]),
            onsite_minimum_minutes=row["onsite_minimum_minutes"],
        ),
    )


def _incident(row: sqlite3.Row) -> IncidentRow:
    """An incidents row (with its client's name and linked alert ids) as an IncidentRow."""
    linked = tuple(sorted(int(a) for a in row["alert_ids"].split(","))) if row["alert_ids"] else ()
    return IncidentRow(
        incident_id=row["id"],
        client_id=row["client_id"],
        client=row["client_name"],
        title=row["title"],
        category=row["category"],
        emergency=bool(row["emergency"]),
        status=row["status"],
        alert_id=row["alert_id"],
        opened_at=_dt(row["opened_at"]),
        opened_by=row["opened_by"],
        closed_at=_dt_or_none(row["closed_at"]),
        closed_by=row["closed_by"],
        resolution=row["resolution"],
        alert_ids=linked,
    )


def _note(row: sqlite3.Row) -> NoteRow:
    """An incident_notes row as a NoteRow."""
    return NoteRow(row["id"], row["incident_id"], _dt(row["at"]), row["author"], row["text"])


def _time_entry(row: sqlite3.Row) -> TimeEntryRow:
    """A time_entries row as a TimeEntryRow."""
    return TimeEntryRow(
        entry_id=row["id"],
        incident_id=row["incident_id"],
        technician=row["technician"],
        started_at=_dt(row["started_at"]),
        stopped_at=_dt_or_none(row["stopped_at"]),
        minutes=row["minutes"],
        on_site=bool(row["on_site"]),
        after_hours=bool(row["after_hours"]),
        override=row["override"],
        override_reason=row["override_reason"],
        note=row["note"],
    )


def _part(row: sqlite3.Row) -> Part:
    """A parts row as a Part."""
    return Part(
        id=row["id"],
        incident_id=row["incident_id"],
        day=date.fromisoformat(row["day"]),
        description=row["description"],
        cost=Decimal(row["cost"]),
        price=Decimal(row["price"]),
        quantity=row["quantity"],
    )
