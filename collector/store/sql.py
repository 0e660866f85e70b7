"""The store's operations written once in portable SQL; the SQLite and PostgreSQL backends subclass `SqlTx`.

Queries use named parameters (`:name`); `compile_sql` rewrites them for the driver (`?` in order for
sqlite3, `$n` for asyncpg) and caches the result. Two spellings cover what the databases say
differently about parameters:

* `:name::type` casts the parameter on PostgreSQL (which needs a type for a bare NULL); SQLite drops the cast.
* `IN (:name::type[])` tests membership of a list: `= ANY($n::type[])` on PostgreSQL,
  `IN (SELECT value FROM json_each(?))` on SQLite (the codec passes the list as a JSON array).

A backend supplies the four primitives (`_fetch`, `_fetchrow`, `_execute`, `_executemany`), its codec,
and the operations its database really does differently: ingest (`record_envelope`, `touch_agent`),
push-job states, counting verified backups, and the SQL fragments named in the class attributes.
The operations' contracts are documented once, on the `Tx` protocol.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any, ClassVar, Literal

from collector.alerts.silence import Matchers, Silence
from collector.billing.model import BreakFixRates, Charge, Classification, Contract, DeviceClass, Part
from collector.rules import KnownDisk
from collector.store import (
    AgentRow,
    AlertOwner,
    AlertRow,
    AlertState,
    ChannelRow,
    ClientDetails,
    ClientHours,
    ClientRow,
    Contact,
    ContactRow,
    EnrolmentRefused,
    EnvelopeRow,
    EpochRow,
    EscrowedKeyRow,
    EscrowPolicy,
    FeedEvent,
    NetworkDeviceRow,
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
from collector.store.account_rows import (
    AuditEntry,
    EnrolmentTokenRow,
    Role,
    SessionListing,
    TechnicianRow,
    WebSessionRow,
)
from collector.store.billing_rows import (
    ClientTax,
    ContractRow,
    DeviceBillingRow,
    IncidentRow,
    IncidentStatus,
    IssuedInvoiceRow,
    NoteRow,
    RatesRow,
    TimeEntryRow,
)
from collector.store.codec import Codec, from_json, iso_text, seconds, to_json
from collector.store.migrate import Migration, MigrationTx
from collector.store.report_sql import ReportSql
from collector.store.unreadable import DECODE_ERRORS, Unreadable, observation_name, signal_payload
from shared import device_class as classes
from shared.disk_health import serial_key
from shared.reachability import Target

Dialect = Literal["sqlite", "postgresql"]
# A row as either driver returns it: read by column name.
Row = Any

# Pings kept per push job (besides its two newest good ones): enough to look back at, bounded when a
# script calls its URL far more often than it runs backups.
PINGS_KEPT = 100

_TOKENS = re.compile(
    r"'[^']*'"  # a string literal: left alone
    r"|IN \(:(?P<list>[A-Za-z_]\w*)::(?P<list_type>\w+)\[\]\)"
    r"|(?<!:):(?P<name>[A-Za-z_]\w*)(?P<cast>::\w+(?:\[\])?)?"
)


@lru_cache(maxsize=1024)
def compile_sql(sql: str, dialect: Dialect) -> tuple[str, tuple[str, ...]]:
    """The query as the driver takes it, and the parameter names in the order the driver wants values."""
    order: list[str] = []
    numbers: dict[str, int] = {}

    def placeholder(name: str) -> str:
        if dialect == "sqlite":
            order.append(name)
            return "?"
        if name not in numbers:
            numbers[name] = len(numbers) + 1
            order.append(name)
        return f"${numbers[name]}"

    def replace(match: re.Match[str]) -> str:
        if match["list"] is not None:
            mark = placeholder(match["list"])
            if dialect == "sqlite":
                return f"IN (SELECT value FROM json_each({mark}))"
            return f"= ANY({mark}::{match['list_type']}[])"
        if match["name"] is None:
            return match[0]
        mark = placeholder(match["name"])
        return mark if dialect == "sqlite" else mark + (match["cast"] or "")

    return _TOKENS.sub(replace, sql), tuple(order)


_AGENT_COLUMNS = "SELECT a.*, s.name AS site_name, c.id AS client_id, c.name AS client_name"
_AGENTS_FROM = " FROM agents a JOIN sites s ON s.id = a.site_id JOIN clients c ON c.id = s.client_id"
_AGENTS = _AGENT_COLUMNS + _AGENTS_FROM
# Incidents with the alerts they cover, as comma-separated ids (callers add WHERE ... GROUP BY i.id, c.name).
_INCIDENTS = """
    SELECT i.*, c.name AS client_name, {alert_ids} AS alert_ids
    FROM incidents i JOIN clients c ON c.id = i.client_id LEFT JOIN incident_alerts l ON l.incident_id = i.id
"""


class SqlStore:
    """What both SQL stores share: transactions on the backend's writing connection, and feed listeners."""

    tx_type: ClassVar[type[SqlTx]]
    migration_tx_type: ClassVar[type[SqlMigrationTx]]

    def __init__(self) -> None:
        self._feed_listeners: list[Callable[[], None]] = []
        self.unreadable = Unreadable()

    def _writing(self) -> AbstractAsyncContextManager[Any]:
        """The backend's connection for one write transaction: committed when the block ends, else rolled back."""
        raise NotImplementedError

    def on_feed_events(self, callback: Callable[[], None]) -> None:
        self._feed_listeners.append(callback)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self._writing() as conn:
            tx = self.tx_type(conn, self.unreadable)
            yield tx
        # Committed: wake this process's listeners when the transaction appended feed events.
        if tx.feed_appended:
            for callback in self._feed_listeners:
                callback()

    @asynccontextmanager
    async def migration_tx(self) -> AsyncIterator[MigrationTx]:
        """A transaction for the migration runner, exclusive across every collector on the database."""
        async with self._writing() as conn:
            tx = self.migration_tx_type(conn, self.unreadable)
            await tx.exclude_others()
            yield tx


