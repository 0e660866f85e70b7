"""The store interface: every backend (SQLite now, PostgreSQL at scale) implements `Store` and `Tx`.

Nothing outside `collector/store/` knows which backend runs. All reads and writes happen inside
`Store.transaction()`, so one ingest (report, observations, alert changes, feed events) commits whole
or not at all.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

Severity = Literal["warning", "critical", "unknown"]
AlertState = Literal["open", "resolved"]


class EnrolmentRefused(Exception):
    """An enrolment token was unknown, expired, revoked or used up; the message says which."""


@dataclass(frozen=True)
class SiteRef:
    """A client's site, as an agent belongs to it."""

    client_id: int
    client_name: str
    site_id: int
    site_name: str


@dataclass(frozen=True)
class ClientRow:
    """A client with its sites and how many devices each has."""

    client_id: int
    name: str
    sites: list[tuple[str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class AgentRow:
    """An enrolled device."""

    agent_id: str
    public_key: bytes
    hostname: str
    site: SiteRef
    enrolled_at: datetime
    last_seen_at: datetime | None = None
    last_seq: int = 0
    revoked: bool = False


@dataclass(frozen=True)
class ObservationRow:
    """One stored signal."""

    agent_id: str
    seq: int
    kind: str
    collected_at: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class AlertRow:
    """An alert: one per fingerprint while open."""

    alert_id: int
    fingerprint: str
    rule: str
    agent_id: str
    subject: str
    severity: Severity
    state: AlertState
    summary: str
    details: dict[str, Any]
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    occurrences: int


@dataclass(frozen=True)
class FeedEvent:
    """One entry of the live feed; `event_id` increases and is the SSE event id."""

    event_id: int
    at: datetime
    type: str
    data: dict[str, Any]


class Tx(Protocol):
    """Operations available inside one transaction."""

    async def site(self, client: str, site: str) -> SiteRef:
        """The site, creating the client and site on first use."""

    async def clients(self) -> list[ClientRow]:
        """All clients, their sites and device counts, by name."""

    async def add_enrolment_token(
        self, token_hash: str, site: SiteRef, created_at: datetime, expires_at: datetime | None, uses: int | None
    ) -> None:
        """Record a new enrolment token (only its hash is stored)."""

    async def consume_enrolment_token(self, token_hash: str, now: datetime) -> SiteRef:
        """Use one enrolment of the token, or raise EnrolmentRefused saying why."""

    async def revoke_enrolment_token(self, token_hash: str, at: datetime) -> bool:
        """Stop a token from enrolling anything more; False when it is unknown or was revoked before."""

    async def add_agent(self, agent: AgentRow) -> None:
        """Record a newly enrolled agent."""

    async def revoke_agent(self, agent_id: str, at: datetime) -> bool:
        """Refuse the agent's requests from now on; False when it is unknown or was revoked before."""

    async def agent(self, agent_id: str) -> AgentRow | None:
        """One agent, or None."""

    async def agents(self) -> list[AgentRow]:
        """All agents, by client, site and hostname."""

    async def record_envelope(
        self, agent_id: str, seq: int, boot_id: str, sent_at: datetime, received_at: datetime,
        rows: list[tuple[str, datetime, str]],
    ) -> bool:
        """Store an envelope and its signals as (kind, collected_at, payload JSON) rows.

        False, and nothing written, when (agent_id, seq) was stored before.
        """

    async def touch_agent(
        self, agent_id: str, seen_at: datetime, seq: int, hostname: str | None
    ) -> datetime | None:
        """Update when the agent was last heard from (never moving backwards); returns the previous time."""

    async def observations(self, agent_id: str, kind: str, limit: int) -> list[ObservationRow]:
        """The agent's latest observations of a kind, newest first."""

    async def site_observations(self, site_id: int, kind: str, since: datetime) -> list[tuple[str, ObservationRow]]:
        """Observations of a kind from every device of a site collected since a time, newest first,
        each with its device's hostname."""

    async def open_alert(self, fingerprint: str) -> AlertRow | None:
        """The open alert with this fingerprint, if any."""

    async def open_alerts_of(self, agent_id: str) -> list[AlertRow]:
        """The agent's open alerts."""

    async def insert_alert(
        self, fingerprint: str, rule: str, agent_id: str, subject: str, severity: Severity, summary: str,
        details: dict[str, Any], at: datetime,
    ) -> AlertRow | None:
        """Open an alert; None when another writer opened one for this fingerprint first."""

    async def update_alert(
        self, alert_id: int, severity: Severity, summary: str, details: dict[str, Any], at: datetime
    ) -> AlertRow:
        """Record a repeat evaluation: severity, summary, details, last seen, one more occurrence."""

    async def resolve_alert(self, alert_id: int, at: datetime) -> AlertRow | None:
        """Resolve an open alert; None when it was not open any more."""

    async def alerts(self, state: AlertState | None) -> list[AlertRow]:
        """Alerts in a state (all when None), newest first."""

    async def add_alert_event(
        self, alert_id: int, at: datetime, type: str, actor: str, detail: dict[str, Any]
    ) -> None:
        """Append to an alert's history."""

    async def alert_events(self, alert_id: int) -> list[tuple[datetime, str, str, dict[str, Any]]]:
        """An alert's history, oldest first, as (at, type, actor, detail)."""

    async def append_feed(self, at: datetime, type: str, data: dict[str, Any]) -> FeedEvent:
        """Add an event to the live feed."""

    async def feed_since(self, after_id: int, limit: int) -> list[FeedEvent]:
        """Feed events with id greater than `after_id`, oldest first."""

    async def feed_last_id(self) -> int:
        """The id of the newest feed event, 0 when there is none."""

    async def get_meta(self, key: str) -> str | None:
        """A collector-wide value."""

    async def set_meta(self, key: str, value: str) -> None:
        """Set a collector-wide value."""


class Store(Protocol):
    """A database the collector keeps everything in."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Close the connection(s)."""

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction: committed when the block ends normally, rolled back on an exception."""


def open_store(url: str) -> Store:
    """The store for a database URL or path (`sqlite:///path`, a plain path, or `:memory:`)."""
    from collector.store.sqlite import SqliteStore

    path = url.removeprefix("sqlite://")
    return SqliteStore(path)
