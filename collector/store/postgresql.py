"""The PostgreSQL backend (asyncpg): a connection pool, one pooled connection per transaction.

Transactions run at READ COMMITTED, so several collector processes work side by side. What must
happen once is decided by single statements: a unique index with `ON CONFLICT ... DO NOTHING`, or an
`UPDATE ... WHERE state = old` that the second writer re-checks after waiting for the first. Where a
step needs several rows at once, a CTE does it in one round trip.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg

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

# Pings kept per push job (besides its two newest good ones), as the SQLite backend keeps them.
PINGS_KEPT = 100
# pg_advisory_xact_lock key that serialises migrations across collectors: "fieldpst" in ASCII.
MIGRATION_LOCK = 0x6669656C64707374
POOL_MIN = 1
POOL_MAX = 10

_AGENTS = """
    SELECT a.*, s.name AS site_name, c.id AS client_id, c.name AS client_name
    FROM agents a JOIN sites s ON s.id = a.site_id JOIN clients c ON c.id = s.client_id
"""
# Incidents with the alerts they cover (callers add WHERE ... GROUP BY i.id, c.name).
_INCIDENTS = """
    SELECT i.*, c.name AS client_name,
        array_remove(array_agg(l.alert_id ORDER BY l.alert_id), NULL) AS alert_ids
    FROM incidents i JOIN clients c ON c.id = i.client_id LEFT JOIN incident_alerts l ON l.incident_id = i.id
"""
# Every push job (or the one numbered $1) with the pings its state is read from, tagged by what they are:
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
    WHERE $1::bigint IS NULL OR j.id = $1
    ORDER BY j.agent_id, j.name, j.id, p.id DESC
"""


# The NOTIFY channel that tells every collector's live feed to look for new events.
FEED_CHANNEL = "fieldpost_feed"


class PostgresStore:
    """A Store kept in a PostgreSQL database, shared safely by several collector processes."""

    def __init__(self, dsn: str, min_size: int = POOL_MIN, max_size: int = POOL_MAX) -> None:
        self._dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None
        self._listener: asyncpg.Connection | None = None

    async def open(self) -> None:
        """Connect the pool and apply pending migrations."""
        # Moments travel as UTC instants either way; the session zone only matters for text casts.
        self._pool = await asyncpg.create_pool(
            self._dsn, min_size=self._min_size, max_size=self._max_size,
            server_settings={"timezone": "UTC", "application_name": "fieldpost-collector"},
        )
        try:
            await migrate(self.migration_tx, load_migrations("postgresql"))
        except BaseException:
            await self.close()
            raise

    async def watch_feed(self, wake: Callable[[], None]) -> None:
        """LISTEN on the feed's channel on a connection of its own; every collector's new event wakes `wake`."""
        self._listener = await asyncpg.connect(self._dsn, server_settings={"application_name": "fieldpost-feed"})
        await self._listener.add_listener(FEED_CHANNEL, lambda *_: wake())

    async def close(self) -> None:
        """Close the feed listener and the pool (a store that is not open is left as it is)."""
        if self._listener is not None:
            listener, self._listener = self._listener, None
            await listener.close()
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A transaction: committed when the block ends normally, rolled back on an exception."""
        async with self._connection() as conn:
            yield _PostgresTx(conn)

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A consistent read-only view for queries (for now a transaction like any other)."""
        return self.transaction()

    @asynccontextmanager
    async def migration_tx(self) -> AsyncIterator[MigrationTx]:
        """A transaction for the migration runner, exclusive across every collector on the database."""
        async with self._connection() as conn:
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            yield _PostgresMigrationTx(conn)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside a READ COMMITTED transaction for the block."""
        if self._pool is None:
            raise RuntimeError("the store is not open")
        async with self._pool.acquire() as conn, conn.transaction(isolation="read_committed"):
            yield conn


class _PostgresMigrationTx:
    """The migration runner's view of a PostgreSQL transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def run_script(self, sql: str) -> None:
        """Run the script (without arguments, asyncpg sends it whole: several statements at once)."""
        await self._conn.execute(sql)

    async def applied(self) -> dict[int, str]:
        """The recorded versions and their names."""
        rows = await self._conn.fetch("SELECT version, name FROM schema_migrations")
        return {row["version"]: row["name"] for row in rows}

    async def record(self, migration: Migration, applied_at: datetime) -> None:
        """Record a migration as applied (`applied_at` is text: the table is the same on every backend)."""
        await self._conn.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
            migration.version, migration.name, _ts(applied_at).isoformat(),
        )