class SqlTx(ReportSql):
    """The store's operations inside one transaction, on any SQL backend."""

    dialect: ClassVar[Dialect]
    codec: ClassVar[Codec]
    # An aggregate of `l.alert_id` as comma-separated text.
    ALERT_IDS: ClassVar[str]
    # Insert a feed event (:at, :type, :data) returning its id and at.
    APPEND_FEED: ClassVar[str]

    def __init__(self, conn: Any, unreadable: Unreadable) -> None:
        self._conn = conn
        self.unreadable = unreadable
        # Read by the store after COMMIT, to wake this process's feed.
        self.feed_appended = False

    # Driver primitives -----------------------------------------------------------------------------------

    async def _fetch(self, sql: str, args: Sequence[Any]) -> list[Row]:
        """Every row of a compiled query."""
        raise NotImplementedError

    async def _fetchrow(self, sql: str, args: Sequence[Any]) -> Row | None:
        """The first row of a compiled query, or None."""
        raise NotImplementedError

    async def _execute(self, sql: str, args: Sequence[Any]) -> int:
        """Run a compiled statement; the number of rows it changed."""
        raise NotImplementedError

    async def _executemany(self, sql: str, args: Sequence[Sequence[Any]]) -> None:
        """Run a compiled statement once per set of arguments."""
        raise NotImplementedError

    # Named-parameter helpers -----------------------------------------------------------------------------

    def _bind(self, sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
        """The compiled query and its arguments, encoded by the codec."""
        text, names = compile_sql(sql, self.dialect)
        encode = self.codec.param
        return text, [encode(params[name]) for name in names]

    async def _rows(self, sql: str, /, **params: Any) -> list[Row]:
        """Every row of a query."""
        return await self._fetch(*self._bind(sql, params))

    async def _row(self, sql: str, /, **params: Any) -> Row | None:
        """The first row of a query, or None."""
        return await self._fetchrow(*self._bind(sql, params))

    async def _run(self, sql: str, /, **params: Any) -> int:
        """Run a statement; the number of rows it changed."""
        return await self._execute(*self._bind(sql, params))

    async def _run_many(self, sql: str, rows: Iterable[dict[str, Any]]) -> None:
        """Run a statement once per set of parameters."""
        text, names = compile_sql(sql, self.dialect)
        encode = self.codec.param
        await self._executemany(text, [[encode(row[name]) for name in names] for row in rows])

    async def _lock_alert(self, alert_id: int) -> None:
        """Hold the alert's row until the transaction ends (a no-op where transactions are serial)."""

    # Clients, sites, enrolment, agents -------------------------------------------------------------------

    async def site(self, client: str, site: str) -> SiteRef:
        find = (
            "SELECT c.id AS client_id, s.id AS site_id FROM clients c JOIN sites s ON s.client_id = c.id "
            "WHERE c.name = :client AND s.name = :site"
        )
        row = await self._row(find, client=client, site=site)
        if row is None:
            # A concurrent creator makes ON CONFLICT wait for its commit; the next statement sees its rows.
            await self._run("INSERT INTO clients (name) VALUES (:client) ON CONFLICT (name) DO NOTHING", client=client)
            await self._run(
                "INSERT INTO sites (client_id, name) SELECT id, :site FROM clients WHERE name = :client "
                "ON CONFLICT (client_id, name) DO NOTHING",
                client=client, site=site,
            )
            row = await self._row(find, client=client, site=site)
        assert row is not None  # both rows were inserted or found above
        return SiteRef(row["client_id"], client, row["site_id"], site)

    async def clients(self, archived: bool = False) -> list[ClientRow]:
        return await self._clients("" if archived else "WHERE c.archived_at IS NULL")

    async def client(self, client_id: int) -> ClientRow | None:
        found = await self._clients("WHERE c.id = :client", client=client_id)
        return found[0] if found else None

    async def _clients(self, where: str, **params: Any) -> list[ClientRow]:
        """The clients a WHERE clause on `clients c` picks, with their sites, device counts and contacts."""
        rows = await self._rows(
            "SELECT c.*, s.name AS site_name, s.archived_at AS site_archived, count(a.agent_id) AS devices "
            "FROM clients c LEFT JOIN sites s ON s.client_id = c.id "
            f"LEFT JOIN agents a ON a.site_id = s.id AND a.revoked_at IS NULL {where} "
            "GROUP BY c.id, s.id ORDER BY c.name, s.name", **params,
        )
        contacts: dict[int, list[ContactRow]] = {}
        for row in await self._rows(
            f"SELECT n.* FROM client_contacts n JOIN clients c ON c.id = n.client_id {where} ORDER BY n.name",
            **params,
        ):
            contacts.setdefault(row["client_id"], []).append(ContactRow(
                row["id"], row["name"], row["email"], row["phone"], row["role"], bool(row["billing"])))
        clients: dict[int, ClientRow] = {}
        for row in rows:
            client = clients.get(row["id"])
            if client is None:
                client = clients[row["id"]] = ClientRow(
                    row["id"], row["name"], hours=_hours(row, self.codec),
                    details=ClientDetails(row["billing_email"], row["billing_address"], row["notes"]),
                    contacts=contacts.get(row["id"], []), archived_at=self.codec.moment(row["archived_at"]),
                    demo=bool(row["demo"]),
                )
            if row["site_name"] is None:
                continue
            if row["site_archived"] is None:
                client.sites.append((row["site_name"], row["devices"]))
            else:
                client.archived_sites.append(row["site_name"])
        return list(clients.values())

    async def add_client(self, name: str, demo: bool) -> int | None:
        row = await self._row("INSERT INTO clients (name, demo) VALUES (:name, :demo) ON CONFLICT (name) DO NOTHING "
                              "RETURNING id", name=name, demo=demo)
        return row["id"] if row is not None else None

    async def rename_client(self, client_id: int, name: str) -> None:
        was = await self._row("SELECT name FROM clients WHERE id = :client", client=client_id)
        await self._run("UPDATE clients SET name = :name WHERE id = :client", name=name, client=client_id)
        if was is None:
            return
        # Channels and silences name clients: they follow the rename, or they would quietly stop matching.
        for row in await self._rows("SELECT id, clients FROM channels"):
            names = from_json(row["clients"])
            if was["name"] in names:
                await self._run("UPDATE channels SET clients = :clients WHERE id = :channel", channel=row["id"],
                                clients=to_json([name if n == was["name"] else n for n in names]))
        for row in await self._rows("SELECT id, matchers FROM silences"):
            matchers = from_json(row["matchers"])
            if matchers.get("client") == was["name"]:
                await self._run("UPDATE silences SET matchers = :matchers WHERE id = :silence", silence=row["id"],
                                matchers=to_json({**matchers, "client": name}))

    async def set_client_details(self, client_id: int, details: ClientDetails) -> None:
        await self._run(
            "UPDATE clients SET billing_email = :email, billing_address = :address, notes = :notes WHERE id = :client",
            email=details.billing_email, address=details.billing_address, notes=details.notes, client=client_id,
        )

    async def set_client_flags(self, client_id: int, archived_at: datetime | None, demo: bool) -> None:
        await self._run("UPDATE clients SET archived_at = :at, demo = :demo WHERE id = :client",
                        at=archived_at, demo=demo, client=client_id)

    async def site_id(self, client_id: int, name: str) -> int | None:
        row = await self._row("SELECT id FROM sites WHERE client_id = :client AND name = :name",
                              client=client_id, name=name)
        return row["id"] if row is not None else None

    async def add_site(self, client_id: int, name: str) -> int | None:
        row = await self._row("INSERT INTO sites (client_id, name) VALUES (:client, :name) "
                              "ON CONFLICT (client_id, name) DO NOTHING RETURNING id", client=client_id, name=name)
        return row["id"] if row is not None else None

    async def rename_site(self, site_id: int, name: str) -> None:
        await self._run("UPDATE sites SET name = :name WHERE id = :site", name=name, site=site_id)

    async def set_site_archived(self, site_id: int, archived_at: datetime | None) -> None:
        await self._run("UPDATE sites SET archived_at = :at WHERE id = :site", at=archived_at, site=site_id)

    async def _take_billing_mark(self, client_id: int, contact: ContactRow) -> None:
        """Clear the client's billing mark when `contact` is to carry it (a unique index allows one)."""
        if contact.billing:
            await self._run("UPDATE client_contacts SET billing = :no WHERE client_id = :client AND billing",
                            no=False, client=client_id)

    async def add_contact(self, client_id: int, contact: ContactRow) -> int | None:
        await self._take_billing_mark(client_id, contact)
        row = await self._row(
            "INSERT INTO client_contacts (client_id, name, email, phone, role, billing) "
            "VALUES (:client, :name, :email, :phone, :role, :billing) ON CONFLICT (client_id, name) DO NOTHING "
            "RETURNING id", client=client_id, name=contact.name, email=contact.email, phone=contact.phone,
            role=contact.role, billing=contact.billing,
        )
        return row["id"] if row is not None else None

    async def update_contact(self, client_id: int, contact: ContactRow) -> None:
        await self._take_billing_mark(client_id, contact)
        await self._run(
            "UPDATE client_contacts SET name = :name, email = :email, phone = :phone, role = :role, "
            "billing = :billing WHERE client_id = :client AND id = :contact", client=client_id,
            contact=contact.contact_id, name=contact.name, email=contact.email, phone=contact.phone,
            role=contact.role, billing=contact.billing,
        )

    async def remove_contact(self, client_id: int, contact_id: int) -> bool:
        changed = await self._run("DELETE FROM client_contacts WHERE client_id = :client AND id = :contact",
                                  client=client_id, contact=contact_id)
        return changed == 1

    async def add_enrolment_token(
        self, token_hash: str, site: SiteRef, created_at: datetime, expires_at: datetime | None, uses: int | None
    ) -> None:
        await self._run(
            "INSERT INTO enrolment_tokens (token_hash, site_id, created_at, expires_at, uses_left) "
            "VALUES (:token, :site, :created, :expires, :uses)",
            token=token_hash, site=site.site_id, created=created_at, expires=expires_at, uses=uses,
        )

    async def consume_enrolment_token(self, token_hash: str, now: datetime) -> SiteRef:
        # One conditional UPDATE decides, so two enrolments racing for the last use cannot both win.
        used = await self._row(
            "UPDATE enrolment_tokens SET uses_left = uses_left - 1 "
            "WHERE token_hash = :token AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > :now) "
            "AND (uses_left IS NULL OR uses_left > 0) RETURNING site_id",
            token=token_hash, now=now,
        )
        if used is not None:
            return await self._site_ref(used["site_id"])
        token = await self._row("SELECT * FROM enrolment_tokens WHERE token_hash = :token", token=token_hash)
        if token is None:
            raise EnrolmentRefused("unknown enrolment token")
        if token["revoked_at"] is not None:
            raise EnrolmentRefused("enrolment token revoked")
        if token["uses_left"] == 0:
            raise EnrolmentRefused("enrolment token used up")
        expired = self.codec.moment(token["expires_at"])
        raise EnrolmentRefused(f"enrolment token expired at {expired.isoformat() if expired else '?'}")

    async def revoke_enrolment_token(self, token_hash: str, at: datetime) -> bool:
        changed = await self._run(
            "UPDATE enrolment_tokens SET revoked_at = :at WHERE token_hash = :token AND revoked_at IS NULL",
            at=at, token=token_hash,
        )
        return changed == 1

    async def _site_ref(self, site_id: int) -> SiteRef:
        """The site with this id (it exists: foreign keys point at it)."""
        row = await self._row(
            "SELECT c.id AS client_id, c.name AS client_name, s.name AS site_name "
            "FROM sites s JOIN clients c ON c.id = s.client_id WHERE s.id = :site",
            site=site_id,
        )
        assert row is not None
        return SiteRef(row["client_id"], row["client_name"], site_id, row["site_name"])

    async def add_agent(self, agent: AgentRow) -> None:
        await self._run(
            "INSERT INTO agents (agent_id, public_key, hostname, site_id, enrolled_at, last_seen_at, "
            "last_seq, revoked_at) VALUES (:agent, :key, :hostname, :site, :enrolled, :seen, :seq, :revoked)",
            agent=agent.agent_id, key=agent.public_key, hostname=agent.hostname, site=agent.site.site_id,
            enrolled=agent.enrolled_at, seen=agent.last_seen_at, seq=agent.last_seq,
            # AgentRow carries no revocation time; an agent recorded as revoked was revoked at enrolment.
            revoked=agent.enrolled_at if agent.revoked else None,
        )

    async def revoke_agent(self, agent_id: str, at: datetime) -> bool:
        changed = await self._run(
            "UPDATE agents SET revoked_at = :at WHERE agent_id = :agent AND revoked_at IS NULL", at=at, agent=agent_id
        )
        return changed == 1

    async def record_envelopes(self, envelopes: list[EnvelopeRow]) -> list[bool]:
        return [await self.record_envelope(e.agent_id, e.seq, e.boot_id, e.sent_at, e.received_at, e.rows,
                                           epoch=e.epoch) for e in envelopes]

    async def touch_agents(self, contacts: list[Contact]) -> list[datetime | None]:
        return [await self.touch_agent(c.agent_id, c.seen_at, c.seq, c.hostname) for c in contacts]

    async def agent(self, agent_id: str) -> AgentRow | None:
        row = await self._row(_AGENTS + " WHERE a.agent_id = :agent", agent=agent_id)
        return _agent(row, self.codec) if row is not None else None

    async def reporting_agents(self, agent_ids: list[str]) -> dict[str, tuple[AgentRow, bool]]:
        rows = await self._rows(
            _AGENT_COLUMNS + ", EXISTS (SELECT 1 FROM alerts l WHERE l.agent_id = a.agent_id AND l.state = 'open') "
            "AS alerted" + _AGENTS_FROM + " WHERE a.agent_id IN (:agents::text[])", agents=agent_ids,
        )
        return {row["agent_id"]: (_agent(row, self.codec), bool(row["alerted"])) for row in rows}

    async def agents(self) -> list[AgentRow]:
        rows = await self._rows(_AGENTS + " ORDER BY c.name, s.name, a.hostname, a.agent_id")
        return [_agent(row, self.codec) for row in rows]

    async def set_reported_class(self, agent_id: str, device_class: classes.DeviceClass) -> None:
        await self._run(
            "UPDATE agents SET device_class = :cls WHERE agent_id = :agent "
            "AND (device_class IS NULL OR device_class <> :cls)", agent=agent_id, cls=device_class,
        )

    async def set_class_override(self, agent_id: str, device_class: classes.DeviceClass | None) -> bool:
        changed = await self._run("UPDATE agents SET device_class_override = :cls WHERE agent_id = :agent",
                                  agent=agent_id, cls=device_class)
        return changed == 1

    async def client_hours(self) -> dict[int, ClientHours]:
        rows = await self._rows("SELECT * FROM clients")
        return {row["id"]: _hours(row, self.codec) for row in rows}

    async def client_zone(self, client_id: int) -> str | None:
        row = await self._row("SELECT timezone FROM clients WHERE id = :client", client=client_id)
        return row["timezone"] if row else None

    async def set_client_hours(self, client_id: int, hours: ClientHours) -> None:
        await self._run(
            "UPDATE clients SET business_days = :days, business_start = :start, business_end = :end, "
            "timezone = :zone WHERE id = :client",
            client=client_id, days=hours.days, start=hours.start, end=hours.end, zone=hours.timezone,
        )

    async def observations(self, agent_id: str, kind: str, limit: int) -> list[ObservationRow]:
        rows = await self._rows(
            "SELECT * FROM observations WHERE agent_id = :agent AND kind = :kind ORDER BY id DESC LIMIT :limit",
            agent=agent_id, kind=kind, limit=limit,
        )
        return [observation for _, observation in self._observations(rows)]

    async def note_skew(self, agent_id: str, at: datetime, offset_seconds: int) -> bool:
        before = await self._row("SELECT last_skew_at, last_seen_at FROM agents WHERE agent_id = :agent",
                                 agent=agent_id)
        if before is None:
            return False
        last_skew, last_seen = self.codec.moment(before["last_skew_at"]), self.codec.moment(before["last_seen_at"])
        await self._run(
            "UPDATE agents SET skew_refusals = skew_refusals + 1, last_skew_at = :at, last_skew_seconds = :offset "
            "WHERE agent_id = :agent", agent=agent_id, at=at, offset=offset_seconds,
        )
        return last_skew is None or (last_seen is not None and last_seen > last_skew)

    async def note_epoch(self, agent_id: str, epoch: str, seq: int, at: datetime) -> bool:
        return await self._run(
            "INSERT INTO agent_epochs (agent_id, epoch, first_seq, first_at) VALUES (:agent, :epoch, :seq, :at) "
            "ON CONFLICT (agent_id, epoch) DO NOTHING", agent=agent_id, epoch=epoch, seq=seq, at=at,
        ) == 1

    async def find_site(self, client: str, site: str) -> SiteRef | None:
        row = await self._row(
            "SELECT c.id AS client_id, s.id AS site_id FROM clients c JOIN sites s ON s.client_id = c.id "
            "WHERE c.name = :client AND s.name = :site", client=client, site=site,
        )
        return SiteRef(row["client_id"], client, row["site_id"], site) if row is not None else None

    async def network_devices(self, site_id: int) -> list[NetworkDeviceRow]:
        rows = await self._rows("SELECT * FROM network_devices WHERE site_id = :site ORDER BY name", site=site_id)
        return [_network_device(row) for row in rows]

    async def add_network_device(self, site_id: int, target: Target, at: datetime) -> NetworkDeviceRow | None:
        row = await self._row(
            "INSERT INTO network_devices (site_id, name, address, kind, probe, port, url, expect_status, tls_days, "
            "hours, created_at) VALUES (:site, :name, :address, :kind, :probe, :port, :url, :expect_status, "
            ":tls_days, :hours, :at) ON CONFLICT (site_id, name) DO NOTHING RETURNING *",
            site=site_id, at=at, **target.model_dump(),
        )
        return _network_device(row) if row is not None else None

    async def remove_network_device(self, site_id: int, name: str) -> bool:
        return await self._run("DELETE FROM network_devices WHERE site_id = :site AND name = :name",
                               site=site_id, name=name) == 1

    async def dismissed_candidates(self, site_id: int) -> set[str]:
        rows = await self._rows("SELECT mac FROM dismissed_candidates WHERE site_id = :site", site=site_id)
        return {row["mac"] for row in rows}

    async def dismiss_candidate(self, site_id: int, mac: str, address: str, at: datetime) -> bool:
        return await self._run(
            "INSERT INTO dismissed_candidates (site_id, mac, address, dismissed_at) VALUES (:site, :mac, :address, "
            ":at) ON CONFLICT (site_id, mac) DO NOTHING", site=site_id, mac=mac, address=address, at=at) == 1

    async def config_version(self, site_id: int, bump: bool = False) -> int:
        if bump:
            row = await self._row("UPDATE sites SET config_version = config_version + 1 WHERE id = :site "
                                  "RETURNING config_version", site=site_id)
        else:
            row = await self._row("SELECT config_version FROM sites WHERE id = :site", site=site_id)
        return int(row["config_version"]) if row is not None else 0

    async def site_ids(self, client_id: int) -> list[int]:
        rows = await self._rows("SELECT id FROM sites WHERE client_id = :client ORDER BY id", client=client_id)
        return [int(row["id"]) for row in rows]

    def _moment(self, value: Any) -> datetime:
        """A NOT NULL timestamp column's value."""
        moment = self.codec.moment(value)
        assert moment is not None  # the column is NOT NULL
        return moment

    def _escrow_policy(self, row: Any) -> EscrowPolicy:
        return EscrowPolicy(bool(row["enabled"]), int(row["round"]), self._moment(row["changed_at"]),
                            row["changed_by"])

    async def escrow_policy(self, client_id: int) -> EscrowPolicy | None:
        row = await self._row("SELECT * FROM escrow_policy WHERE client_id = :client", client=client_id)
        return self._escrow_policy(row) if row is not None else None

    async def set_escrow_policy(self, client_id: int, enabled: bool, at: datetime, by: str,
                                next_round: bool) -> EscrowPolicy:
        row = await self._row(
            "INSERT INTO escrow_policy (client_id, enabled, round, changed_at, changed_by) "
            "VALUES (:client, :enabled, :first, :at, :by) ON CONFLICT (client_id) DO UPDATE SET "
            "enabled = :enabled, round = escrow_policy.round + :step, changed_at = :at, changed_by = :by "
            "RETURNING *", client=client_id, enabled=enabled, first=int(next_round), step=int(next_round), at=at,
            by=by)
        assert row is not None  # an upsert returns its row
        return self._escrow_policy(row)

    async def next_escrow_round(self, client_id: int) -> None:
        await self._run("UPDATE escrow_policy SET round = round + 1 WHERE client_id = :client", client=client_id)

    async def save_escrowed_keys(self, agent_id: str, keys: Sequence[tuple[str, str, str]], at: datetime) -> None:
        await self._run_many(
            "INSERT INTO escrowed_keys (agent_id, volume, protector_id, sealed, escrowed_at) "
            "VALUES (:agent, :volume, :protector, :sealed, :at) ON CONFLICT (agent_id, volume, protector_id) "
            "DO UPDATE SET sealed = :sealed, escrowed_at = :at",
            [{"agent": agent_id, "volume": volume, "protector": protector, "sealed": sealed, "at": at}
             for volume, protector, sealed in keys],
        )

    async def escrowed_keys(self, agent_id: str) -> list[EscrowedKeyRow]:
        rows = await self._rows("SELECT * FROM escrowed_keys WHERE agent_id = :agent ORDER BY volume, escrowed_at",
                                agent=agent_id)
        return [EscrowedKeyRow(row["agent_id"], row["volume"], row["protector_id"], row["sealed"],
                               self._moment(row["escrowed_at"])) for row in rows]

    async def purge_escrowed_keys(self, client_id: int) -> int:
        rows = await self._rows(
            "DELETE FROM escrowed_keys WHERE agent_id IN (SELECT a.agent_id FROM agents a JOIN sites s "
            "ON s.id = a.site_id WHERE s.client_id = :client) RETURNING agent_id", client=client_id)
        return len(rows)

    async def known_disks(self, agent_id: str) -> list[KnownDisk]:
        rows = await self._rows("SELECT * FROM known_disks WHERE agent_id = :agent ORDER BY last_seen_at, serial_key",
                                agent=agent_id)
        return [KnownDisk(row["serial"], row["model"], row["last_path"], self.codec.moment(row["last_seen_at"]),
                          bool(row["missing"]), row["replaced_by"]) for row in rows]

    async def save_known_disks(self, agent_id: str, disks: Sequence[KnownDisk]) -> None:
        await self._run("DELETE FROM known_disks WHERE agent_id = :agent", agent=agent_id)
        await self._run_many(
            "INSERT INTO known_disks (agent_id, serial_key, serial, model, last_path, last_seen_at, missing, "
            "replaced_by) VALUES (:agent, :key, :serial, :model, :path, :seen, :missing, :replaced_by)",
            [{"agent": agent_id, "key": serial_key(d.serial), "serial": d.serial, "model": d.model,
              "path": d.device, "seen": d.seen_at, "missing": d.missing, "replaced_by": d.replaced_by}
             for d in disks],
        )

    async def agent_epochs(self, agent_id: str) -> list[EpochRow]:
        rows = await self._rows(
            "SELECT epoch, first_seq, first_at FROM agent_epochs WHERE agent_id = :agent ORDER BY first_at DESC",
            agent=agent_id,
        )
        return [EpochRow(row["epoch"], row["first_seq"], self.codec.moment(row["first_at"])) for row in rows]

    async def site_observations(
        self, site_id: int, kind: str, since: datetime, until: datetime, per_device: int, limit: int
    ) -> list[tuple[str, ObservationRow]]:
        # Each device's newest `per_device` first: one device that floods its site cannot push the others out.
        rows = await self._rows(
            "SELECT * FROM (SELECT o.*, a.hostname, "
            "ROW_NUMBER() OVER (PARTITION BY o.agent_id ORDER BY o.id DESC) AS nth "
            "FROM observations o JOIN agents a ON a.agent_id = o.agent_id "
            "WHERE a.site_id = :site AND o.kind = :kind AND o.collected_at >= :since AND o.collected_at <= :until"
            ") recent WHERE nth <= :per_device ORDER BY id DESC LIMIT :limit",
            site=site_id, kind=kind, since=since, until=until, per_device=per_device, limit=limit,
        )
        return [(row["hostname"], observation) for row, observation in self._observations(rows)]

    def _observations(self, rows: list[Row]) -> list[tuple[Row, ObservationRow]]:
        """Each observations row with its decoded form; a row that cannot be decoded is noted and left out."""
        found = []
        for row in rows:
            try:
                found.append((row, _observation(row, self.codec)))
            except DECODE_ERRORS as exc:
                self.unreadable.note(observation_name(row["id"]), row["agent_id"], exc)
        return found

    async def last_observed(self, kinds: list[str]) -> dict[tuple[str, str], datetime]:
        found: dict[tuple[str, str], datetime] = {}
        for kind in kinds:
            # One lookup per device down the (agent_id, kind, id) index, not a scan of every observation.
            rows = await self._rows(
                "SELECT a.agent_id, o.id, o.collected_at FROM agents a JOIN observations o ON o.id = "
                "(SELECT n.id FROM observations n WHERE n.agent_id = a.agent_id AND n.kind = :kind "
                "ORDER BY n.id DESC LIMIT 1)",
                kind=kind,
            )
            for row in rows:
                try:
                    found[row["agent_id"], kind] = self.codec.moment(row["collected_at"])
                except DECODE_ERRORS as exc:
                    self.unreadable.note(observation_name(row["id"]), row["agent_id"], exc)
        return found

    async def recent_observed(self, kind: str, per_agent: int, seen_since: datetime) -> dict[str, list[datetime]]:
        # Per device seen since then, the id of its per_agent-th newest observation of the kind (one lookup
        # down the (agent_id, kind, id) index), then the observations from there: never a scan of the kind.
        rows = await self._rows(
            "WITH floor AS (SELECT a.agent_id, COALESCE((SELECT i.id FROM observations i "
            "  WHERE i.agent_id = a.agent_id AND i.kind = :kind ORDER BY i.id DESC LIMIT 1 OFFSET :skip), 0) "
            "  AS first_id FROM agents a WHERE a.revoked_at IS NULL AND a.last_seen_at >= :since) "
            "SELECT o.id, o.agent_id, o.collected_at FROM floor f JOIN observations o ON o.agent_id = f.agent_id "
            "AND o.kind = :kind AND o.id >= f.first_id ORDER BY o.agent_id, o.id DESC",
            kind=kind, skip=per_agent - 1, since=seen_since,
        )
        found: dict[str, list[datetime]] = {}
        for row in rows:
            try:
                found.setdefault(row["agent_id"], []).append(self.codec.moment(row["collected_at"]))
            except DECODE_ERRORS as exc:
                self.unreadable.note(observation_name(row["id"]), row["agent_id"], exc)
        return found

    async def offline_candidates(
        self, device_rule: str, site_rule: str, silent_since: datetime
    ) -> list[tuple[AgentRow, Severity | None]]:
        # Devices whose state disagrees with their offline alert (open, or not, while seen after
        # `silent_since`, or not), and every device of their sites and of sites with an open site alert.
        # Open alerts are few: they are read first.
        rows = await self._rows(
            "WITH offline AS (SELECT agent_id, severity FROM alerts WHERE state = 'open' AND rule = :device_rule), "
            "seen AS (SELECT a.agent_id, a.site_id, a.last_seen_at <= :silent_since AS silent, "
            "  o.agent_id IS NOT NULL AS offline_open, o.severity AS offline_severity "
            "  FROM agents a LEFT JOIN offline o ON o.agent_id = a.agent_id "
            "  WHERE a.revoked_at IS NULL AND a.last_seen_at IS NOT NULL), "
            "due AS (SELECT site_id FROM seen WHERE silent <> offline_open "
            "  UNION SELECT site_id FROM alerts WHERE state = 'open' AND rule = :site_rule) "
            "SELECT a.*, s.name AS site_name, c.id AS client_id, c.name AS client_name, seen.offline_severity "
            "FROM seen JOIN agents a ON a.agent_id = seen.agent_id "
            "JOIN sites s ON s.id = a.site_id JOIN clients c ON c.id = s.client_id "
            "WHERE seen.site_id IN (SELECT site_id FROM due) ORDER BY a.site_id, a.agent_id",
            device_rule=device_rule, site_rule=site_rule, silent_since=silent_since,
        )
        return [(_agent(row, self.codec), row["offline_severity"]) for row in rows]

    # Alerts ----------------------------------------------------------------------------------------------

    async def open_alert(self, fingerprint: str) -> AlertRow | None:
        row = await self._row("SELECT * FROM alerts WHERE fingerprint = :fp AND state = 'open'", fp=fingerprint)
        return _alert(row, self.codec) if row is not None else None

    async def open_alerts_of(self, agent_id: str) -> list[AlertRow]:
        rows = await self._rows("SELECT * FROM alerts WHERE agent_id = :agent AND state = 'open'", agent=agent_id)
        return [_alert(row, self.codec) for row in rows]

    async def insert_alert(
        self, fingerprint: str, rule: str, owner: AlertOwner, subject: str, severity: Severity, summary: str,
        details: dict[str, Any], at: datetime,
    ) -> AlertRow | None:
        # The conflict target is the partial unique index: a writer that loses the race (waiting for the
        # winner's commit on PostgreSQL) gets no row, not an error that would end its transaction.
        row = await self._row(
            "INSERT INTO alerts (fingerprint, rule, agent_id, site_id, client, site, hostname, subject, severity, "
            "state, summary, details, opened_at, last_seen_at, occurrences) "
            "VALUES (:fp, :rule, :agent, :site_id, :client, :site, :hostname, :subject, :severity, 'open', "
            ":summary, :details, :at, :at, 1) "
            "ON CONFLICT (fingerprint) WHERE state = 'open' DO NOTHING RETURNING *",
            fp=fingerprint, rule=rule, agent=owner.agent_id, site_id=owner.site_id, client=owner.client,
            site=owner.site, hostname=owner.hostname, subject=subject, severity=severity, summary=summary,
            details=to_json(details), at=at,
        )
        return _alert(row, self.codec) if row is not None else None

    async def update_alert(
        self, alert_id: int, severity: Severity, summary: str, details: dict[str, Any], at: datetime
    ) -> AlertRow:
        return await self._changed(
            "UPDATE alerts SET severity = :severity, summary = :summary, details = :details, "
            "last_seen_at = CASE WHEN last_seen_at > :at THEN last_seen_at ELSE :at END, "
            "occurrences = occurrences + 1, good_streak = 0, good_since = NULL WHERE id = :id RETURNING *",
            alert_id, severity=severity, summary=summary, details=to_json(details), at=at,
        )

    async def record_good(self, alert_id: int, at: datetime) -> AlertRow:
        return await self._changed(
            "UPDATE alerts SET good_streak = good_streak + 1, good_since = coalesce(good_since, :at) "
            "WHERE id = :id RETURNING *",
            alert_id, at=at,
        )

    async def set_flapping(self, alert_id: int, flapping: bool) -> AlertRow:
        return await self._changed(
            "UPDATE alerts SET flapping = :flapping WHERE id = :id RETURNING *", alert_id, flapping=flapping
        )

    async def _changed(self, sql: str, alert_id: int, **params: Any) -> AlertRow:
        """The alert an UPDATE ... WHERE id = :id RETURNING * changed; LookupError when there was none."""
        row = await self._row(sql, id=alert_id, **params)
        if row is None:
            raise LookupError(f"no alert with id {alert_id}")
        return _alert(row, self.codec)

    async def _alert_or_none(self, sql: str, /, **params: Any) -> AlertRow | None:
        """The alert a query returns, if any."""
        row = await self._row(sql, **params)
        return _alert(row, self.codec) if row is not None else None

    async def resolve_alert(self, alert_id: int, at: datetime) -> AlertRow | None:
        return await self._alert_or_none(
            "UPDATE alerts SET state = 'resolved', resolved_at = :at, snoozed_until = NULL "
            "WHERE id = :id AND state = 'open' RETURNING *",
            at=at, id=alert_id,
        )

    async def reopen_alert(self, fingerprint: str, resolved_since: datetime, at: datetime) -> AlertRow | None:
        # `state = 'resolved'` on the row itself is checked again after waiting for a concurrent writer.
        return await self._alert_or_none(
            "UPDATE alerts SET state = 'open', resolved_at = NULL, last_seen_at = :at, "
            "good_streak = 0, good_since = NULL, acknowledged_at = NULL, acknowledged_by = NULL "
            "WHERE id = (SELECT id FROM alerts WHERE fingerprint = :fp AND state = 'resolved' "
            "AND resolved_at >= :since ORDER BY resolved_at DESC LIMIT 1) AND state = 'resolved' "
            "AND NOT EXISTS (SELECT 1 FROM alerts WHERE fingerprint = :fp AND state = 'open') RETURNING *",
            at=at, fp=fingerprint, since=resolved_since,
        )

    async def last_resolved_at(self, fingerprint: str) -> datetime | None:
        row = await self._row(
            "SELECT MAX(resolved_at) AS at FROM alerts WHERE fingerprint = :fp AND state = 'resolved'",
            fp=fingerprint,
        )
        return self.codec.moment(row["at"]) if row is not None and row["at"] is not None else None

    async def alert(self, alert_id: int) -> AlertRow | None:
        return await self._alert_or_none("SELECT * FROM alerts WHERE id = :id", id=alert_id)

    async def acknowledge(self, alert_id: int, by: str, at: datetime) -> AlertRow | None:
        return await self._alert_or_none(
            "UPDATE alerts SET acknowledged_at = :at, acknowledged_by = :by "
            "WHERE id = :id AND state = 'open' AND acknowledged_at IS NULL RETURNING *",
            at=at, by=by, id=alert_id,
        )

    async def snooze(self, alert_id: int, until: datetime | None) -> AlertRow | None:
        return await self._alert_or_none(
            "UPDATE alerts SET snoozed_until = :until WHERE id = :id AND state = 'open' RETURNING *",
            until=until, id=alert_id,
        )

    async def alerts(self, state: AlertState | None) -> list[AlertRow]:
        rows = await self._rows(
            "SELECT * FROM alerts WHERE :state::text IS NULL OR state = :state ORDER BY opened_at DESC, id DESC",
            state=state,
        )
        return [_alert(row, self.codec) for row in rows]

    async def add_alert_event(self, alert_id: int, at: datetime, type: str, actor: str, detail: dict[str, Any]) -> None:
        await self._run(
            "INSERT INTO alert_events (alert_id, at, type, actor, detail) VALUES (:alert, :at, :type, :actor, :detail)",
            alert=alert_id, at=at, type=type, actor=actor, detail=to_json(detail),
        )

    async def alert_events(self, alert_id: int) -> list[tuple[datetime, str, str, dict[str, Any]]]:
        rows = await self._rows(
            "SELECT at, type, actor, detail FROM alert_events WHERE alert_id = :alert ORDER BY at, id", alert=alert_id
        )
        moment = self.codec.moment
        return [(moment(row["at"]), row["type"], row["actor"], from_json(row["detail"])) for row in rows]

    async def alert_events_since(self, since: datetime) -> list[tuple[AlertRow, datetime, str]]:
        rows = await self._rows(
            "SELECT e.at AS e_at, e.type AS e_type, a.* FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
            "WHERE e.at >= :since ORDER BY e.id",
            since=since,
        )
        return [(_alert(row, self.codec), self.codec.moment(row["e_at"]), row["e_type"]) for row in rows]

    # Feed ------------------------------------------------------------------------------------------------

    async def append_feed(self, at: datetime, type: str, data: dict[str, Any]) -> FeedEvent:
        row = await self._row(self.APPEND_FEED, at=at, type=type, data=to_json(data))
        assert row is not None  # an INSERT without a conflict clause returns its row
        self.feed_appended = True
        return FeedEvent(row["id"], self.codec.moment(row["at"]), type, data)

    async def feed_since(self, after_id: int, limit: int) -> list[FeedEvent]:
        rows = await self._rows(
            "SELECT * FROM feed_events WHERE id > :after ORDER BY id LIMIT :limit", after=after_id, limit=limit
        )
        return [_feed_event(row, self.codec) for row in rows]

    async def recent_feed(self, type: str, since: datetime, limit: int) -> list[FeedEvent]:
        rows = await self._rows(
            "SELECT * FROM feed_events WHERE type = :type AND at >= :since ORDER BY id DESC LIMIT :limit",
            type=type, since=since, limit=limit,
        )
        return [_feed_event(row, self.codec) for row in rows]

    async def feed_last_id(self) -> int:
        row = await self._row("SELECT coalesce(max(id), 0) AS id FROM feed_events")
        return row["id"] if row is not None else 0

    async def client_feed_events(
        self, client: str, types: list[str], since: datetime, until: datetime
    ) -> list[FeedEvent]:
        rows = await self._rows(
            "SELECT * FROM feed_events WHERE type IN (:types::text[]) AND data ->> 'client' = :client "
            "AND at >= :since AND at < :until ORDER BY id",
            types=list(types), client=client, since=since, until=until,
        )
        return [_feed_event(row, self.codec) for row in rows]

    # Backup push jobs ------------------------------------------------------------------------------------

    async def add_push_job(
        self, token_hash: str, agent_id: str, name: str, schedule: str, timezone: str,
        grace_seconds: float | None, created_at: datetime,
    ) -> PushJobRow | None:
        row = await self._row(
            "INSERT INTO backup_push_jobs (token_hash, agent_id, name, schedule, timezone, grace_seconds, "
            "created_at) VALUES (:token, :agent, :name, :schedule, :timezone, :grace, :created) "
            "ON CONFLICT (agent_id, name) DO NOTHING RETURNING *",
            token=token_hash, agent=agent_id, name=name, schedule=schedule, timezone=timezone,
            grace=grace_seconds, created=created_at,
        )
        return _push_job(row, self.codec) if row is not None else None

    async def recent_pings(self, per_job: int) -> dict[int, list[PingRow]]:
        rows = await self._rows(
            "SELECT * FROM (SELECT p.*, row_number() OVER (PARTITION BY job_id ORDER BY id DESC) AS n "
            "FROM backup_pings p) r WHERE n <= :limit ORDER BY job_id, id DESC", limit=per_job,
        )
        found: dict[int, list[PingRow]] = {}
        for row in rows:
            found.setdefault(row["job_id"], []).append(
                PingRow(self.codec.moment(row["at"]), row["kind"], row["bytes"], row["log"]))
        return found

    async def push_jobs(self) -> list[PushJobState]:
        return await self._push_states(None)

    async def pause_push_job(self, job_id: int, at: datetime | None) -> PushJobRow | None:
        state = "paused_at IS NULL" if at is not None else "paused_at IS NOT NULL"
        row = await self._row(f"UPDATE backup_push_jobs SET paused_at = :at WHERE id = :job AND deleted_at IS NULL "
                              f"AND {state} RETURNING *", job=job_id, at=at)
        return _push_job(row, self.codec) if row is not None else None

    async def delete_push_job(self, job_id: int, at: datetime) -> PushJobRow | None:
        row = await self._row("UPDATE backup_push_jobs SET deleted_at = :at WHERE id = :job AND deleted_at IS NULL "
                              "RETURNING *", job=job_id, at=at)
        return _push_job(row, self.codec) if row is not None else None

    async def record_ping(
        self, token_hash: str, at: datetime, kind: PingKind, size_bytes: int | None, log: str | None
    ) -> PushJobState | None:
        row = await self._row(
            "INSERT INTO backup_pings (job_id, at, kind, bytes, log) "
            "SELECT id, :at, :kind, :bytes, :log FROM backup_push_jobs "
            "WHERE token_hash = :token AND deleted_at IS NULL RETURNING job_id",
            at=at, kind=kind, bytes=size_bytes, log=log, token=token_hash,
        )
        if row is None:
            return None
        # A separate statement, so it sees the ping just added. A NULL cut-off deletes nothing.
        await self._run(
            "DELETE FROM backup_pings WHERE job_id = :job AND id < ("
            "  SELECT id FROM backup_pings WHERE job_id = :job ORDER BY id DESC LIMIT 1 OFFSET :kept) "
            "AND id NOT IN (SELECT id FROM backup_pings WHERE job_id = :job "
            "  AND kind IN ('success', 'warning') ORDER BY id DESC LIMIT 2)",
            job=row["job_id"], kept=PINGS_KEPT - 1,
        )
        [state] = await self._push_states(row["job_id"])
        return state

    async def _push_states(self, job_id: int | None) -> list[PushJobState]:
        """Every push job's state (or the one numbered `job_id`), by device and name."""
        raise NotImplementedError

    # Notification channels, silences, the queue ---------------------------------------------------------

    async def add_channel(self, channel: ChannelRow, at: datetime) -> ChannelRow:
        # ON CONFLICT rather than catching the error: on PostgreSQL an error would end the whole transaction.
        row = await self._row(
            "INSERT INTO channels (name, url, min_severity, clients, kinds, quiet_start, quiet_end, timezone, "
            "digest_at, group_wait_seconds, group_interval_seconds, repeat_interval_seconds, created_at) "
            "VALUES (:name, :url, :severity, :clients, :kinds, :quiet_start, :quiet_end, :timezone, :digest_at, "
            ":wait, :interval, :repeat, :at) ON CONFLICT (name) DO NOTHING RETURNING *",
            name=channel.name, url=channel.url, severity=channel.min_severity,
            clients=to_json(list(channel.clients)), kinds=to_json(list(channel.kinds)),
            quiet_start=channel.quiet_start, quiet_end=channel.quiet_end, timezone=channel.timezone,
            digest_at=channel.digest_at, wait=seconds(channel.group_wait),
            interval=seconds(channel.group_interval), repeat=seconds(channel.repeat_interval), at=at,
        )
        if row is None:
            raise ValueError(f"there is a channel named {channel.name!r} already")
        return _channel(row, self.codec)

    async def channels(self) -> list[ChannelRow]:
        return [_channel(row, self.codec) for row in await self._rows("SELECT * FROM channels ORDER BY name")]

    async def record_delivery(
        self, channel_id: int, at: datetime, ok: bool, items: int, title: str, error: str | None
    ) -> ChannelRow:
        await self._run(
            "INSERT INTO deliveries (channel_id, at, ok, items, title, error) "
            "VALUES (:channel, :at, :ok, :items, :title, :error)",
            channel=channel_id, at=at, ok=ok, items=items, title=title, error=error,
        )
        row = await self._row(
            "UPDATE channels SET last_sent_at = CASE WHEN :ok THEN :at ELSE last_sent_at END, "
            "failures = CASE WHEN :ok THEN 0 ELSE failures + 1 END WHERE id = :channel RETURNING *",
            ok=ok, at=at, channel=channel_id,
        )
        assert row is not None  # the channel exists: the delivery row's foreign key says so
        return _channel(row, self.codec)

    async def update_channel(self, channel: ChannelRow) -> ChannelRow:
        if await self._row("SELECT id FROM channels WHERE name = :name AND id <> :channel",
                           name=channel.name, channel=channel.channel_id) is not None:
            raise ValueError(f"there is a channel named {channel.name!r} already")
        row = await self._row(
            "UPDATE channels SET name = :name, url = :url, min_severity = :severity, clients = :clients, "
            "kinds = :kinds, quiet_start = :quiet_start, quiet_end = :quiet_end, timezone = :timezone, "
            "digest_at = :digest_at, group_wait_seconds = :wait, group_interval_seconds = :interval, "
            "repeat_interval_seconds = :repeat, failures = 0, broken_at = NULL, broken_reason = NULL "
            "WHERE id = :channel RETURNING *",
            channel=channel.channel_id, name=channel.name, url=channel.url, severity=channel.min_severity,
            clients=to_json(list(channel.clients)), kinds=to_json(list(channel.kinds)),
            quiet_start=channel.quiet_start, quiet_end=channel.quiet_end, timezone=channel.timezone,
            digest_at=channel.digest_at, wait=seconds(channel.group_wait),
            interval=seconds(channel.group_interval), repeat=seconds(channel.repeat_interval),
        )
        assert row is not None, "update_channel is given a channel that exists"
        return _channel(row, self.codec)

    async def disable_channel(self, channel_id: int, at: datetime | None) -> ChannelRow | None:
        row = await self._row("UPDATE channels SET disabled_at = :at WHERE id = :channel RETURNING *",
                              at=at, channel=channel_id)
        return _channel(row, self.codec) if row is not None else None

    async def delete_channel(self, channel_id: int) -> None:
        await self._run("DELETE FROM notifications WHERE channel_id = :channel", channel=channel_id)
        await self._run("DELETE FROM deliveries WHERE channel_id = :channel", channel=channel_id)
        await self._run("DELETE FROM channels WHERE id = :channel", channel=channel_id)

    async def mark_channel_broken(self, channel_id: int, at: datetime, reason: str) -> None:
        await self._run(
            "UPDATE channels SET broken_at = :at, broken_reason = :reason WHERE id = :channel",
            at=at, reason=reason, channel=channel_id,
        )

    async def mark_digest_sent(self, channel_id: int, day: date) -> None:
        await self._run("UPDATE channels SET last_digest_on = :day WHERE id = :channel", day=day, channel=channel_id)

    async def add_silence(self, silence: Silence, at: datetime) -> Silence:
        matchers = {k: v for k, v in asdict(silence.matchers).items() if v is not None}
        row = await self._row(
            "INSERT INTO silences (matchers, starts_at, ends_at, cron, duration_seconds, timezone, comment, "
            "created_by, created_at) VALUES (:matchers, :starts, :ends, :cron, :duration, :timezone, :comment, "
            ":by, :at) RETURNING *",
            matchers=to_json(matchers), starts=silence.starts_at, ends=silence.ends_at, cron=silence.cron,
            duration=seconds(silence.duration) if silence.duration else None, timezone=silence.timezone,
            comment=silence.comment, by=silence.created_by, at=at,
        )
        assert row is not None
        return _silence(row, self.codec)

    async def silences(self) -> list[Silence]:
        rows = await self._rows("SELECT * FROM silences WHERE expired_at IS NULL ORDER BY id DESC")
        return [_silence(row, self.codec) for row in rows]

    async def expire_silence(self, silence_id: int, at: datetime) -> bool:
        expired = await self._run(
            "UPDATE silences SET expired_at = :at WHERE id = :id AND expired_at IS NULL", at=at, id=silence_id
        )
        if expired != 1:
            return False
        # The dispatcher checks the remaining silences again before it sends these.
        await self._run(
            "UPDATE notifications SET due_at = :at WHERE state = 'pending' AND reason = 'silenced' AND due_at > :at",
            at=at,
        )
        return True

    async def enqueue(self, rows: list[tuple[int, int, str, datetime, datetime, str]]) -> None:
        await self._run_many(
            "INSERT INTO notifications (channel_id, alert_id, event, created_at, due_at, state, reason) "
            "VALUES (:channel, :alert, :event, :created, :due, 'pending', :reason)",
            [{"channel": c, "alert": a, "event": e, "created": created, "due": due, "reason": reason}
             for c, a, e, created, due, reason in rows],
        )

    async def due_notifications(self, now: datetime) -> list[QueuedNotification]:
        rows = await self._rows(
            "SELECT n.id AS n_id, n.channel_id, n.event, n.created_at AS n_created_at, n.due_at, n.reason, "
            "n.attempts, a.* FROM notifications n JOIN alerts a ON a.id = n.alert_id "
            "WHERE n.state = 'pending' AND n.due_at <= :now ORDER BY n.id",
            now=now,
        )
        c = self.codec
        return [
            QueuedNotification(row["n_id"], row["channel_id"], _alert(row, c), row["event"],
                               c.moment(row["n_created_at"]), c.moment(row["due_at"]), row["reason"], row["attempts"])
            for row in rows
        ]

    async def claim(self, notification_ids: list[int], claimer: str) -> list[int]:
        if not notification_ids:
            return []
        # On PostgreSQL a second claimer waits on the rows the first updated, then finds them no longer pending.
        rows = await self._rows(
            "UPDATE notifications SET state = 'sending', claimed_by = :claimer "
            "WHERE id IN (:ids::bigint[]) AND state = 'pending' RETURNING id",
            claimer=claimer, ids=list(notification_ids),
        )
        return sorted(row["id"] for row in rows)

    async def finish(
        self, notification_ids: list[int], state: str, at: datetime, error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        if retry_at is not None:
            await self._run(
                "UPDATE notifications SET state = 'pending', due_at = :retry, attempts = attempts + 1, "
                "last_error = :error, claimed_by = NULL WHERE id IN (:ids::bigint[])",
                retry=retry_at, error=error, ids=list(notification_ids),
            )
            return
        await self._run(
            "UPDATE notifications SET state = :state, sent_at = :at, last_error = :error, attempts = attempts + 1 "
            "WHERE id IN (:ids::bigint[])",
            state=state, at=at, error=error, ids=list(notification_ids),
        )

    async def last_notified(self, alert_id: int, channel_id: int, sent_only: bool) -> datetime | None:
        row = await self._row(
            "SELECT max(created_at) AS last FROM notifications WHERE alert_id = :alert AND channel_id = :channel "
            "AND state IN (:states::text[])",
            alert=alert_id, channel=channel_id, states=["sent"] if sent_only else ["pending", "sending", "sent"],
        )
        return self.codec.moment(row["last"]) if row is not None else None

    async def get_meta(self, key: str) -> str | None:
        row = await self._row("SELECT value FROM meta WHERE key = :key", key=key)
        return row["value"] if row is not None else None

    async def set_meta(self, key: str, value: str) -> None:
        await self._run(
            "INSERT INTO meta (key, value) VALUES (:key, :value) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            key=key, value=value,
        )

    async def claim_meta(self, key: str, value: str) -> str:
        await self._run("INSERT INTO meta (key, value) VALUES (:key, :value) ON CONFLICT (key) DO NOTHING",
                        key=key, value=value)
        stands = await self.get_meta(key)
        assert stands is not None  # inserted above or already there
        return stands

    # Billing ---------------------------------------------------------------------------------------------

    async def client_id(self, name: str) -> int | None:
        row = await self._row("SELECT id FROM clients WHERE name = :name", name=name)
        return row["id"] if row is not None else None

    async def set_device_billing(
        self, agent_id: str, device_class: DeviceClass, contact: str, active_from: date | None, active_to: date | None
    ) -> bool:
        row = await self._row(
            "INSERT INTO device_billing (agent_id, device_class, contact, active_from, active_to) "
            "SELECT agent_id, :class, :contact, :from_day, :to_day FROM agents WHERE agent_id = :agent "
            "ON CONFLICT (agent_id) DO UPDATE SET device_class = excluded.device_class, "
            "contact = excluded.contact, active_from = excluded.active_from, active_to = excluded.active_to "
            "RETURNING 1 AS done",
            agent=agent_id, contact=contact, from_day=active_from, to_day=active_to, **{"class": device_class},
        )
        return row is not None

    async def billing_devices(self, client_id: int) -> list[DeviceBillingRow]:
        rows = await self._rows(
            "SELECT a.agent_id, a.hostname, s.name AS site_name, a.enrolled_at, a.revoked_at, b.device_class, "
            "b.contact, b.active_from, b.active_to FROM agents a JOIN sites s ON s.id = a.site_id "
            "LEFT JOIN device_billing b ON b.agent_id = a.agent_id WHERE s.client_id = :client "
            "ORDER BY a.hostname, a.agent_id",
            client=client_id,
        )
        c = self.codec
        return [
            DeviceBillingRow(
                row["agent_id"], row["hostname"], row["site_name"], c.moment(row["enrolled_at"]),
                c.moment(row["revoked_at"]), row["device_class"] or "workstation", row["contact"] or "",
                c.day(row["active_from"]), c.day(row["active_to"]),
            )
            for row in rows
        ]

    async def add_contract(self, client_id: int, contract: Contract, at: datetime) -> ContractRow:
        c = contract
        row = await self._row(
            "INSERT INTO contracts (client_id, effective_from, effective_to, start, term_months, "
            "workstation_rate, server_rate, covers_remote, covers_onsite, covers_after_hours, included_hours, "
            "onboarding_workstation_months, onboarding_server_months, monthly_fee, created_at) "
            "VALUES (:client, :from_day, :to_day, :start, :term, :workstation, :server, :remote, :onsite, "
            ":after_hours, :included, :onboard_ws, :onboard_srv, :fee, :at) "
            "ON CONFLICT (client_id, effective_from) DO NOTHING RETURNING *",
            client=client_id, from_day=c.effective_from, to_day=c.effective_to, start=c.start, term=c.term_months,
            workstation=c.workstation_rate, server=c.server_rate, remote=c.covers_remote, onsite=c.covers_onsite,
            after_hours=c.covers_after_hours, included=c.included_hours,
            onboard_ws=c.onboarding_workstation_months, onboard_srv=c.onboarding_server_months, fee=c.monthly_fee,
            at=at,
        )
        if row is None:
            raise ValueError(f"the client has a contract version taking effect on {c.effective_from}")
        return _contract(row, self.codec)

    async def contracts(self, client_id: int) -> list[ContractRow]:
        rows = await self._rows(
            "SELECT * FROM contracts WHERE client_id = :client ORDER BY effective_from", client=client_id
        )
        return [_contract(row, self.codec) for row in rows]

    async def add_rates(self, client_id: int | None, rates: BreakFixRates, at: datetime) -> RatesRow:
        r = rates
        row = await self._row(
            "INSERT INTO breakfix_rates (client_id, effective_from, effective_to, hourly_rate, minimum_minutes, "
            "increment_minutes, after_hours_multiplier, onsite_minimum_minutes, emergency_minimum_minutes, "
            "created_at) VALUES (:client, :from_day, :to_day, :hourly, :minimum, :increment, :multiplier, "
            ":onsite, :emergency, :at) "
            "ON CONFLICT ((coalesce(client_id, 0)), effective_from) DO NOTHING RETURNING *",
            client=client_id, from_day=r.effective_from, to_day=r.effective_to, hourly=r.hourly_rate,
            minimum=r.minimum_minutes, increment=r.increment_minutes, multiplier=r.after_hours_multiplier,
            onsite=r.onsite_minimum_minutes, emergency=r.emergency_minimum_minutes, at=at,
        )
        if row is None:
            raise ValueError(f"a rate card version takes effect on {r.effective_from} already")
        return _rates(row, self.codec)

    async def rate_cards(self) -> list[RatesRow]:
        rows = await self._rows("SELECT * FROM breakfix_rates ORDER BY effective_from, id")
        return [_rates(row, self.codec) for row in rows]

    # Incidents, notes, time, parts -----------------------------------------------------------------------

    def _incidents_sql(self, rest: str) -> str:
        """The incidents query with this backend's aggregate of linked alerts, followed by `rest`."""
        return _INCIDENTS.format(alert_ids=self.ALERT_IDS) + rest

    async def add_incident(
        self, client_id: int, title: str, category: str, emergency: bool, alert_id: int | None, at: datetime,
        by: str,
    ) -> IncidentRow | None:
        if alert_id is not None:
            # Two technicians opening an incident from one alert queue here; the second then sees the link.
            await self._lock_alert(alert_id)
            if await self.incident_of_alert(alert_id) is not None:
                return None
        row = await self._row(
            "INSERT INTO incidents (client_id, title, category, emergency, status, alert_id, opened_at, opened_by) "
            "VALUES (:client, :title, :category, :emergency, 'open', :alert, :at, :by) RETURNING id",
            client=client_id, title=title, category=category, emergency=emergency, alert=alert_id, at=at, by=by,
        )
        assert row is not None
        if alert_id is not None:
            await self.link_alert(row["id"], alert_id, at)
        return await self.incident(row["id"])

    async def incident(self, incident_id: int) -> IncidentRow | None:
        row = await self._row(self._incidents_sql(" WHERE i.id = :id GROUP BY i.id, c.name"), id=incident_id)
        return _incident(row, self.codec) if row is not None else None

    async def incident_of_alert(self, alert_id: int) -> int | None:
        row = await self._row("SELECT incident_id FROM incident_alerts WHERE alert_id = :alert", alert=alert_id)
        return row["incident_id"] if row is not None else None

    async def incidents(
        self, client_id: int | None, status: IncidentStatus | None, since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[IncidentRow]:
        rows = await self._rows(
            self._incidents_sql(
                " WHERE (:client::bigint IS NULL OR i.client_id = :client) "
                "AND (:status::text IS NULL OR i.status = :status) "
                "AND (:since::timestamptz IS NULL OR i.opened_at >= :since) "
                "AND (:until::timestamptz IS NULL OR i.opened_at < :until) "
                "GROUP BY i.id, c.name ORDER BY i.opened_at, i.id"
            ),
            client=client_id, status=status, since=since, until=until,
        )
        return [_incident(row, self.codec) for row in rows]

    async def link_alert(self, incident_id: int, alert_id: int, at: datetime) -> bool:
        linked = await self._run(
            "INSERT INTO incident_alerts (incident_id, alert_id, linked_at) VALUES (:incident, :alert, :at) "
            "ON CONFLICT DO NOTHING",
            incident=incident_id, alert=alert_id, at=at,
        )
        return linked == 1

    async def close_incident(self, incident_id: int, at: datetime, by: str, resolution: str) -> IncidentRow | None:
        closed = await self._run(
            "UPDATE incidents SET status = 'closed', closed_at = :at, closed_by = :by, resolution = :resolution "
            "WHERE id = :id AND status = 'open'",
            at=at, by=by, resolution=resolution, id=incident_id,
        )
        return await self.incident(incident_id) if closed == 1 else None

    async def retitle_incident(self, incident_id: int, title: str) -> IncidentRow | None:
        changed = await self._run("UPDATE incidents SET title = :title WHERE id = :id", title=title, id=incident_id)
        return await self.incident(incident_id) if changed == 1 else None

    async def add_incident_note(self, incident_id: int, at: datetime, author: str, text: str) -> NoteRow:
        row = await self._row(
            "INSERT INTO incident_notes (incident_id, at, author, text) VALUES (:incident, :at, :author, :text) "
            "RETURNING *",
            incident=incident_id, at=at, author=author, text=text,
        )
        assert row is not None
        return _note(row, self.codec)

    async def incident_notes(self, incident_id: int) -> list[NoteRow]:
        rows = await self._rows(
            "SELECT * FROM incident_notes WHERE incident_id = :incident ORDER BY id", incident=incident_id
        )
        return [_note(row, self.codec) for row in rows]

    async def start_timer(
        self, incident_id: int, technician: str, at: datetime, on_site: bool, after_hours: bool
    ) -> TimeEntryRow | None:
        # The partial unique index on running timers decides, so a double start cannot make two.
        row = await self._row(
            "INSERT INTO time_entries (incident_id, technician, started_at, on_site, after_hours) "
            "VALUES (:incident, :technician, :at, :on_site, :after_hours) "
            "ON CONFLICT (incident_id, technician) WHERE minutes IS NULL DO NOTHING RETURNING *",
            incident=incident_id, technician=technician, at=at, on_site=on_site, after_hours=after_hours,
        )
        return _time_entry(row, self.codec) if row is not None else None

    async def stop_timer(self, incident_id: int, technician: str, at: datetime) -> TimeEntryRow | None:
        running = await self._row(
            "SELECT id, started_at FROM time_entries "
            "WHERE incident_id = :incident AND technician = :technician AND minutes IS NULL",
            incident=incident_id, technician=technician,
        )
        if running is None:
            return None
        elapsed = (at - self.codec.moment(running["started_at"])).total_seconds()
        # `minutes IS NULL` again: a concurrent stop that committed first wins, this one gets no row.
        row = await self._row(
            "UPDATE time_entries SET stopped_at = :at, minutes = :minutes WHERE id = :id AND minutes IS NULL "
            "RETURNING *",
            at=at, minutes=max(0, math.ceil(elapsed / 60)), id=running["id"],
        )
        return _time_entry(row, self.codec) if row is not None else None

    async def add_time_entry(self, entry: TimeEntryRow) -> TimeEntryRow:
        e = entry
        row = await self._row(
            "INSERT INTO time_entries (incident_id, technician, started_at, stopped_at, minutes, on_site, "
            "after_hours, override, override_reason, note) VALUES (:incident, :technician, :started, :stopped, "
            ":minutes, :on_site, :after_hours, :override, :reason, :note) RETURNING *",
            incident=e.incident_id, technician=e.technician, started=e.started_at, stopped=e.stopped_at,
            minutes=e.minutes, on_site=e.on_site, after_hours=e.after_hours, override=e.override,
            reason=e.override_reason, note=e.note,
        )
        assert row is not None
        return _time_entry(row, self.codec)

    async def override_time_entry(
        self, entry_id: int, override: Classification | None, reason: str | None
    ) -> TimeEntryRow | None:
        row = await self._row(
            "UPDATE time_entries SET override = :override, override_reason = :reason WHERE id = :id RETURNING *",
            override=override, reason=reason, id=entry_id,
        )
        return _time_entry(row, self.codec) if row is not None else None

    async def add_charge(self, client_id: int, day: date, description: str, amount: Decimal, at: datetime,
                         by: str) -> Charge:
        row = await self._row(
            "INSERT INTO one_off_charges (client_id, day, description, amount, created_at, created_by) "
            "VALUES (:client, :day, :description, :amount, :at, :by) RETURNING *",
            client=client_id, day=day, description=description, amount=amount, at=at, by=by,
        )
        assert row is not None
        return _charge(row, self.codec)

    async def charges(self, client_id: int) -> list[Charge]:
        rows = await self._rows("SELECT * FROM one_off_charges WHERE client_id = :client ORDER BY day, id",
                                client=client_id)
        return [_charge(row, self.codec) for row in rows]

    async def add_audit(self, at: datetime, actor: str, address: str, action: str, target: str, status: int,
                        detail: dict[str, Any]) -> None:
        await self._run(
            "INSERT INTO audit_log (at, actor, address, action, target, status, detail) "
            "VALUES (:at, :actor, :address, :action, :target, :status, :detail)",
            at=at, actor=actor, address=address, action=action, target=target, status=status,
            detail=to_json(detail),
        )

    async def audit_log(self, limit: int, before: int | None = None) -> list[AuditEntry]:
        rows = await self._rows(
            "SELECT * FROM audit_log WHERE (:before::bigint IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit",
            before=before, limit=limit,
        )
        return [AuditEntry(row["id"], self.codec.moment(row["at"]), row["actor"], row["address"], row["action"],
                           row["target"], row["status"], from_json(row["detail"])) for row in rows]

    async def client_tax(self, client_id: int) -> ClientTax | None:
        row = await self._row("SELECT * FROM client_tax WHERE client_id = :client", client=client_id)
        return ClientTax(self.codec.money(row["tax_rate"]), row["exemption"]) if row is not None else None

    async def set_client_tax(self, client_id: int, tax: ClientTax) -> None:
        await self._run(
            "INSERT INTO client_tax (client_id, tax_rate, exemption) VALUES (:client, :rate, :exemption) "
            "ON CONFLICT (client_id) DO UPDATE SET tax_rate = excluded.tax_rate, exemption = excluded.exemption",
            client=client_id, rate=tax.tax_rate, exemption=tax.exemption,
        )

    async def issue_invoice(
        self, client_id: int, month: date, prefix: str, at: datetime, by: str, due: date, body: dict[str, Any]
    ) -> IssuedInvoiceRow | None:
        if await self._row("SELECT 1 FROM invoices WHERE client_id = :client AND month = :month "
                           "AND voided_at IS NULL", client=client_id, month=month) is not None:
            return None
        # Numbers run without gaps in issue order (a voided invoice keeps its number): the write lock on
        # SQLite, and on PostgreSQL the unique number, keep two collectors from taking the same one.
        count = await self._row("SELECT COUNT(*) AS n FROM invoices")
        number = f"{prefix}{(count['n'] if count else 0) + 1:05d}"
        row = await self._row(
            "INSERT INTO invoices (number, client_id, month, issued_at, issued_by, due, body) "
            "VALUES (:number, :client, :month, :at, :by, :due, :body) RETURNING *",
            number=number, client=client_id, month=month, at=at, by=by, due=due,
            body=to_json({**body, "number": number}),
        )
        assert row is not None
        return _issued(row, self.codec)

    async def issued_invoices(self, client_id: int | None = None, month: date | None = None) -> list[IssuedInvoiceRow]:
        rows = await self._rows(
            "SELECT * FROM invoices WHERE (:client::bigint IS NULL OR client_id = :client) "
            "AND (:month::date IS NULL OR month = :month) ORDER BY id",
            client=client_id, month=month,
        )
        return [_issued(row, self.codec) for row in rows]

    async def issued_invoice(self, number: str) -> IssuedInvoiceRow | None:
        row = await self._row("SELECT * FROM invoices WHERE number = :number", number=number)
        return _issued(row, self.codec) if row is not None else None

    async def void_invoice(self, number: str, at: datetime, by: str, reason: str) -> IssuedInvoiceRow | None:
        row = await self._row(
            "UPDATE invoices SET voided_at = :at, voided_by = :by, void_reason = :reason "
            "WHERE number = :number AND voided_at IS NULL RETURNING *",
            at=at, by=by, reason=reason, number=number,
        )
        return _issued(row, self.codec) if row is not None else None

    async def time_entry(self, entry_id: int) -> TimeEntryRow | None:
        row = await self._row("SELECT * FROM time_entries WHERE id = :id", id=entry_id)
        return _time_entry(row, self.codec) if row is not None else None

    async def edit_time_entry(self, entry: TimeEntryRow) -> TimeEntryRow | None:
        e = entry
        row = await self._row(
            "UPDATE time_entries SET started_at = :started, stopped_at = :stopped, minutes = :minutes, "
            "on_site = :on_site, after_hours = :after_hours, note = :note "
            "WHERE id = :id AND minutes IS NOT NULL RETURNING *",
            started=e.started_at, stopped=e.stopped_at, minutes=e.minutes, on_site=e.on_site,
            after_hours=e.after_hours, note=e.note, id=e.entry_id,
        )
        return _time_entry(row, self.codec) if row is not None else None

    async def delete_time_entry(self, entry_id: int) -> TimeEntryRow | None:
        row = await self._row("DELETE FROM time_entries WHERE id = :id RETURNING *", id=entry_id)
        return _time_entry(row, self.codec) if row is not None else None

    async def time_entries(self, client_id: int | None = None, incident_id: int | None = None) -> list[TimeEntryRow]:
        rows = await self._rows(
            "SELECT t.* FROM time_entries t JOIN incidents i ON i.id = t.incident_id "
            "WHERE (:client::bigint IS NULL OR i.client_id = :client) "
            "AND (:incident::bigint IS NULL OR t.incident_id = :incident) ORDER BY t.started_at, t.id",
            client=client_id, incident=incident_id,
        )
        return [_time_entry(row, self.codec) for row in rows]

    async def add_part(self, part: Part) -> Part:
        row = await self._row(
            "INSERT INTO parts (incident_id, day, description, cost, price, quantity) "
            "VALUES (:incident, :day, :description, :cost, :price, :quantity) RETURNING *",
            incident=part.incident_id, day=part.day, description=part.description, cost=part.cost,
            price=part.price, quantity=part.quantity,
        )
        assert row is not None
        return _part(row, self.codec)

    async def delete_part(self, part_id: int) -> Part | None:
        row = await self._row("DELETE FROM parts WHERE id = :id RETURNING *", id=part_id)
        return _part(row, self.codec) if row is not None else None

    async def parts(self, client_id: int | None = None, incident_id: int | None = None) -> list[Part]:
        rows = await self._rows(
            "SELECT p.* FROM parts p JOIN incidents i ON i.id = p.incident_id "
            "WHERE (:client::bigint IS NULL OR i.client_id = :client) "
            "AND (:incident::bigint IS NULL OR p.incident_id = :incident) ORDER BY p.day, p.id",
            client=client_id, incident=incident_id,
        )
        return [_part(row, self.codec) for row in rows]

    # Technician accounts ---------------------------------------------------------------------------------

    async def add_technician(self, name: str, password_hash: str, at: datetime,
                             role: Role | None) -> TechnicianRow | None:
        row = await self._row(
            "INSERT INTO technicians (name, password_hash, created_at, role) VALUES (:name, :hash, :at, "
            "COALESCE(:role, CASE WHEN EXISTS (SELECT 1 FROM technicians) THEN 'technician' ELSE 'owner' END)) "
            "ON CONFLICT (name) DO NOTHING RETURNING *",
            name=name, hash=password_hash, at=at, role=role,
        )
        return _technician(row, self.codec) if row is not None else None

    async def technician(self, name: str) -> TechnicianRow | None:
        row = await self._row("SELECT * FROM technicians WHERE name = :name", name=name)
        return _technician(row, self.codec) if row is not None else None

    async def set_password(self, technician_id: int, password_hash: str, end_sessions: bool) -> None:
        await self._run("UPDATE technicians SET password_hash = :hash WHERE id = :id", hash=password_hash,
                        id=technician_id)
        if end_sessions:
            await self._run("DELETE FROM web_sessions WHERE technician_id = :id", id=technician_id)

    async def add_web_session(
        self, token_hash: str, technician_id: int, csrf_token: str, created_at: datetime, expires_at: datetime,
        address: str = "", user_agent: str = "",
    ) -> None:
        await self._run("DELETE FROM web_sessions WHERE expires_at <= :now", now=created_at)
        await self._run(
            "INSERT INTO web_sessions (token_hash, technician_id, csrf_token, created_at, expires_at, last_used_at, "
            "address, user_agent) VALUES (:token, :technician, :csrf, :created, :expires, :created, :address, "
            ":agent)",
            token=token_hash, technician=technician_id, csrf=csrf_token, created=created_at, expires=expires_at,
            address=address, agent=user_agent,
        )

    async def web_session(self, token_hash: str, now: datetime) -> WebSessionRow | None:
        row = await self._row(
            "SELECT s.technician_id, t.name, s.csrf_token, s.expires_at, t.role, s.token_hash, s.last_used_at, "
            "t.totp_secret FROM web_sessions s JOIN technicians t ON t.id = s.technician_id "
            "WHERE s.token_hash = :token AND s.expires_at > :now",
            token=token_hash, now=now,
        )
        if row is None:
            return None
        m = self.codec.moment
        return WebSessionRow(row["technician_id"], row["name"], row["csrf_token"], m(row["expires_at"]),
                             row["role"], row["token_hash"], row["totp_secret"] is not None, m(row["last_used_at"]))

    async def touch_web_session(self, token_hash: str, at: datetime) -> None:
        await self._run("UPDATE web_sessions SET last_used_at = :at WHERE token_hash = :token", at=at,
                        token=token_hash)

    async def web_sessions(self, technician_id: int | None, now: datetime) -> list[SessionListing]:
        rows = await self._rows(
            "SELECT s.*, t.name FROM web_sessions s JOIN technicians t ON t.id = s.technician_id "
            "WHERE (:technician::bigint IS NULL OR s.technician_id = :technician) AND s.expires_at > :now "
            "ORDER BY t.name, s.created_at DESC, s.token_hash",
            technician=technician_id, now=now,
        )
        m = self.codec.moment
        return [SessionListing(row["token_hash"], row["name"], m(row["created_at"]), m(row["last_used_at"]),
                               m(row["expires_at"]), row["address"], row["user_agent"]) for row in rows]

    async def end_web_session(self, token_hash: str, technician_id: int | None = None) -> bool:
        return await self._run(
            "DELETE FROM web_sessions WHERE token_hash = :token "
            "AND (:technician::bigint IS NULL OR technician_id = :technician)",
            token=token_hash, technician=technician_id,
        ) > 0

    async def add_login_challenge(self, token_hash: str, technician_id: int, now: datetime,
                                  expires_at: datetime) -> None:
        await self._run("DELETE FROM login_challenges WHERE expires_at <= :now", now=now)
        await self._run(
            "INSERT INTO login_challenges (token_hash, technician_id, expires_at) VALUES (:token, :id, :expires)",
            token=token_hash, id=technician_id, expires=expires_at,
        )

    async def login_challenge(self, token_hash: str, now: datetime) -> TechnicianRow | None:
        row = await self._row(
            "SELECT t.* FROM login_challenges c JOIN technicians t ON t.id = c.technician_id "
            "WHERE c.token_hash = :token AND c.expires_at > :now",
            token=token_hash, now=now,
        )
        return _technician(row, self.codec) if row is not None else None

    async def end_login_challenge(self, token_hash: str) -> None:
        await self._run("DELETE FROM login_challenges WHERE token_hash = :token", token=token_hash)

    async def set_totp_pending(self, technician_id: int, secret: str | None) -> None:
        await self._run("UPDATE technicians SET totp_pending = :secret WHERE id = :id", secret=secret,
                        id=technician_id)

    async def enable_totp(self, technician_id: int, secret: str, step: int, code_hashes: list[str]) -> None:
        await self._run(
            "UPDATE technicians SET totp_secret = :secret, totp_pending = NULL, totp_last_step = :step "
            "WHERE id = :id",
            secret=secret, step=step, id=technician_id,
        )
        await self._run("DELETE FROM recovery_codes WHERE technician_id = :id", id=technician_id)
        for code_hash in code_hashes:
            await self._run("INSERT INTO recovery_codes (technician_id, code_hash) VALUES (:id, :hash)",
                            id=technician_id, hash=code_hash)

    async def disable_totp(self, technician_id: int) -> bool:
        await self._run("DELETE FROM recovery_codes WHERE technician_id = :id", id=technician_id)
        return await self._run(
            "UPDATE technicians SET totp_secret = NULL, totp_pending = NULL, totp_last_step = NULL "
            "WHERE id = :id AND (totp_secret IS NOT NULL OR totp_pending IS NOT NULL)",
            id=technician_id,
        ) > 0

    async def accept_totp_step(self, technician_id: int, step: int) -> bool:
        return await self._run(
            "UPDATE technicians SET totp_last_step = :step "
            "WHERE id = :id AND (totp_last_step IS NULL OR totp_last_step < :step)",
            step=step, id=technician_id,
        ) > 0

    async def use_recovery_code(self, technician_id: int, code_hash: str, at: datetime) -> bool:
        return await self._run(
            "UPDATE recovery_codes SET used_at = :at "
            "WHERE technician_id = :id AND code_hash = :hash AND used_at IS NULL",
            at=at, id=technician_id, hash=code_hash,
        ) > 0

    async def recovery_codes_left(self, technician_id: int) -> int:
        row = await self._row(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE technician_id = :id AND used_at IS NULL",
            id=technician_id,
        )
        return int(row["n"]) if row is not None else 0

    async def login_failures(self, scope: str, subject: str) -> tuple[int, datetime] | None:
        row = await self._row(
            "SELECT failures, last_at FROM login_failures WHERE scope = :scope AND subject = :subject",
            scope=scope, subject=subject,
        )
        if row is None:
            return None
        last = self.codec.moment(row["last_at"])
        assert last is not None
        return int(row["failures"]), last

    async def add_login_failure(self, scope: str, subject: str, at: datetime, forget_before: datetime) -> None:
        await self._run("DELETE FROM login_failures WHERE last_at < :forget", forget=forget_before)
        await self._run(
            "INSERT INTO login_failures (scope, subject, failures, last_at) VALUES (:scope, :subject, 1, :at) "
            "ON CONFLICT (scope, subject) DO UPDATE SET failures = login_failures.failures + 1, last_at = :at",
            scope=scope, subject=subject, at=at,
        )

    async def clear_login_failures(self, scope: str, subject: str) -> None:
        await self._run("DELETE FROM login_failures WHERE scope = :scope AND subject = :subject", scope=scope,
                        subject=subject)

    async def enrolment_tokens(self) -> list[EnrolmentTokenRow]:
        rows = await self._rows(
            "SELECT t.*, c.name AS client_name, s.name AS site_name FROM enrolment_tokens t "
            "JOIN sites s ON s.id = t.site_id JOIN clients c ON c.id = s.client_id "
            "ORDER BY t.created_at DESC, t.token_hash"
        )
        m = self.codec.moment
        return [
            EnrolmentTokenRow(row["token_hash"], row["client_name"], row["site_name"], m(row["created_at"]),
                              m(row["expires_at"]), row["uses_left"], m(row["revoked_at"]))
            for row in rows
        ]


class SqlMigrationTx(SqlTx):
    """The migration runner's view of a transaction; a backend adds `run_script`."""

    async def exclude_others(self) -> None:
        """Keep other collectors' migration runs out until this transaction ends (where the writer is not alone)."""

    async def applied(self) -> dict[int, str]:
        """The recorded versions and their names."""
        rows = await self._rows("SELECT version, name FROM schema_migrations")
        return {row["version"]: row["name"] for row in rows}

    async def record(self, migration: Migration, applied_at: datetime) -> None:
        """Record a migration as applied (`applied_at` is text: the table is the same on every backend)."""
        await self._run(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (:version, :name, :at)",
            version=migration.version, name=migration.name, at=iso_text(applied_at),
        )


# Rows as the interface returns them -----------------------------------------------------------------------


def _agent(row: Row, c: Codec) -> AgentRow:
    """An agents row (joined with its site and client) as an AgentRow."""
    return AgentRow(
        agent_id=row["agent_id"],
        public_key=row["public_key"],
        hostname=row["hostname"],
        site=SiteRef(row["client_id"], row["client_name"], row["site_id"], row["site_name"]),
        enrolled_at=c.moment(row["enrolled_at"]),
        last_seen_at=c.moment(row["last_seen_at"]),
        last_seq=row["last_seq"],
        revoked=row["revoked_at"] is not None,
        skew_refusals=row["skew_refusals"],
        last_skew_at=c.moment(row["last_skew_at"]),
        last_skew_seconds=row["last_skew_seconds"],
        reported_class=row["device_class"],
        class_override=row["device_class_override"],
    )


def _hours(row: Row, c: Codec) -> ClientHours:
    """A clients row's own business hours."""
    return ClientHours(row["business_days"], c.time_of_day(row["business_start"]),
                       c.time_of_day(row["business_end"]), row["timezone"])


def _observation(row: Row, c: Codec) -> ObservationRow:
    """An observations row as an ObservationRow."""
    return ObservationRow(row["agent_id"], row["seq"], row["kind"], c.moment(row["collected_at"]),
                          signal_payload(row["payload"]), row["epoch"], row["id"])


def _feed_event(row: Row, c: Codec) -> FeedEvent:
    """A feed_events row as a FeedEvent."""
    return FeedEvent(row["id"], c.moment(row["at"]), row["type"], from_json(row["data"]))


def _push_job(row: Row, c: Codec) -> PushJobRow:
    """A backup_push_jobs row as a PushJobRow."""
    return PushJobRow(
        job_id=row["id"], agent_id=row["agent_id"], name=row["name"], schedule=row["schedule"],
        timezone=row["timezone"], grace_seconds=row["grace_seconds"], created_at=c.moment(row["created_at"]),
        paused_at=c.moment(row["paused_at"]),
    )


def _channel(row: Row, c: Codec) -> ChannelRow:
    """A channels row as a ChannelRow."""
    return ChannelRow(
        channel_id=row["id"], name=row["name"], url=row["url"], min_severity=row["min_severity"],
        clients=tuple(from_json(row["clients"])), kinds=tuple(from_json(row["kinds"])),
        quiet_start=c.time_of_day(row["quiet_start"]), quiet_end=c.time_of_day(row["quiet_end"]),
        timezone=row["timezone"], digest_at=c.time_of_day(row["digest_at"]),
        group_wait=timedelta(seconds=row["group_wait_seconds"]),
        group_interval=timedelta(seconds=row["group_interval_seconds"]),
        repeat_interval=timedelta(seconds=row["repeat_interval_seconds"]),
        last_sent_at=c.moment(row["last_sent_at"]), last_digest_on=c.day(row["last_digest_on"]),
        failures=row["failures"], broken_at=c.moment(row["broken_at"]), broken_reason=row["broken_reason"],
        disabled_at=c.moment(row["disabled_at"]),
    )


def _silence(row: Row, c: Codec) -> Silence:
    """A silences row as a Silence."""
    return Silence(
        silence_id=row["id"], matchers=Matchers(**from_json(row["matchers"])), starts_at=c.moment(row["starts_at"]),
        ends_at=c.moment(row["ends_at"]), cron=row["cron"],
        duration=timedelta(seconds=row["duration_seconds"]) if row["duration_seconds"] is not None else None,
        timezone=row["timezone"], comment=row["comment"], created_by=row["created_by"],
        expired_at=c.moment(row["expired_at"]),
    )


def _alert(row: Row, c: Codec) -> AlertRow:
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
        details=from_json(row["details"]),
        opened_at=c.moment(row["opened_at"]),
        last_seen_at=c.moment(row["last_seen_at"]),
        resolved_at=c.moment(row["resolved_at"]),
        occurrences=row["occurrences"],
        acknowledged_at=c.moment(row["acknowledged_at"]),
        acknowledged_by=row["acknowledged_by"],
        snoozed_until=c.moment(row["snoozed_until"]),
        good_streak=row["good_streak"],
        good_since=c.moment(row["good_since"]),
        flapping=bool(row["flapping"]),
    )


def _technician(row: Row, c: Codec) -> TechnicianRow:
    """A technicians row as a TechnicianRow."""
    return TechnicianRow(row["id"], row["name"], row["password_hash"], c.moment(row["created_at"]), row["role"],
                         row["totp_secret"], row["totp_pending"], row["totp_last_step"])


def _contract(row: Row, c: Codec) -> ContractRow:
    """A contracts row as a ContractRow."""
    return ContractRow(
        row["id"],
        Contract(
            client=row["client_id"],
            effective_from=c.day(row["effective_from"]),
            effective_to=c.day(row["effective_to"]),
            start=c.day(row["start"]),
            term_months=row["term_months"],
            workstation_rate=c.money(row["workstation_rate"]),
            server_rate=c.money(row["server_rate"]),
            covers_remote=bool(row["covers_remote"]),
            covers_onsite=bool(row["covers_onsite"]),
            covers_after_hours=bool(row["covers_after_hours"]),
            included_hours=c.money(row["included_hours"]),
            onboarding_workstation_months=c.money(row["onboarding_workstation_months"]),
            onboarding_server_months=c.money(row["onboarding_server_months"]),
            monthly_fee=c.money(row["monthly_fee"]),
        ),
    )


def _rates(row: Row, c: Codec) -> RatesRow:
    """A breakfix_rates row as a RatesRow."""
    return RatesRow(
        row["id"],
        row["client_id"],
        BreakFixRates(
            effective_from=c.day(row["effective_from"]),
            effective_to=c.day(row["effective_to"]),
            hourly_rate=c.money(row["hourly_rate"]),
            minimum_minutes=row["minimum_minutes"],
            increment_minutes=row["increment_minutes"],
            after_hours_multiplier=c.money(row["after_hours_multiplier"]),
            onsite_minimum_minutes=row["onsite_minimum_minutes"],
            emergency_minimum_minutes=row["emergency_minimum_minutes"],
        ),
    )


def _charge(row: Row, c: Codec) -> Charge:
    """A one-off charge row."""
    return Charge(row["id"], row["client_id"], c.day(row["day"]), row["description"], c.money(row["amount"]))


def _issued(row: Row, c: Codec) -> IssuedInvoiceRow:
    """An issued invoice row."""
    return IssuedInvoiceRow(
        row["number"], row["client_id"], c.day(row["month"]), c.moment(row["issued_at"]), row["issued_by"],
        c.day(row["due"]), from_json(row["body"]), c.moment(row["voided_at"]), row["voided_by"], row["void_reason"],
    )


def _incident(row: Row, c: Codec) -> IncidentRow:
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
        opened_at=c.moment(row["opened_at"]),
        opened_by=row["opened_by"],
        closed_at=c.moment(row["closed_at"]),
        closed_by=row["closed_by"],
        resolution=row["resolution"],
        alert_ids=linked,
    )


def _note(row: Row, c: Codec) -> NoteRow:
    """An incident_notes row as a NoteRow."""
    return NoteRow(row["id"], row["incident_id"], c.moment(row["at"]), row["author"], row["text"])


def _time_entry(row: Row, c: Codec) -> TimeEntryRow:
    """A time_entries row as a TimeEntryRow."""
    return TimeEntryRow(
        entry_id=row["id"],
        incident_id=row["incident_id"],
        technician=row["technician"],
        started_at=c.moment(row["started_at"]),
        stopped_at=c.moment(row["stopped_at"]),
        minutes=row["minutes"],
        on_site=bool(row["on_site"]),
        after_hours=bool(row["after_hours"]),
        override=row["override"],
        override_reason=row["override_reason"],
        note=row["note"],
    )


def _part(row: Row, c: Codec) -> Part:
    """A parts row as a Part."""
    return Part(
        id=row["id"],
        incident_id=row["incident_id"],
        day=c.day(row["day"]),
        description=row["description"],
        cost=c.money(row["cost"]),
        price=c.money(row["price"]),
        quantity=row["quantity"],
    )


def _network_device(row: Row) -> NetworkDeviceRow:
    """A network_devices row as the store hands it out."""
    fields = ("name", "address", "kind", "probe", "port", "url", "expect_status", "tls_days", "hours")
    return NetworkDeviceRow(row["id"], row["site_id"], Target(**{name: row[name] for name in fields}))