class _PostgresTx:
    """The Store operations inside one PostgreSQL transaction."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def _one(self, sql: str, *args: Any) -> asyncpg.Record | None:
        """The first row of a query, or None."""
        return await self._conn.fetchrow(sql, *args)

    async def _all(self, sql: str, *args: Any) -> list[asyncpg.Record]:
        """Every row of a query."""
        return await self._conn.fetch(sql, *args)

    async def site(self, client: str, site: str) -> SiteRef:
        """The site, creating the client and site on first use."""
        find = (
            "SELECT c.id AS client_id, s.id AS site_id FROM clients c JOIN sites s ON s.client_id = c.id "
            "WHERE c.name = $1 AND s.name = $2"
        )
        row = await self._one(find, client, site)
        if row is None:
            # A concurrent creator makes ON CONFLICT wait for its commit; the next statement sees its rows.
            await self._conn.execute(
                "INSERT INTO clients (name) VALUES ($1) ON CONFLICT (name) DO NOTHING", client
            )
            await self._conn.execute(
                "INSERT INTO sites (client_id, name) SELECT id, $2 FROM clients WHERE name = $1 "
                "ON CONFLICT (client_id, name) DO NOTHING",
                client, site,
            )
            row = await self._one(find, client, site)
        assert row is not None  # both rows were inserted or found above
        return SiteRef(row["client_id"], client, row["site_id"], site)

    async def clients(self) -> list[ClientRow]:
        """All clients, their sites and device counts, by name."""
        rows = await self._all(
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
        await self._conn.execute(
            "INSERT INTO enrolment_tokens (token_hash, site_id, created_at, expires_at, uses_left) "
            "VALUES ($1, $2, $3, $4, $5)",
            token_hash, site.site_id, _ts(created_at), _ts_or_none(expires_at), uses,
        )

    async def consume_enrolment_token(self, token_hash: str, now: datetime) -> SiteRef:
        """Use one enrolment of the token, or raise EnrolmentRefused saying why."""
        # One conditional UPDATE decides, so two enrolments racing for the last use cannot both win.
        used = await self._one(
            "WITH used AS (UPDATE enrolment_tokens SET uses_left = uses_left - 1 "
            "  WHERE token_hash = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) "
            "  AND (uses_left IS NULL OR uses_left > 0) RETURNING site_id) "
            "SELECT c.id AS client_id, c.name AS client_name, s.id AS site_id, s.name AS site_name "
            "FROM used JOIN sites s ON s.id = used.site_id JOIN clients c ON c.id = s.client_id",
            token_hash, _ts(now),
        )
        if used is not None:
            return SiteRef(used["client_id"], used["client_name"], used["site_id"], used["site_name"])
        token = await self._one("SELECT * FROM enrolment_tokens WHERE token_hash = $1", token_hash)
        if token is None:
            raise EnrolmentRefused("unknown enrolment token")
        if token["revoked_at"] is not None:
            raise EnrolmentRefused("enrolment token revoked")
        if token["uses_left"] == 0:
            raise EnrolmentRefused("enrolment token used up")
        raise EnrolmentRefused(f"enrolment token expired at {token['expires_at'].isoformat()}")

    async def revoke_enrolment_token(self, token_hash: str, at: datetime) -> bool:
        """Stop a token from enrolling anything more; False when it is unknown or was revoked before."""
        row = await self._one(
            "UPDATE enrolment_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL "
            "RETURNING 1",
            _ts(at), token_hash,
        )
        return row is not None

    async def add_agent(self, agent: AgentRow) -> None:
        """Record a newly enrolled agent."""
        await self._conn.execute(
            "INSERT INTO agents (agent_id, public_key, hostname, site_id, enrolled_at, last_seen_at, "
            "last_seq, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            agent.agent_id, agent.public_key, agent.hostname, agent.site.site_id, _ts(agent.enrolled_at),
            _ts_or_none(agent.last_seen_at), agent.last_seq,
            # AgentRow carries no revocation time; an agent recorded as revoked was revoked at enrolment.
            _ts(agent.enrolled_at) if agent.revoked else None,
        )

    async def revoke_agent(self, agent_id: str, at: datetime) -> bool:
        """Refuse the agent's requests from now on; False when it is unknown or was revoked before."""
        row = await self._one(
            "UPDATE agents SET revoked_at = $1 WHERE agent_id = $2 AND revoked_at IS NULL RETURNING 1",
            _ts(at), agent_id,
        )
        return row is not None

    async def agent(self, agent_id: str) -> AgentRow | None:
        """One agent, or None."""
        row = await self._one(_AGENTS + " WHERE a.agent_id = $1", agent_id)
        return _agent(row) if row is not None else None

    async def agents(self) -> list[AgentRow]:
        """All agents, by client, site and hostname."""
        rows = await self._all(_AGENTS + " ORDER BY c.name, s.name, a.hostname, a.agent_id")
        return [_agent(row) for row in rows]

    async def record_envelope(
        self, agent_id: str, seq: int, boot_id: str, sent_at: datetime, received_at: datetime,
        rows: list[tuple[str, datetime, str]],
    ) -> bool:
        """Store an envelope and its signals; False (and nothing written) when it was stored before."""
        # One statement: the observations are inserted only when the report row was (not on a resend).
        row = await self._one(
            "WITH report AS (INSERT INTO reports (agent_id, seq, boot_id, sent_at, received_at) "
            "  VALUES ($1, $2, $3, $4, $5) ON CONFLICT (agent_id, seq) DO NOTHING RETURNING agent_id, seq), "
            "signals AS (INSERT INTO observations (agent_id, seq, kind, collected_at, payload) "
            "  SELECT r.agent_id, r.seq, o.kind, o.collected_at, o.payload FROM report r, "
            "  unnest($6::text[], $7::timestamptz[], $8::json[]) WITH ORDINALITY "
            "    AS o(kind, collected_at, payload, n) ORDER BY o.n) "
            "SELECT count(*) AS stored FROM report",
            agent_id, seq, boot_id, _ts(sent_at), _ts(received_at),
            [kind for kind, _, _ in rows], [_ts(at) for _, at, _ in rows],
            [payload for _, _, payload in rows],
        )
        return row is not None and row["stored"] == 1

    async def touch_agent(
        self, agent_id: str, seen_at: datetime, seq: int, hostname: str | None
    ) -> datetime | None:
        """Update when the agent was last heard from (never moving backwards); returns the previous time."""
        # The locked sub-select hands back the row as it was before this UPDATE changed it.
        row = await self._one(
            "UPDATE agents a SET "
            "hostname = CASE WHEN $3::text IS NOT NULL AND (a.last_seen_at IS NULL OR a.last_seen_at <= $2) "
            "THEN $3 ELSE a.hostname END, "
            "last_seen_at = GREATEST(a.last_seen_at, $2), last_seq = GREATEST(a.last_seq, $4) "
            "FROM (SELECT agent_id, last_seen_at FROM agents WHERE agent_id = $1 FOR UPDATE) before "
            "WHERE a.agent_id = before.agent_id RETURNING before.last_seen_at",
            agent_id, _ts(seen_at), hostname, seq,
        )
        return row["last_seen_at"] if row is not None else None

    async def observations(self, agent_id: str, kind: str, limit: int) -> list[ObservationRow]:
        """The agent's latest observations of a kind, newest first."""
        rows = await self._all(
            "SELECT * FROM observations WHERE agent_id = $1 AND kind = $2 ORDER BY id DESC LIMIT $3",
            agent_id, kind, limit,
        )
        return [_observation(row) for row in rows]

    async def site_observations(
        self, site_id: int, kind: str, since: datetime
    ) -> list[tuple[str, ObservationRow]]:
        """Observations of a kind from every device of a site collected since a time, newest first."""
        rows = await self._all(
            "SELECT o.*, a.hostname FROM observations o JOIN agents a ON a.agent_id = o.agent_id "
            "WHERE a.site_id = $1 AND o.kind = $2 AND o.collected_at >= $3 ORDER BY o.id DESC",
            site_id, kind, _ts(since),
        )
        return [(row["hostname"], _observation(row)) for row in rows]

    async def open_alert(self, fingerprint: str) -> AlertRow | None:
        """The open alert with this fingerprint, if any."""
        row = await self._one("SELECT * FROM alerts WHERE fingerprint = $1 AND state = 'open'", fingerprint)
        return _alert(row) if row is not None else None

    async def open_alerts_of(self, agent_id: str) -> list[AlertRow]:
        """The agent's open alerts."""
        rows = await self._all("SELECT * FROM alerts WHERE agent_id = $1 AND state = 'open'", agent_id)
        return [_alert(row) for row in rows]

    async def insert_alert(
        self, fingerprint: str, rule: str, owner: AlertOwner, subject: str, severity: Severity, summary: str,
        details: dict[str, Any], at: datetime,
    ) -> AlertRow | None:
        """Open an alert; None when another writer opened one for this fingerprint first."""
        # The conflict target is the partial unique index: a writer that loses the race waits for the
        # winner's commit and then gets no row, not an error that would end its transaction.
        row = await self._one(
            "INSERT INTO alerts (fingerprint, rule, agent_id, site_id, client, site, hostname, subject, "
            "severity, "
            "state, summary, details, opened_at, last_seen_at, occurrences) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11, $12, $12, 1) "
            "ON CONFLICT (fingerprint) WHERE state = 'open' DO NOTHING RETURNING *",
            fingerprint, rule, owner.agent_id, owner.site_id, owner.client, owner.site, owner.hostname,
            subject,
            severity, summary, json.dumps(details), _ts(at),
        )
        return _alert(row) if row is not None else None

    async def update_alert(
        self, alert_id: int, severity: Severity, summary: str, details: dict[str, Any], at: datetime
    ) -> AlertRow:
        """Record a repeat bad evaluation; the run of good evaluations starts again."""
        return await self._changed(
            "UPDATE alerts SET severity = $1, summary = $2, details = $3, last_seen_at = "
            "GREATEST(last_seen_at, $4), "
            "occurrences = occurrences + 1, good_streak = 0, good_since = NULL WHERE id = $5 RETURNING *",
            severity, summary, json.dumps(details), _ts(at), alert_id,
        )

    async def record_good(self, alert_id: int, at: datetime) -> AlertRow:
        """Count one more good evaluation of an open alert."""
        return await self._changed(
            "UPDATE alerts SET good_streak = good_streak + 1, good_since = coalesce(good_since, $1) "
            "WHERE id = $2 RETURNING *",
            _ts(at), alert_id,
        )

    async def set_flapping(self, alert_id: int, flapping: bool) -> AlertRow:
        """Mark or clear an alert as flapping."""
        return await self._changed(
            "UPDATE alerts SET flapping = $1 WHERE id = $2 RETURNING *", flapping, alert_id
        )

    async def _changed(self, sql: str, *args: Any) -> AlertRow:
        """The alert an UPDATE ... RETURNING * changed (its id is the last argument); LookupError if none."""
        row = await self._one(sql, *args)
        if row is None:
            raise LookupError(f"no alert with id {args[-1]}")
        return _alert(row)

    async def resolve_alert(self, alert_id: int, at: datetime) -> AlertRow | None:
        """Resolve an open alert; None when it was not open any more."""
        row = await self._one(
            "UPDATE alerts SET state = 'resolved', resolved_at = $1, snoozed_until = NULL "
            "WHERE id = $2 AND state = 'open' RETURNING *",
            _ts(at), alert_id,
        )
        return _alert(row) if row is not None else None

    async def reopen_alert(self, fingerprint: str, resolved_since: datetime, at: datetime) -> AlertRow | None:
        """Reopen the alert with this fingerprint resolved at or after `resolved_since`, if there is one."""
        # `state = 'resolved'` on the row itself is checked again after waiting for a concurrent writer.
        row = await self._one(
            "UPDATE alerts SET state = 'open', resolved_at = NULL, last_seen_at = $1, "
            "good_streak = 0, good_since = NULL, acknowledged_at = NULL, acknowledged_by = NULL "
            "WHERE id = (SELECT id FROM alerts WHERE fingerprint = $2 AND state = 'resolved' AND "
            "resolved_at >= $3 "
            "ORDER BY resolved_at DESC LIMIT 1) AND state = 'resolved' "
            "AND NOT EXISTS (SELECT 1 FROM alerts WHERE fingerprint = $2 AND state = 'open') RETURNING *",
            _ts(at), fingerprint, _ts(resolved_since),
        )
        return _alert(row) if row is not None else None

    async def alert(self, alert_id: int) -> AlertRow | None:
        """One alert, or None."""
        row = await self._one("SELECT * FROM alerts WHERE id = $1", alert_id)
        return _alert(row) if row is not None else None

    async def acknowledge(self, alert_id: int, by: str, at: datetime) -> AlertRow | None:
        """Mark an open alert acknowledged; None when it is not open or was acknowledged before."""
        row = await self._one(
            "UPDATE alerts SET acknowledged_at = $1, acknowledged_by = $2 "
            "WHERE id = $3 AND state = 'open' AND acknowledged_at IS NULL RETURNING *",
            _ts(at), by, alert_id,
        )
        return _alert(row) if row is not None else None

    async def snooze(self, alert_id: int, until: datetime | None) -> AlertRow | None:
        """Hold an open alert's notifications until a time (None ends the snooze); None when not open."""
        row = await self._one(
            "UPDATE alerts SET snoozed_until = $1 WHERE id = $2 AND state = 'open' RETURNING *",
            _ts_or_none(until), alert_id,
        )
        return _alert(row) if row is not None else None

    async def alerts(self, state: AlertState | None) -> list[AlertRow]:
        """Alerts in a state (all when None), newest first."""
        rows = await self._all(
            "SELECT * FROM alerts WHERE $1::text IS NULL OR state = $1 ORDER BY opened_at DESC, id DESC",
            state,
        )
        return [_alert(row) for row in rows]

    async def add_alert_event(
        self, alert_id: int, at: datetime, type: str, actor: str, detail: dict[str, Any]
    ) -> None:
        """Append to an alert's history."""
        await self._conn.execute(
            "INSERT INTO alert_events (alert_id, at, type, actor, detail) VALUES ($1, $2, $3, $4, $5)",
            alert_id, _ts(at), type, actor, json.dumps(detail),
        )

    async def alert_events(self, alert_id: int) -> list[tuple[datetime, str, str, dict[str, Any]]]:
        """An alert's history, oldest first, as (at, type, actor, detail)."""
        rows = await self._all(
            "SELECT at, type, actor, detail FROM alert_events WHERE alert_id = $1 ORDER BY at, id", alert_id
        )
        return [(row["at"], row["type"], row["actor"], json.loads(row["detail"])) for row in rows]

    async def append_feed(self, at: datetime, type: str, data: dict[str, Any]) -> FeedEvent:
        """Add an event to the live feed."""
        # The notification is delivered when the transaction commits, to every collector listening.
        row = await self._one(
            "WITH added AS (INSERT INTO feed_events (at, type, data) VALUES ($1, $2, $3) RETURNING id, at) "
            f"SELECT id, at, pg_notify('{FEED_CHANNEL}', '') FROM added",
            _ts(at), type, json.dumps(data),
        )
        assert row is not None  # an INSERT without a conflict clause returns its row
        return FeedEvent(row["id"], row["at"], type, data)

    async def feed_since(self, after_id: int, limit: int) -> list[FeedEvent]:
        """Feed events with id greater than `after_id`, oldest first."""
        rows = await self._all(
            "SELECT * FROM feed_events WHERE id > $1 ORDER BY id LIMIT $2", after_id, limit
        )
        return [_feed_event(row) for row in rows]

    async def feed_last_id(self) -> int:
        """The id of the newest feed event, 0 when there is none."""
        return await self._conn.fetchval("SELECT coalesce(max(id), 0) FROM feed_events")

    async def add_push_job(
        self, token_hash: str, agent_id: str, name: str, schedule: str, timezone: str,
        grace_seconds: float | None, created_at: datetime,
    ) -> PushJobRow | None:
        """Record a push job (only its token's hash); None when the device has a push job of that name."""
        row = await self._one(
            "INSERT INTO backup_push_jobs (token_hash, agent_id, name, schedule, timezone, grace_seconds, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (agent_id, name) DO NOTHING "
            "RETURNING *",
            token_hash, agent_id, name, schedule, timezone, grace_seconds, _ts(created_at),
        )
        return _push_job(row) if row is not None else None

    async def push_jobs(self) -> list[PushJobState]:
        """Every push job with what its pings tell, by device and name."""
        return _push_states(await self._all(_PUSH_STATES, None))

    async def record_ping(
        self, token_hash: str, at: datetime, kind: PingKind, size_bytes: int | None, log: str | None
    ) -> PushJobState | None:
        """Store a ping of the job with this token and return the job's state; None for an unknown token."""
        job_id = await self._conn.fetchval(
            "INSERT INTO backup_pings (job_id, at, kind, bytes, log) "
            "SELECT id, $2, $3, $4, $5 FROM backup_push_jobs WHERE token_hash = $1 RETURNING job_id",
            token_hash, _ts(at), kind, size_bytes, log,
        )
        if job_id is None:
            return None
        # A separate statement, so it sees the ping just added. A NULL cut-off deletes nothing.
        await self._conn.execute(
            "DELETE FROM backup_pings WHERE job_id = $1 AND id < ("
            "  SELECT id FROM backup_pings WHERE job_id = $1 ORDER BY id DESC LIMIT 1 OFFSET $2) "
            "AND id NOT IN (SELECT id FROM backup_pings WHERE job_id = $1 "
            "  AND kind IN ('success', 'warning') ORDER BY id DESC LIMIT 2)",
            job_id, PINGS_KEPT - 1,
        )
        [state] = _push_states(await self._all(_PUSH_STATES, job_id))
        return state

    async def add_channel(self, channel: ChannelRow, at: datetime) -> ChannelRow:
        """Create a channel (its `channel_id` is assigned); ValueError when the name is taken."""
        # ON CONFLICT rather than catching the error: an error would end the whole transaction.
        row = await self._one(
            "INSERT INTO channels (name, url, min_severity, clients, kinds, quiet_start, quiet_end, "
            "timezone, "
            "digest_at, group_wait_seconds, group_interval_seconds, repeat_interval_seconds, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "ON CONFLICT (name) DO NOTHING RETURNING *",
            channel.name, channel.url, channel.min_severity, json.dumps(list(channel.clients)),
            json.dumps(list(channel.kinds)), _minute(channel.quiet_start), _minute(channel.quiet_end),
            channel.timezone, _minute(channel.digest_at), _seconds(channel.group_wait),
            _seconds(channel.group_interval), _seconds(channel.repeat_interval), _ts(at),
        )
        if row is None:
            raise ValueError(f"there is a channel named {channel.name!r} already")
        return _channel(row)

    async def channels(self) -> list[ChannelRow]:
        """Every channel, by name."""
        return [_channel(row) for row in await self._all("SELECT * FROM channels ORDER BY name")]

    async def record_delivery(
        self, channel_id: int, at: datetime, ok: bool, items: int, title: str, error: str | None
    ) -> ChannelRow:
        """Log one delivery attempt; success resets the failure count and marks when the channel last sent."""
        row = await self._one(
            "WITH logged AS (INSERT INTO deliveries (channel_id, at, ok, items, title, error) "
            "  VALUES ($1, $2, $3, $4, $5, $6)) "
            "UPDATE channels SET last_sent_at = CASE WHEN $3 THEN $2 ELSE last_sent_at END, "
            "failures = CASE WHEN $3 THEN 0 ELSE failures + 1 END WHERE id = $1 RETURNING *",
            channel_id, _ts(at), ok, items, title, error,
        )
        assert row is not None  # the channel exists: the delivery row's foreign key says so
        return _channel(row)

    async def mark_channel_broken(self, channel_id: int, at: datetime, reason: str) -> None:
        """Stop using a channel until a technician fixes it."""
        await self._conn.execute(
            "UPDATE channels SET broken_at = $1, broken_reason = $2 WHERE id = $3",
            _ts(at), reason, channel_id,
        )

    async def mark_digest_sent(self, channel_id: int, day: date) -> None:
        """Remember that a channel's digest for a day went out."""
        await self._conn.execute("UPDATE channels SET last_digest_on = $1 WHERE id = $2", day, channel_id)

    async def add_silence(self, silence: Silence, at: datetime) -> Silence:
        """Record a silence (its `silence_id` is assigned)."""
        matchers = {k: v for k, v in asdict(silence.matchers).items() if v is not None}
        row = await self._one(
            "INSERT INTO silences (matchers, starts_at, ends_at, cron, duration_seconds, timezone, comment, "
            "created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *",
            json.dumps(matchers), _ts(silence.starts_at), _ts_or_none(silence.ends_at), silence.cron,
            _seconds(silence.duration) if silence.duration else None, silence.timezone, silence.comment,
            silence.created_by, _ts(at),
        )
        assert row is not None
        return _silence(row)

    async def silences(self) -> list[Silence]:
        """Every silence that was not expired by hand, newest first."""
        rows = await self._all("SELECT * FROM silences WHERE expired_at IS NULL ORDER BY id DESC")
        return [_silence(row) for row in rows]

    async def expire_silence(self, silence_id: int, at: datetime) -> bool:
        """End a silence now and release what it held; False when there is none or it was expired before."""
        # The dispatcher checks the remaining silences again before it sends the released notifications.
        expired = await self._conn.fetchval(
            "WITH expired AS (UPDATE silences SET expired_at = $2 WHERE id = $1 AND expired_at IS NULL "
            "  RETURNING id), "
            "released AS (UPDATE notifications SET due_at = $2 WHERE EXISTS (SELECT 1 FROM expired) "
            "  AND state = 'pending' AND reason = 'silenced' AND due_at > $2) "
            "SELECT count(*) FROM expired",
            silence_id, _ts(at),
        )
        return expired == 1

    async def enqueue(self, rows: list[tuple[int, int, str, datetime, datetime, str]]) -> None:
        """Queue notifications as (channel_id, alert_id, event, created_at, due_at, reason)."""
        await self._conn.executemany(
            "INSERT INTO notifications (channel_id, alert_id, event, created_at, due_at, state, reason) "
            "VALUES ($1, $2, $3, $4, $5, 'pending', $6)",
            [(c, a, e, _ts(created), _ts(due), reason) for c, a, e, created, due, reason in rows],
        )

    async def due_notifications(self, now: datetime) -> list[QueuedNotification]:
        """Pending notifications due by `now`, oldest first."""
        rows = await self._all(
            "SELECT n.id AS n_id, n.channel_id, n.event, n.created_at AS n_created_at, n.due_at, n.reason, "
            "n.attempts, a.* FROM notifications n JOIN alerts a ON a.id = n.alert_id "
            "WHERE n.state = 'pending' AND n.due_at <= $1 ORDER BY n.id",
            _ts(now),
        )
        return [
            QueuedNotification(row["n_id"], row["channel_id"], _alert(row), row["event"], row["n_created_at"],
                               row["due_at"], row["reason"], row["attempts"])
            for row in rows
        ]

    async def claim(self, notification_ids: list[int], claimer: str) -> list[int]:
        """Take pending notifications for sending; returns the ids this claimer got."""
        if not notification_ids:
            return []
        # A second claimer waits on the rows the first updated, then finds them no longer pending.
        rows = await self._all(
            "UPDATE notifications SET state = 'sending', claimed_by = $1 "
            "WHERE id = ANY($2::bigint[]) AND state = 'pending' RETURNING id",
            claimer, notification_ids,
        )
        return sorted(row["id"] for row in rows)

    async def finish(
        self, notification_ids: list[int], state: str, at: datetime, error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Mark claimed notifications sent, failed or dropped, or (with `retry_at`) pending again."""
        if retry_at is not None:
            await self._conn.execute(
                "UPDATE notifications SET state = 'pending', due_at = $1, attempts = attempts + 1, "
                "last_error = $2, claimed_by = NULL WHERE id = ANY($3::bigint[])",
                _ts(retry_at), error, notification_ids,
            )
            return
        await self._conn.execute(
            "UPDATE notifications SET state = $1, sent_at = $2, last_error = $3, attempts = attempts + 1 "
            "WHERE id = ANY($4::bigint[])",
            state, _ts(at), error, notification_ids,
        )

    async def last_notified(self, alert_id: int, channel_id: int, sent_only: bool) -> datetime | None:
        """When the alert was last queued for the channel (sent or waiting; only sent with `sent_only`)."""
        states = ["sent"] if sent_only else ["pending", "sending", "sent"]
        return await self._conn.fetchval(
            "SELECT max(created_at) FROM notifications WHERE alert_id = $1 AND channel_id = $2 "
            "AND state = ANY($3::text[])",
            alert_id, channel_id, states,
        )

    async def alert_events_since(self, since: datetime) -> list[tuple[AlertRow, datetime, str]]:
        """Every alert change since a time, as (alert now, when, what), oldest first."""
        rows = await self._all(
            "SELECT e.at AS e_at, e.type AS e_type, a.* FROM alert_events e JOIN alerts a ON a.id = "
            "e.alert_id "
            "WHERE e.at >= $1 ORDER BY e.id",
            _ts(since),
        )
        return [(_alert(row), row["e_at"], row["e_type"]) for row in rows]

    async def get_meta(self, key: str) -> str | None:
        """A collector-wide value."""
        return await self._conn.fetchval("SELECT value FROM meta WHERE key = $1", key)

    async def set_meta(self, key: str, value: str) -> None:
        """Set a collector-wide value."""
        await self._conn.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = "
            "excluded.value",
            key, value,
        )

    # Billing ---------------------------------------------------------------------------------------------

    async def client_id(self, name: str) -> int | None:
        """The id of the client with this name, or None."""
        return await self._conn.fetchval("SELECT id FROM clients WHERE name = $1", name)

    async def set_device_billing(
        self,
        agent_id: str,
        device_class: DeviceClass,
        contact: str,
        active_from: date | None,
        active_to: date | None,
    ) -> bool:
        """Set a device's class, contact and (optionally) managed days; False when there is no such device."""
        row = await self._one(
            "INSERT INTO device_billing (agent_id, device_class, contact, active_from, active_to) "
            "SELECT agent_id, $2, $3, $4, $5 FROM agents WHERE agent_id = $1 "
            "ON CONFLICT (agent_id) DO UPDATE SET device_class = excluded.device_class, "
            "contact = excluded.contact, active_from = excluded.active_from, active_to = excluded.active_to "
            "RETURNING 1",
            agent_id, device_class, contact, active_from, active_to,
        )
        return row is not None

    async def billing_devices(self, client_id: int) -> list[DeviceBillingRow]:
        """The client's enrolled devices with their billing facts, by hostname."""
        rows = await self._all(
            "SELECT a.agent_id, a.hostname, s.name AS site_name, a.enrolled_at, a.revoked_at, "
            "b.device_class, "
            "b.contact, b.active_from, b.active_to FROM agents a JOIN sites s ON s.id = a.site_id "
            "LEFT JOIN device_billing b ON b.agent_id = a.agent_id WHERE s.client_id = $1 "
            "ORDER BY a.hostname, a.agent_id",
            client_id,
        )
        return [
            DeviceBillingRow(
                row["agent_id"], row["hostname"], row["site_name"], row["enrolled_at"], row["revoked_at"],
                row["device_class"] or "workstation", row["contact"] or "", row["active_from"],
                row["active_to"],
            )
            for row in rows
        ]

    async def add_contract(self, client_id: int, contract: Contract, at: datetime) -> ContractRow:
        """Record a contract version; ValueError when the client has one taking effect that day."""
        c = contract
        row = await self._one(
            "INSERT INTO contracts (client_id, effective_from, effective_to, start, term_months, "
            "workstation_rate, server_rate, covers_remote, covers_onsite, covers_after_hours, "
            "included_hours, "
            "onboarding_workstation_months, onboarding_server_months, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) "
            "ON CONFLICT (client_id, effective_from) DO NOTHING RETURNING *",
            client_id, c.effective_from, c.effective_to, c.start, c.term_months, c.workstation_rate,
            c.server_rate, c.covers_remote, c.covers_onsite, c.covers_after_hours, c.included_hours,
            c.onboarding_workstation_months, c.onboarding_server_months, _ts(at),
        )
        if row is None:
            raise ValueError(f"the client has a contract version taking effect on {c.effective_from}")
        return _contract(row)

    async def contracts(self, client_id: int) -> list[ContractRow]:
        """The client's contract versions, oldest first."""
        rows = await self._all(
            "SELECT * FROM contracts WHERE client_id = $1 ORDER BY effective_from", client_id
        )
        return [_contract(row) for row in rows]

    async def add_rates(self, client_id: int | None, rates: BreakFixRates, at: datetime) -> RatesRow:
        """Record a rate card version (client None: for everyone); ValueError when one starts that day."""
        r = rates
        row = await self._one(
            "INSERT INTO breakfix_rates (client_id, effective_from, effective_to, hourly_rate, "
            "minimum_minutes, "
            "increment_minutes, after_hours_multiplier, onsite_minimum_minutes, created_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
            "ON CONFLICT ((coalesce(client_id, 0)), effective_from) DO NOTHING RETURNING *",
            client_id, r.effective_from, r.effective_to, r.hourly_rate, r.minimum_minutes,
            r.increment_minutes,
            r.after_hours_multiplier, r.onsite_minimum_minutes, _ts(at),
        )
        if row is None:
            raise ValueError(f"a rate card version takes effect on {r.effective_from} already")
        return _rates(row)

    async def rate_cards(self) -> list[RatesRow]:
        """Every rate card version, oldest first."""
        rows = await self._all("SELECT * FROM breakfix_rates ORDER BY effective_from, id")
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
        if alert_id is not None:
            # Two technicians opening an incident from one alert queue here; the second then sees the link.
            await self._conn.execute("SELECT 1 FROM alerts WHERE id = $1 FOR UPDATE", alert_id)
        incident_id = await self._conn.fetchval(
            "WITH opened AS (INSERT INTO incidents (client_id, title, category, emergency, status, alert_id, "
            "  opened_at, opened_by) SELECT $1, $2, $3, $4, 'open', $5, $6, $7 "
            "  WHERE $5::bigint IS NULL OR NOT EXISTS (SELECT 1 FROM incident_alerts WHERE alert_id = $5) "
            "  RETURNING id, alert_id, opened_at), "
            "linked AS (INSERT INTO incident_alerts (incident_id, alert_id, linked_at) "
            "  SELECT id, alert_id, opened_at FROM opened WHERE alert_id IS NOT NULL) "
            "SELECT id FROM opened",
            client_id, title, category, emergency, alert_id, _ts(at), by,
        )
        return await self.incident(incident_id) if incident_id is not None else None

    async def incident(self, incident_id: int) -> IncidentRow | None:
        """One incident, or None."""
        row = await self._one(_INCIDENTS + " WHERE i.id = $1 GROUP BY i.id, c.name", incident_id)
        return _incident(row) if row is not None else None

    async def incident_of_alert(self, alert_id: int) -> int | None:
        """The incident an alert belongs to, if any."""
        return await self._conn.fetchval(
            "SELECT incident_id FROM incident_alerts WHERE alert_id = $1", alert_id
        )

    async def incidents(
        self,
        client_id: int | None,
        status: IncidentStatus | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[IncidentRow]:
        """Incidents (of a client, in a status, opened from `since` to before `until`), oldest first."""
        rows = await self._all(
            _INCIDENTS + " WHERE ($1::bigint IS NULL OR i.client_id = $1) "
            "AND ($2::text IS NULL OR i.status = $2) AND ($3::timestamptz IS NULL OR i.opened_at >= $3) "
            "AND ($4::timestamptz IS NULL OR i.opened_at < $4) "
            "GROUP BY i.id, c.name ORDER BY i.opened_at, i.id",
            client_id, status, _ts_or_none(since), _ts_or_none(until),
        )
        return [_incident(row) for row in rows]

    async def link_alert(self, incident_id: int, alert_id: int, at: datetime) -> bool:
        """Add an alert to an incident; False when the alert belongs to an incident already."""
        row = await self._one(
            "INSERT INTO incident_alerts (incident_id, alert_id, linked_at) VALUES ($1, $2, $3) "
            "ON CONFLICT DO NOTHING RETURNING 1",
            incident_id, alert_id, _ts(at),
        )
        return row is not None

    async def close_incident(
        self, incident_id: int, at: datetime, by: str, resolution: str
    ) -> IncidentRow | None:
        """Close an open incident; None when it is not open."""
        closed = await self._one(
            "UPDATE incidents SET status = 'closed', closed_at = $1, closed_by = $2, resolution = $3 "
            "WHERE id = $4 AND status = 'open' RETURNING 1",
            _ts(at), by, resolution, incident_id,
        )
        return await self.incident(incident_id) if closed is not None else None

    async def add_incident_note(self, incident_id: int, at: datetime, author: str, text: str) -> NoteRow:
        """Add a note to an incident."""
        row = await self._one(
            "INSERT INTO incident_notes (incident_id, at, author, text) VALUES ($1, $2, $3, $4) RETURNING *",
            incident_id, _ts(at), author, text,
        )
        assert row is not None
        return _note(row)

    async def incident_notes(self, incident_id: int) -> list[NoteRow]:
        """An incident's notes, oldest first."""
        rows = await self._all("SELECT * FROM incident_notes WHERE incident_id = $1 ORDER BY id", incident_id)
        return [_note(row) for row in rows]

    async def start_timer(
        self, incident_id: int, technician: str, at: datetime, on_site: bool, after_hours: bool
    ) -> TimeEntryRow | None:
        """Start the technician's timer on an incident; None when it is running already."""
        # The partial unique index on running timers decides, so a double start cannot make two.
        row = await self._one(
            "INSERT INTO time_entries (incident_id, technician, started_at, on_site, after_hours) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (incident_id, technician) WHERE minutes IS NULL DO "
            "NOTHING "
            "RETURNING *",
            incident_id, technician, _ts(at), on_site, after_hours,
        )
        return _time_entry(row) if row is not None else None

    async def stop_timer(self, incident_id: int, technician: str, at: datetime) -> TimeEntryRow | None:
        """Stop the technician's running timer, counting every started minute; None when none runs."""
        row = await self._one(
            "UPDATE time_entries SET stopped_at = $3, "
            "minutes = GREATEST(0, ceil(extract(epoch FROM $3 - started_at) / 60))::integer "
            "WHERE incident_id = $1 AND technician = $2 AND minutes IS NULL RETURNING *",
            incident_id, technician, _ts(at),
        )
        return _time_entry(row) if row is not None else None

    async def add_time_entry(self, entry: TimeEntryRow) -> TimeEntryRow:
        """Record finished time (its `entry_id` is assigned)."""
        e = entry
        row = await self._one(
            "INSERT INTO time_entries (incident_id, technician, started_at, stopped_at, minutes, on_site, "
            "after_hours, override, override_reason, note) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) "
            "RETURNING *",
            e.incident_id, e.technician, _ts(e.started_at), _ts_or_none(e.stopped_at), e.minutes, e.on_site,
            e.after_hours, e.override, e.override_reason, e.note,
        )
        assert row is not None
        return _time_entry(row)

    async def override_time_entry(
        self, entry_id: int, override: Classification | None, reason: str | None
    ) -> TimeEntryRow | None:
        """Set or clear an entry's classification override; None when there is no such entry."""
        row = await self._one(
            "UPDATE time_entries SET override = $1, override_reason = $2 WHERE id = $3 RETURNING *",
            override, reason, entry_id,
        )
        return _time_entry(row) if row is not None else None

    async def time_entries(
        self, client_id: int | None = None, incident_id: int | None = None
    ) -> list[TimeEntryRow]:
        """Time entries of a client or an incident (running ones too), by start."""
        rows = await self._all(
            "SELECT t.* FROM time_entries t JOIN incidents i ON i.id = t.incident_id "
            "WHERE ($1::bigint IS NULL OR i.client_id = $1) AND ($2::bigint IS NULL OR t.incident_id = $2) "
            "ORDER BY t.started_at, t.id",
            client_id, incident_id,
        )
        return [_time_entry(row) for row in rows]

    async def add_part(self, part: Part) -> Part:
        """Record a part fitted for an incident (its `id` is assigned)."""
        row = await self._one(
            "INSERT INTO parts (incident_id, day, description, cost, price, quantity) "
            "VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            part.incident_id, part.day, part.description, part.cost, part.price, part.quantity,
        )
        assert row is not None
        return _part(row)

    async def parts(self, client_id: int | None = None, incident_id: int | None = None) -> list[Part]:
        """Parts of a client or an incident, by day."""
        rows = await self._all(
            "SELECT p.* FROM parts p JOIN incidents i ON i.id = p.incident_id "
            "WHERE ($1::bigint IS NULL OR i.client_id = $1) AND ($2::bigint IS NULL OR p.incident_id = $2) "
            "ORDER BY p.day, p.id",
            client_id, incident_id,
        )
        return [_part(row) for row in rows]

    async def client_feed_events(
        self, client: str, types: list[str], since: datetime, until: datetime
    ) -> list[FeedEvent]:
        """Feed events of these types about the client's devices, `since` to before `until`, oldest first."""
        rows = await self._all(
            "SELECT * FROM feed_events WHERE type = ANY($1::text[]) AND data ->> 'client' = $2 "
            "AND at >= $3 AND at < $4 ORDER BY id",
            types, client, _ts(since), _ts(until),
        )
        return [_feed_event(row) for row in rows]

    async def backups_verified(self, client_id: int, since: datetime, until: datetime) -> int:
        """Distinct successful backup runs of the client's devices that ended `since` to before `until`."""
        # Agents report the same last success again and again: a run is (device, job, its success time).
        # The cast to timestamptz reads the agent's ISO text whatever its offset notation.
        return await self._conn.fetchval(
            "SELECT count(*) FROM ("
            "SELECT DISTINCT o.agent_id, j.job ->> 'name', (j.job ->> 'last_success_at')::timestamptz AS "
            "done "
            "FROM observations o JOIN agents a ON a.agent_id = o.agent_id JOIN sites s ON s.id = a.site_id "
            "CROSS JOIN LATERAL json_array_elements(o.payload -> 'jobs') AS j(job) "
            "WHERE s.client_id = $1 AND o.kind = 'backup_results' AND o.collected_at >= $2 "
            "AND (j.job ->> 'last_success_at')::timestamptz >= $2 "
            "AND (j.job ->> 'last_success_at')::timestamptz < $3 "
            "UNION ALL SELECT j.agent_id, j.name, p.at FROM backup_pings p "
            "JOIN backup_push_jobs j ON j.id = p.job_id JOIN agents a ON a.agent_id = j.agent_id "
            "JOIN sites s ON s.id = a.site_id WHERE s.client_id = $1 AND p.kind = 'success' "
            "AND p.at >= $2 AND p.at < $3) AS runs",
            client_id, _ts(since), _ts(until),
        )

    # Technician accounts ---------------------------------------------------------------------------------

    async def add_technician(self, name: str, password_hash: str, at: datetime) -> TechnicianRow | None:
        """Create a technician account; None when the name is taken."""
        row = await self._one(
            "INSERT INTO technicians (name, password_hash, created_at) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO NOTHING RETURNING *",
            name, password_hash, _ts(at),
        )
        return _technician(row) if row is not None else None

    async def technician(self, name: str) -> TechnicianRow | None:
        """The technician with this name, or None."""
        row = await self._one("SELECT * FROM technicians WHERE name = $1", name)
        return _technician(row) if row is not None else None

    async def set_password(self, technician_id: int, password_hash: str, end_sessions: bool) -> None:
        """Replace a technician's password hash; `end_sessions` logs out every browser of theirs."""
        await self._conn.execute(
            "WITH ended AS (DELETE FROM web_sessions WHERE $3 AND technician_id = $2) "
            "UPDATE technicians SET password_hash = $1 WHERE id = $2",
            password_hash, technician_id, end_sessions,
        )

    async def add_web_session(
        self, token_hash: str, technician_id: int, csrf_token: str, created_at: datetime, expires_at: datetime
    ) -> None:
        """Record a logged-in browser (only its cookie's hash); expired sessions are cleared meanwhile."""
        await self._conn.execute(
            "WITH expired AS (DELETE FROM web_sessions WHERE expires_at <= $4) "
            "INSERT INTO web_sessions (token_hash, technician_id, csrf_token, created_at, expires_at) "
            "VALUES ($1, $2, $3, $4, $5)",
            token_hash, technician_id, csrf_token, _ts(created_at), _ts(expires_at),
        )

    async def web_session(self, token_hash: str, now: datetime) -> WebSessionRow | None:
        """The unexpired session whose cookie has this hash, or None."""
        row = await self._one(
            "SELECT s.technician_id, t.name, s.csrf_token, s.expires_at FROM web_sessions s "
            "JOIN technicians t ON t.id = s.technician_id WHERE s.token_hash = $1 AND s.expires_at > $2",
            token_hash, _ts(now),
        )
        if row is None:
            return None
        return WebSessionRow(row["technician_id"], row["name"], row["csrf_token"], row["expires_at"])

    async def end_web_session(self, token_hash: str) -> None:
        """Log a browser out."""
        await self._conn.execute("DELETE FROM web_sessions WHERE token_hash = $1", token_hash)

    async def enrolment_tokens(self) -> list[EnrolmentTokenRow]:
        """Every enrolment token (revoked ones too), newest first."""
        rows = await self._all(
            "SELECT t.*, c.name AS client_name, s.name AS site_name FROM enrolment_tokens t "
            "JOIN sites s ON s.id = t.site_id JOIN clients c ON c.id = s.client_id "
            "ORDER BY t.created_at DESC, t.token_hash"
        )
        return [
            EnrolmentTokenRow(row["token_hash"], row["client_name"], row["site_name"], row["created_at"],
                              row["expires_at"], row["uses_left"], row["revoked_at"])
            for row in rows
        ]

    async def last_observed(self, kinds: list[str]) -> dict[tuple[str, str], datetime]:
        """When each device last reported each of these kinds, by (agent_id, kind); absent: never."""
        # One lookup per device and kind down the (agent_id, kind, id) index, not a scan of every observation.
        rows = await self._all(
            "SELECT a.agent_id, k.kind, (SELECT o.collected_at FROM observations o WHERE o.agent_id = "
            "a.agent_id "
            "AND o.kind = k.kind ORDER BY o.id DESC LIMIT 1) AS at "
            "FROM agents a CROSS JOIN unnest($1::text[]) AS k(kind)",
            kinds,
        )
        return {(row["agent_id"], row["kind"]): row["at"] for row in rows if row["at"] is not None}


    # --- offline sweep (issue 24, pipeline slice) ---

    async def offline_candidates(
        self, device_rule: str, site_rule: str, silent_since: datetime
    ) -> list[tuple[AgentRow, bool]]:
        rows = await self._all(OFFLINE_CANDIDATES_SQL, device_rule, site_rule, silent_since)
        return [(_agent(row), row["offline_open"]) for row in rows]

def _ts(value: datetime) -> datetime:
    """A moment as the store takes it: timezone-aware (a naive one is refused, never guessed), in UTC."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()}: the store keeps timezone-aware UTC times only")
    return value.astimezone(UTC)


def _ts_or_none(value: datetime | None) -> datetime | None:
    """`_ts`, passing None through."""
    return None if value is None else _ts(value)


def _minute(value: time | None) -> time | None:
    """A time of day to the minute, as channels keep it."""
    return value.replace(second=0, microsecond=0) if value is not None else None


def _seconds(value: timedelta) -> int:
    """A duration as whole seconds, as the integer columns keep it."""
    return round(value.total_seconds())


def _technician(row: asyncpg.Record) -> TechnicianRow:
    """A technicians row as a TechnicianRow."""
    return TechnicianRow(row["id"], row["name"], row["password_hash"], row["created_at"])


def _agent(row: asyncpg.Record) -> AgentRow:
    """An agents row (joined with its site and client) as an AgentRow."""
    return AgentRow(
        agent_id=row["agent_id"],
        public_key=row["public_key"],
        hostname=row["hostname"],
        site=SiteRef(row["client_id"], row["client_name"], row["site_id"], row["site_name"]),
        enrolled_at=row["enrolled_at"],
        last_seen_at=row["last_seen_at"],
        last_seq=row["last_seq"],
        revoked=row["revoked_at"] is not None,
    )


def _observation(row: asyncpg.Record) -> ObservationRow:
    """An observations row as the interface returns it."""
    return ObservationRow(
        row["agent_id"], row["seq"], row["kind"], row["collected_at"], json.loads(row["payload"])
    )


def _feed_event(row: asyncpg.Record) -> FeedEvent:
    """A feed_events row as a FeedEvent."""
    return FeedEvent(row["id"], row["at"], row["type"], json.loads(row["data"]))


def _push_job(row: asyncpg.Record) -> PushJobRow:
    """A backup_push_jobs row as a PushJobRow."""
    return PushJobRow(
        job_id=row["id"],
        agent_id=row["agent_id"],
        name=row["name"],
        schedule=row["schedule"],
        timezone=row["timezone"],
        grace_seconds=row["grace_seconds"],
        created_at=row["created_at"],
    )


def _push_states(rows: Sequence[asyncpg.Record]) -> list[PushJobState]:
    """The rows of `_PUSH_STATES` (a job's rows together, each tag's pings newest first) as job states."""
    tagged: dict[int, tuple[PushJobRow, dict[str, list[asyncpg.Record]]]] = {}
    for row in rows:
        _, pings = tagged.setdefault(row["id"], (_push_job(row), {}))
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


def _channel(row: asyncpg.Record) -> ChannelRow:
    """A channels row as a ChannelRow."""
    return ChannelRow(
        channel_id=row["id"], name=row["name"], url=row["url"], min_severity=row["min_severity"],
        clients=tuple(json.loads(row["clients"])), kinds=tuple(json.loads(row["kinds"])),
        quiet_start=row["quiet_start"], quiet_end=row["quiet_end"],
        timezone=row["timezone"], digest_at=row["digest_at"],
        group_wait=timedelta(seconds=row["group_wait_seconds"]),
        group_interval=timedelta(seconds=row["group_interval_seconds"]),
        repeat_interval=timedelta(seconds=row["repeat_interval_seconds"]),
        last_sent_at=row["last_sent_at"], last_digest_on=row["last_digest_on"],
        failures=row["failures"], broken_at=row["broken_at"], broken_reason=row["broken_reason"],
    )


def _silence(row: asyncpg.Record) -> Silence:
    """A silences row as a Silence."""
    return Silence(
        silence_id=row["id"], matchers=Matchers(**json.loads(row["matchers"])), starts_at=row["starts_at"],
        ends_at=row["ends_at"], cron=row["cron"],
        duration=timedelta(seconds=row["duration_seconds"]) if row["duration_seconds"] is not None else None,
        timezone=row["timezone"], comment=row["comment"], created_by=row["created_by"],
        expired_at=row["expired_at"],
    )


def _alert(row: asyncpg.Record) -> AlertRow:
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
        opened_at=row["opened_at"],
        last_seen_at=row["last_seen_at"],
        resolved_at=row["resolved_at"],
        occurrences=row["occurrences"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=row["acknowledged_by"],
        snoozed_until=row["snoozed_until"],
        good_streak=row["good_streak"],
        good_since=row["good_since"],
        flapping=row["flapping"],
    )


# Billing rows -------------------------------------------------------------------------------------------


def _contract(row: asyncpg.Record) -> ContractRow:
    """A contracts row as a ContractRow."""
    return ContractRow(
        row["id"],
        Contract(
            client=row["client_id"],
            effective_from=row["effective_from"],
            effective_to=row["effective_to"],
            start=row["start"],
            term_months=row["term_months"],
            workstation_rate=row["workstation_rate"],
            server_rate=row["server_rate"],
            covers_remote=row["covers_remote"],
            covers_onsite=row["covers_onsite"],
            covers_after_hours=row["covers_after_hours"],
            included_hours=row["included_hours"],
            onboarding_workstation_months=row["onboarding_workstation_months"],
            onboarding_server_months=row["onboarding_server_months"],
        ),
    )


def _rates(row: asyncpg.Record) -> RatesRow:
    """A breakfix_rates row as a RatesRow."""
    return RatesRow(
        row["id"],
        row["client_id"],
        BreakFixRates(
            effective_from=row["effective_from"],
            effective_to=row["effective_to"],
            hourly_rate=row["hourly_rate"],
            minimum_minutes=row["minimum_minutes"],
            increment_minutes=row["increment_minutes"],
            after_hours_multiplier=row["after_hours_multiplier"],
            onsite_minimum_minutes=row["onsite_minimum_minutes"],
        ),
    )


def _incident(row: asyncpg.Record) -> IncidentRow:
    """An incidents row (with its client's name and linked alert ids) as an IncidentRow."""
    return IncidentRow(
        incident_id=row["id"],
        client_id=row["client_id"],
        client=row["client_name"],
        title=row["title"],
        category=row["category"],
        emergency=row["emergency"],
        status=row["status"],
        alert_id=row["alert_id"],
        opened_at=row["opened_at"],
        opened_by=row["opened_by"],
        closed_at=row["closed_at"],
        closed_by=row["closed_by"],
        resolution=row["resolution"],
        alert_ids=tuple(row["alert_ids"]),
    )


def _note(row: asyncpg.Record) -> NoteRow:
    """An incident_notes row as a NoteRow."""
    return NoteRow(row["id"], row["incident_id"], row["at"], row["author"], row["text"])


def _time_entry(row: asyncpg.Record) -> TimeEntryRow:
    """A time_entries row as a TimeEntryRow."""
    return TimeEntryRow(
        entry_id=row["id"],
        incident_id=row["incident_id"],
        technician=row["technician"],
        started_at=row["started_at"],
        stopped_at=row["stopped_at"],
        minutes=row["minutes"],
        on_site=row["on_site"],
        after_hours=row["after_hours"],
        override=row["override"],
        override_reason=row["override_reason"],
        note=row["note"],
    )


def _part(row: asyncpg.Record) -> Part:
    """A parts row as a Part."""
    return Part(
        id=row["id"],
        incident_id=row["incident_id"],
        day=row["day"],
        description=row["description"],
        cost=row["cost"],
        price=row["price"],
        quantity=row["quantity"],
    )
