"""The store interface: every backend (SQLite now, PostgreSQL at scale) implements `Store` and `Tx`.

Nothing outside `collector/store/` knows which backend runs. Writes happen inside
`Store.transaction()`, so one ingest (report, observations, alert changes, feed events) commits whole
or not at all; `Store.read()` is a read-only view that never waits for the writer. Both backends share
one implementation of `Tx` (`collector/store/sql.py`); the contracts are documented here, once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from collector.store.report_rows import ReportTx
from collector.store.unreadable import Unreadable, observation_name
from shared import device_class as classes
from shared.reachability import Target
from shared.wire import LEGACY_EPOCH

if TYPE_CHECKING:
    from decimal import Decimal

    from collector.alerts.silence import Silence
    from collector.billing.model import BreakFixRates, Charge, Classification, Contract, DeviceClass, Part
    from collector.rules import KnownDisk
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

Severity = Literal["warning", "critical", "unknown"]
AlertState = Literal["open", "resolved"]
PingKind = Literal["start", "success", "warning", "fail"]


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
class NetworkDeviceRow:
    """A device without an agent declared for a site (`reachability`), and how it is probed."""

    device_id: int
    site_id: int
    target: Target


@dataclass(frozen=True)
class EscrowPolicy:
    """A client's recovery-key escrow switch: on or off, the round devices send keys for, who changed it, when."""

    enabled: bool
    round: int
    changed_at: datetime
    changed_by: str


@dataclass(frozen=True)
class EscrowedKeyRow:
    """One recovery password escrowed by a device, as sealed on the device (the collector never opens it here)."""

    agent_id: str
    volume: str
    protector_id: str
    sealed: str
    escrowed_at: datetime


@dataclass(frozen=True)
class ClientHours:
    """A client's own business hours as stored: each part None where the collector's default applies."""

    days: str | None = None
    start: time | None = None
    end: time | None = None
    timezone: str | None = None


@dataclass(frozen=True)
class ContactRow:
    """A person at a client: how to reach them, and whether invoices and reports go to them."""

    contact_id: int
    name: str
    email: str | None = None
    phone: str | None = None
    role: str = ""
    billing: bool = False


@dataclass(frozen=True)
class ClientDetails:
    """What the technician keeps about a client besides its name: billing e-mail and address, notes."""

    billing_email: str | None = None
    billing_address: str | None = None
    notes: str = ""


@dataclass(frozen=True)
class ClientRow:
    """A client with its (active) sites and how many devices each has, its contacts and billing details."""

    client_id: int
    name: str
    sites: list[tuple[str, int]] = field(default_factory=list)
    hours: ClientHours = field(default_factory=ClientHours)
    details: ClientDetails = field(default_factory=ClientDetails)
    contacts: list[ContactRow] = field(default_factory=list)
    archived_sites: list[str] = field(default_factory=list)
    archived_at: datetime | None = None
    demo: bool = False

    @property
    def billable(self) -> bool:
        """True unless the client is archived or the demo client: only billable clients are invoiced."""
        return self.archived_at is None and not self.demo

    @property
    def billing_contact(self) -> ContactRow | None:
        """The contact that invoices and reports go to, if one is marked."""
        return next((c for c in self.contacts if c.billing), None)


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
    # Requests refused because the device's clock was off, the last of them, and by how much (+ ahead).
    skew_refusals: int = 0
    last_skew_at: datetime | None = None
    last_skew_seconds: int | None = None
    # What the agent says the device is, and what a technician said instead (which wins).
    reported_class: classes.DeviceClass | None = None
    class_override: classes.DeviceClass | None = None

    @property
    def device_class(self) -> classes.DeviceClass | None:
        """The class the device is judged by: the technician's override, else the agent's, else None."""
        return self.class_override or self.reported_class


@dataclass(frozen=True)
class EnvelopeRow:
    """An envelope as ingest stores it: its signals as (kind, collected_at, payload JSON) rows."""

    agent_id: str
    seq: int
    boot_id: str
    sent_at: datetime
    received_at: datetime
    rows: list[tuple[str, datetime, str]]
    epoch: str = LEGACY_EPOCH


@dataclass(frozen=True)
class Contact:
    """An agent heard from: when, its newest sequence number, and the hostname it reported (if any)."""

    agent_id: str
    seen_at: datetime
    seq: int
    hostname: str | None


@dataclass(frozen=True)
class ObservationRow:
    """One stored signal."""

    agent_id: str
    seq: int
    kind: str
    collected_at: datetime
    payload: dict[str, Any]
    epoch: str = LEGACY_EPOCH
    # Which row it is (how an unreadable one is named and counted once); not part of what was observed.
    row_id: int = field(default=0, compare=False)

    @property
    def what(self) -> str:
        """The row as Unreadable names it."""
        return observation_name(self.row_id)


@dataclass(frozen=True)
class EpochRow:
    """One stream of an agent's reports: from which sequence number and since when."""

    epoch: str
    first_seq: int
    first_at: datetime


@dataclass(frozen=True)
class AlertOwner:
    """What an alert is about: a device, a whole site (agent_id None) or the collector (both None)."""

    agent_id: str | None
    site_id: int | None
    client: str
    site: str
    hostname: str


@dataclass(frozen=True)
class AlertRow:
    """An alert: one per fingerprint while open."""

    alert_id: int
    fingerprint: str
    rule: str
    owner: AlertOwner
    subject: str
    severity: Severity
    state: AlertState
    summary: str
    details: dict[str, Any]
    opened_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    occurrences: int
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    snoozed_until: datetime | None = None
    good_streak: int = 0
    good_since: datetime | None = None
    flapping: bool = False

    @property
    def agent_id(self) -> str | None:
        """The device the alert is about, if it is about one."""
        return self.owner.agent_id


@dataclass(frozen=True)
class ChannelRow:
    """A notification channel: where messages go, which alerts, and when."""

    channel_id: int
    name: str
    url: str
    min_severity: Literal["warning", "critical"]
    clients: tuple[str, ...]
    kinds: tuple[str, ...]
    quiet_start: time | None
    quiet_end: time | None
    timezone: str
    digest_at: time | None
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    last_sent_at: datetime | None = None
    last_digest_on: date | None = None
    failures: int = 0
    broken_at: datetime | None = None
    broken_reason: str | None = None
    disabled_at: datetime | None = None

    @property
    def working(self) -> bool:
        """Neither broken nor switched off: messages go to it."""
        return self.broken_at is None and self.disabled_at is None


@dataclass(frozen=True)
class QueuedNotification:
    """A notification waiting in the queue, with the alert as it is now."""

    notification_id: int
    channel_id: int
    alert: AlertRow
    event: str
    created_at: datetime
    due_at: datetime
    reason: str
    attempts: int


@dataclass(frozen=True)
class FeedEvent:
    """One entry of the live feed; `event_id` increases and is the SSE event id."""

    event_id: int
    at: datetime
    type: str
    data: dict[str, Any]


@dataclass(frozen=True)
class PushJobRow:
    """A backup job that reports by calling its push URL; it protects one device."""

    job_id: int
    agent_id: str
    name: str
    schedule: str
    timezone: str
    grace_seconds: float | None
    created_at: datetime
    # Paused: its pings are kept but it is not judged (no alert) until resumed.
    paused_at: datetime | None = None


@dataclass(frozen=True)
class PingRow:
    """One call of a push URL: a run started, or ended well, with warnings, or failed.

    `size_bytes` is the size of the backup as the script reported it; `log` the end of what it sent.
    """

    at: datetime
    kind: PingKind
    size_bytes: int | None
    log: str | None


@dataclass(frozen=True)
class PushJobState:
    """A push job and what its pings tell.

    `run_started_at` is the start ping right before `last_end` (when the script sent one), so it is the
    start of that run; `recent_good` holds the newest success or warning pings, newest first (at most 2).
    """

    job: PushJobRow
    last_start: PingRow | None
    last_end: PingRow | None
    run_started_at: datetime | None
    recent_good: tuple[PingRow, ...]


class Tx(ReportTx, Protocol):
    """Operations available inside one transaction."""

    # The rows met that could not be used, shared by every transaction of the store.
    unreadable: Unreadable

    async def site(self, client: str, site: str) -> SiteRef:
        """The site, creating the client and site on first use."""

    async def clients(self, archived: bool = False) -> list[ClientRow]:
        """Active clients (`archived`: all of them), their sites, device counts and contacts, by name."""

    async def client(self, client_id: int) -> ClientRow | None:
        """One client, archived or not, with its archived sites too, or None."""

    async def add_client(self, name: str, demo: bool) -> int | None:
        """A new client's id, or None when the name is taken."""

    async def rename_client(self, client_id: int, name: str) -> None:
        """Give the client another name (the caller checked it is free); channels and silences that name the
        client follow."""

    async def set_client_details(self, client_id: int, details: ClientDetails) -> None:
        """Replace the client's billing e-mail, billing address and notes."""

    async def set_client_flags(self, client_id: int, archived_at: datetime | None, demo: bool) -> None:
        """Archive (a moment) or restore (None) the client, and mark it as the demo client or not."""

    async def site_id(self, client_id: int, name: str) -> int | None:
        """The id of the client's site with this name (archived or not), or None."""

    async def add_site(self, client_id: int, name: str) -> int | None:
        """A new site's id, or None when the client has a site of that name."""

    async def rename_site(self, site_id: int, name: str) -> None:
        """Give the site another name (the caller checked it is free)."""

    async def set_site_archived(self, site_id: int, archived_at: datetime | None) -> None:
        """Archive (a moment) or restore (None) a site."""

    async def add_contact(self, client_id: int, contact: ContactRow) -> int | None:
        """A new contact's id (the contact_id given is ignored), or None when the client has one of that name;
        a billing contact takes the mark from any other."""

    async def update_contact(self, client_id: int, contact: ContactRow) -> None:
        """Replace one of the client's contacts (the caller checked it exists and its name is free); a billing
        contact takes the mark from any other."""

    async def remove_contact(self, client_id: int, contact_id: int) -> bool:
        """Remove one of the client's contacts; False when it has none with that id."""

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

    async def reporting_agents(self, agent_ids: list[str]) -> dict[str, tuple[AgentRow, bool]]:
        """Those of the agents that exist, by id, each with whether it has an open alert (ingest reads a
        group's agents in this one query, in the transaction that stores their reports)."""

    async def agents(self) -> list[AgentRow]:
        """All agents, by client, site and hostname."""

    async def record_envelope(
        self, agent_id: str, seq: int, boot_id: str, sent_at: datetime, received_at: datetime,
        rows: list[tuple[str, datetime, str]], *, epoch: str = LEGACY_EPOCH,
    ) -> bool:
        """Store an envelope and its signals as (kind, collected_at, payload JSON) rows.

        False, and nothing written, when (agent_id, epoch, seq) was stored before.
        """

    async def record_envelopes(self, envelopes: list[EnvelopeRow]) -> list[bool]:
        """`record_envelope` for each envelope, in order, in one trip to the database where the backend can."""

    async def note_skew(self, agent_id: str, at: datetime, offset_seconds: int) -> bool:
        """Count a request of the agent refused because its clock was `offset_seconds` off (+ ahead);
        True when it is the first such refusal since the agent was last heard from."""

    async def note_epoch(self, agent_id: str, epoch: str, seq: int, at: datetime) -> bool:
        """Record that the agent reports in this stream from `seq` on; True when the stream is new."""

    async def agent_epochs(self, agent_id: str) -> list[EpochRow]:
        """The streams the agent has reported in, newest first."""

    async def find_site(self, client: str, site: str) -> SiteRef | None:
        """The site by its client's and its own name, or None (never created, unlike `site`)."""

    async def network_devices(self, site_id: int) -> list[NetworkDeviceRow]:
        """The devices without an agent declared for the site, by name."""

    async def add_network_device(self, site_id: int, target: Target, at: datetime) -> NetworkDeviceRow | None:
        """Declare a device for the site; None when the site already has one of that name."""

    async def remove_network_device(self, site_id: int, name: str) -> bool:
        """Forget the site's device of that name; False when there is none."""

    async def dismissed_candidates(self, site_id: int) -> set[str]:
        """The hardware addresses of the site's candidates the technician dismissed."""

    async def dismiss_candidate(self, site_id: int, mac: str, address: str, at: datetime) -> bool:
        """Stop offering the site's candidate with this hardware address; False when it was dismissed already."""

    async def config_version(self, site_id: int, bump: bool = False) -> int:
        """The site's configuration version, one higher first when `bump` (a change to what agents probe)."""

    async def site_ids(self, client_id: int) -> list[int]:
        """The client's sites' ids."""

    async def escrow_policy(self, client_id: int) -> EscrowPolicy | None:
        """The client's escrow switch, or None when nobody ever turned it on (off)."""

    async def set_escrow_policy(self, client_id: int, enabled: bool, at: datetime, by: str,
                                next_round: bool) -> EscrowPolicy:
        """Turn the client's escrow on or off (`next_round`: its devices send their keys again)."""

    async def next_escrow_round(self, client_id: int) -> None:
        """Ask the client's devices for their keys again (after a purge), leaving who turned escrow on as it is."""

    async def save_escrowed_keys(self, agent_id: str, keys: Sequence[tuple[str, str, str]], at: datetime) -> None:
        """Keep sealed keys (volume, protector id, sealed JSON), each in place of one kept for the same protector."""

    async def escrowed_keys(self, agent_id: str) -> list[EscrowedKeyRow]:
        """The device's escrowed keys, by volume and time."""

    async def purge_escrowed_keys(self, client_id: int) -> int:
        """Delete every key escrowed by the client's devices; how many were deleted."""

    async def known_disks(self, agent_id: str) -> list[KnownDisk]:
        """The disks the device had as stored after its previous report (empty where none are stored)."""

    async def save_known_disks(self, agent_id: str, disks: Sequence[KnownDisk]) -> None:
        """Store the device's disks after a report, in place of those stored before."""

    async def touch_agent(
        self, agent_id: str, seen_at: datetime, seq: int, hostname: str | None
    ) -> datetime | None:
        """Update when the agent was last heard from (never moving backwards); returns the previous time."""

    async def touch_agents(self, contacts: list[Contact]) -> list[datetime | None]:
        """`touch_agent` for each contact, in order, in one trip to the database where the backend can."""

    async def set_reported_class(self, agent_id: str, device_class: classes.DeviceClass) -> None:
        """Keep the class the agent reports (written only when it differs from the stored one)."""

    async def set_class_override(self, agent_id: str, device_class: classes.DeviceClass | None) -> bool:
        """Override the device's class (None: back to the agent's); False for an unknown device."""

    async def client_hours(self) -> dict[int, ClientHours]:
        """Every client's own business hours, by client id."""

    async def client_zone(self, client_id: int) -> str | None:
        """The IANA time zone of the client's own business hours; None where it has none (or no such client)."""

    async def set_client_hours(self, client_id: int, hours: ClientHours) -> None:
        """Replace the client's own business hours (None parts: the collector's defaults)."""

    async def observations(self, agent_id: str, kind: str, limit: int) -> list[ObservationRow]:
        """The agent's latest observations of a kind, newest first."""

    async def site_observations(
        self, site_id: int, kind: str, since: datetime, until: datetime, per_device: int, limit: int
    ) -> list[tuple[str, ObservationRow]]:
        """Observations of a kind from every device of a site collected between two times, newest first,
        each with its device's hostname: at most `per_device` of each device and `limit` in all."""

    async def open_alert(self, fingerprint: str) -> AlertRow | None:
        """The open alert with this fingerprint, if any."""

    async def open_alerts_of(self, agent_id: str) -> list[AlertRow]:
        """The agent's open alerts (not its site's)."""

    async def insert_alert(
        self, fingerprint: str, rule: str, owner: AlertOwner, subject: str, severity: Severity, summary: str,
        details: dict[str, Any], at: datetime,
    ) -> AlertRow | None:
        """Open an alert; None when another writer opened one for this fingerprint first."""

    async def update_alert(
        self, alert_id: int, severity: Severity, summary: str, details: dict[str, Any], at: datetime
    ) -> AlertRow:
        """Record a repeat bad evaluation: severity, summary, details, last seen, one more occurrence;
        the run of good evaluations starts again."""

    async def record_good(self, alert_id: int, at: datetime) -> AlertRow:
        """Count one more good evaluation of an open alert (hysteresis before resolving)."""

    async def resolve_alert(self, alert_id: int, at: datetime) -> AlertRow | None:
        """Resolve an open alert; None when it was not open any more."""

    async def reopen_alert(self, fingerprint: str, resolved_since: datetime, at: datetime) -> AlertRow | None:
        """Reopen the alert with this fingerprint resolved at or after `resolved_since`, if there is one
        (the occurrence is counted by the `update_alert` that follows)."""

    async def last_resolved_at(self, fingerprint: str) -> datetime | None:
        """When the newest resolved alert of the fingerprint was resolved; None: none ever was."""

    async def alert(self, alert_id: int) -> AlertRow | None:
        """One alert, or None."""

    async def acknowledge(self, alert_id: int, by: str, at: datetime) -> AlertRow | None:
        """Mark an open alert acknowledged; None when it is not open or was acknowledged before."""

    async def snooze(self, alert_id: int, until: datetime | None) -> AlertRow | None:
        """Hold an open alert's notifications until a time (None ends the snooze); None when not open."""

    async def set_flapping(self, alert_id: int, flapping: bool) -> AlertRow:
        """Mark or clear an alert as flapping."""

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

    async def recent_feed(self, type: str, since: datetime, limit: int) -> list[FeedEvent]:
        """The newest feed events of one type at or after `since`, newest first, at most `limit`."""

    async def feed_last_id(self) -> int:
        """The id of the newest feed event, 0 when there is none."""

    async def add_push_job(
        self, token_hash: str, agent_id: str, name: str, schedule: str, timezone: str,
        grace_seconds: float | None, created_at: datetime,
    ) -> PushJobRow | None:
        """Record a push job (only its token's hash); None when the device has a push job of that name."""

    async def push_jobs(self) -> list[PushJobState]:
        """Every push job (not deleted) with what its pings tell, by device and name."""

    async def pause_push_job(self, job_id: int, at: datetime | None) -> PushJobRow | None:
        """Pause the job from `at` (None: resume it); None for an unknown or deleted job, or one paused (resumed)
        already: the update is conditional, so of two at once only one changes it."""

    async def delete_push_job(self, job_id: int, at: datetime) -> PushJobRow | None:
        """Delete the job: its URL is refused and it leaves every list, its pings stay for the value report;
        None for an unknown or deleted job."""

    async def recent_pings(self, per_job: int) -> dict[int, list[PingRow]]:
        """Each push job's newest pings (at most `per_job`), newest first, by job id."""

    async def record_ping(
        self, token_hash: str, at: datetime, kind: PingKind, size_bytes: int | None, log: str | None
    ) -> PushJobState | None:
        """Store a ping of the job with this token and return the job's state; None for an unknown token (or
        a deleted job's).

        Only a job's latest pings are kept (and always its two newest good ones).
        """

    async def add_channel(self, channel: ChannelRow, at: datetime) -> ChannelRow:
        """Create a channel (its `channel_id` is assigned); ValueError when the name is taken."""

    async def channels(self) -> list[ChannelRow]:
        """Every channel, by name."""

    async def record_delivery(
        self, channel_id: int, at: datetime, ok: bool, items: int, title: str, error: str | None
    ) -> ChannelRow:
        """Log one delivery attempt; success resets the channel's failure count and marks when it last sent."""

    async def update_channel(self, channel: ChannelRow) -> ChannelRow:
        """Replace the channel's settings (by `channel_id`); it counts as working again (ValueError: name taken)."""

    async def disable_channel(self, channel_id: int, at: datetime | None) -> ChannelRow | None:
        """Switch the channel off (`at`) or on again (None); None for an unknown channel."""

    async def delete_channel(self, channel_id: int) -> None:
        """Remove the channel with its queue and its delivery log."""

    async def mark_channel_broken(self, channel_id: int, at: datetime, reason: str) -> None:
        """Stop using a channel until a technician fixes it."""

    async def mark_digest_sent(self, channel_id: int, day: date) -> None:
        """Remember that a channel's digest for a day went out."""

    async def add_silence(self, silence: Silence, at: datetime) -> Silence:
        """Record a silence (its `silence_id` is assigned)."""

    async def silences(self) -> list[Silence]:
        """Every silence that was not expired by hand, newest first."""

    async def expire_silence(self, silence_id: int, at: datetime) -> bool:
        """End a silence now and release the notifications held for silences (the dispatcher checks the
        remaining silences again); False when there is none or it was expired before."""

    async def enqueue(self, rows: list[tuple[int, int, str, datetime, datetime, str]]) -> None:
        """Queue notifications as (channel_id, alert_id, event, created_at, due_at, reason)."""

    async def due_notifications(self, now: datetime) -> list[QueuedNotification]:
        """Pending notifications due by `now`, oldest first."""

    async def claim(self, notification_ids: list[int], claimer: str) -> list[int]:
        """Take pending notifications for sending; returns the ids this claimer got (another may have won)."""

    async def finish(
        self, notification_ids: list[int], state: str, at: datetime, error: str | None = None,
        retry_at: datetime | None = None,
    ) -> None:
        """Mark claimed notifications sent, failed or dropped, or (with `retry_at`) pending again."""

    async def last_notified(self, alert_id: int, channel_id: int, sent_only: bool) -> datetime | None:
        """When the alert was last queued for the channel (sent or waiting; only sent with `sent_only`)."""

    async def alert_events_since(self, since: datetime) -> list[tuple[AlertRow, datetime, str]]:
        """Every alert change since a time, as (alert now, when, what), oldest first."""

    async def get_meta(self, key: str) -> str | None:
        """A collector-wide value."""

    async def set_meta(self, key: str, value: str) -> None:
        """Set a collector-wide value."""

    async def claim_meta(self, key: str, value: str) -> str:
        """Set a collector-wide value unless it is set already; the value that stands (two collectors racing
        to create the same key both end up with the winner's)."""

    # Billing ---------------------------------------------------------------------------------------------

    async def client_id(self, name: str) -> int | None:
        """The id of the client with this name, or None."""

    async def set_device_billing(
        self,
        agent_id: str,
        device_class: DeviceClass,
        contact: str,
        active_from: date | None,
        active_to: date | None,
    ) -> bool:
        """Set a device's class, contact and (optionally) managed days; False when there is no such device."""

    async def billing_devices(self, client_id: int) -> list[DeviceBillingRow]:
        """The client's enrolled devices with their billing facts, by hostname."""

    async def add_contract(self, client_id: int, contract: Contract, at: datetime) -> ContractRow:
        """Record a contract version; ValueError when the client has one taking effect that day."""

    async def contracts(self, client_id: int) -> list[ContractRow]:
        """The client's contract versions, oldest first."""

    async def add_rates(self, client_id: int | None, rates: BreakFixRates, at: datetime) -> RatesRow:
        """Record a rate card version (client None: for everyone); ValueError when one starts that day."""

    async def rate_cards(self) -> list[RatesRow]:
        """Every rate card version, oldest first."""

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

    async def incident(self, incident_id: int) -> IncidentRow | None:
        """One incident, or None."""

    async def incident_of_alert(self, alert_id: int) -> int | None:
        """The incident an alert belongs to, if any."""

    async def incidents(
        self,
        client_id: int | None,
        status: IncidentStatus | None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[IncidentRow]:
        """Incidents (of a client, in a status, opened from `since` to before `until`), oldest first."""

    async def link_alert(self, incident_id: int, alert_id: int, at: datetime) -> bool:
        """Add an alert to an incident; False when the alert belongs to an incident already."""

    async def close_incident(
        self, incident_id: int, at: datetime, by: str, resolution: str
    ) -> IncidentRow | None:
        """Close an open incident; None when it is not open."""

    async def retitle_incident(self, incident_id: int, title: str) -> IncidentRow | None:
        """Give an incident a new title; None when there is no such incident."""

    async def add_incident_note(self, incident_id: int, at: datetime, author: str, text: str) -> NoteRow:
        """Add a note to an incident."""

    async def incident_notes(self, incident_id: int) -> list[NoteRow]:
        """An incident's notes, oldest first."""

    async def start_timer(
        self, incident_id: int, technician: str, at: datetime, on_site: bool, after_hours: bool
    ) -> TimeEntryRow | None:
        """Start the technician's timer on an incident; None when it is running already."""

    async def stop_timer(self, incident_id: int, technician: str, at: datetime) -> TimeEntryRow | None:
        """Stop the technician's running timer, counting every started minute; None when none runs."""

    async def add_time_entry(self, entry: TimeEntryRow) -> TimeEntryRow:
        """Record finished time (its `entry_id` is assigned)."""

    async def override_time_entry(
        self, entry_id: int, override: Classification | None, reason: str | None
    ) -> TimeEntryRow | None:
        """Set or clear an entry's classification override; None when there is no such entry."""

    async def delete_part(self, part_id: int) -> Part | None:
        """Delete a part; the deleted part, or None when there was none."""

    async def add_charge(self, client_id: int, day: date, description: str, amount: Decimal, at: datetime,
                         by: str) -> Charge:
        """Record a one-off charge for a client (invoiced in the month of `day`)."""

    async def charges(self, client_id: int) -> list[Charge]:
        """A client's one-off charges, by day."""

    async def add_audit(self, at: datetime, actor: str, address: str, action: str, target: str, status: int,
                        detail: dict[str, Any]) -> None:
        """Record a person's change or login attempt in the audit log."""

    async def audit_log(self, limit: int, before: int | None = None) -> list[AuditEntry]:
        """The newest audit entries (older than entry `before`, when given), newest first."""

    async def client_tax(self, client_id: int) -> ClientTax | None:
        """A client's own tax terms, or None when it has none (the default rate applies)."""

    async def set_client_tax(self, client_id: int, tax: ClientTax) -> None:
        """Store a client's own tax terms (a rate of None and no exemption: back to the default rate)."""

    async def issue_invoice(
        self, client_id: int, month: date, prefix: str, at: datetime, by: str, due: date, body: dict[str, Any]
    ) -> IssuedInvoiceRow | None:
        """Store an issued invoice under the next number (`prefix` + sequence; `body["number"]` is set to it);
        None when the client's month has a live invoice already."""

    async def issued_invoices(self, client_id: int | None = None, month: date | None = None) -> list[IssuedInvoiceRow]:
        """Issued invoices (of a client, of a month), voided ones too, in issue order."""

    async def issued_invoice(self, number: str) -> IssuedInvoiceRow | None:
        """The issued invoice with this number, or None."""

    async def void_invoice(self, number: str, at: datetime, by: str, reason: str) -> IssuedInvoiceRow | None:
        """Void a live invoice (it keeps its number); None when there is no live invoice with this number."""

    async def time_entry(self, entry_id: int) -> TimeEntryRow | None:
        """One time entry, or None."""

    async def edit_time_entry(self, entry: TimeEntryRow) -> TimeEntryRow | None:
        """Replace a finished entry's start, minutes, place, hours and note; None when there is none to edit."""

    async def delete_time_entry(self, entry_id: int) -> TimeEntryRow | None:
        """Delete a time entry; the deleted entry, or None when there was none."""

    async def time_entries(
        self, client_id: int | None = None, incident_id: int | None = None
    ) -> list[TimeEntryRow]:
        """Time entries of a client or an incident (running ones too), by start."""

    async def add_part(self, part: Part) -> Part:
        """Record a part fitted for an incident (its `id` is assigned)."""

    async def parts(self, client_id: int | None = None, incident_id: int | None = None) -> list[Part]:
        """Parts of a client or an incident, by day."""

    async def client_feed_events(
        self, client: str, types: list[str], since: datetime, until: datetime
    ) -> list[FeedEvent]:
        """Feed events of these types about the client's devices, `since` to before `until`, oldest first."""

    async def backups_verified(self, client_id: int, since: datetime, until: datetime) -> int:
        """Distinct successful backup runs of the client's devices that ended from `since` to before `until`
        (as backup_results reports and push-URL success pings tell)."""

    # Technician accounts ---------------------------------------------------------------------------------

    async def add_technician(self, name: str, password_hash: str, at: datetime,
                             role: Role | None) -> TechnicianRow | None:
        """Create an account; None when the name is taken. Role None: the first account is the owner, the
        others technicians (decided by the database, so two first accounts at once cannot both be owners)."""

    async def technician(self, name: str) -> TechnicianRow | None:
        """The technician with this name, or None."""

    async def set_password(self, technician_id: int, password_hash: str, end_sessions: bool) -> None:
        """Replace a technician's password hash; `end_sessions` logs out every browser of theirs."""

    async def add_web_session(
        self, token_hash: str, technician_id: int, csrf_token: str, created_at: datetime, expires_at: datetime,
        address: str = "", user_agent: str = "",
    ) -> None:
        """Record a logged-in browser (only its cookie's hash, where from, which browser); expired sessions
        are cleared meanwhile."""

    async def web_session(self, token_hash: str, now: datetime) -> WebSessionRow | None:
        """The unexpired session whose cookie has this hash, or None."""

    async def touch_web_session(self, token_hash: str, at: datetime) -> None:
        """Note that a session was used now."""

    async def web_sessions(self, technician_id: int | None, now: datetime) -> list[SessionListing]:
        """The unexpired sessions of one person (None: of everyone), by name, newest first."""

    async def end_web_session(self, token_hash: str, technician_id: int | None = None) -> bool:
        """Log a browser out (only if it is this person's, when one is given); False when there was none."""

    async def add_login_challenge(self, token_hash: str, technician_id: int, now: datetime,
                                  expires_at: datetime) -> None:
        """Remember that a browser gave the right password and owes the code (expired ones are cleared)."""

    async def login_challenge(self, token_hash: str, now: datetime) -> TechnicianRow | None:
        """The account an unexpired challenge with this cookie hash is for, or None."""

    async def end_login_challenge(self, token_hash: str) -> None:
        """Forget a challenge (answered or given up)."""

    async def set_totp_pending(self, technician_id: int, secret: str | None) -> None:
        """Keep (or drop) the secret a person is enrolling, until a code from it confirms it."""

    async def enable_totp(self, technician_id: int, secret: str, step: int, code_hashes: list[str]) -> None:
        """Turn two-factor on with this secret (its code of `step` used) and these recovery codes only."""

    async def disable_totp(self, technician_id: int) -> bool:
        """Turn two-factor off and drop the recovery codes; False when it was off already."""

    async def accept_totp_step(self, technician_id: int, step: int) -> bool:
        """Spend a code's 30 s step: False when this or a later step was spent already (a replay)."""

    async def use_recovery_code(self, technician_id: int, code_hash: str, at: datetime) -> bool:
        """Spend a recovery code: False when it is unknown or spent."""

    async def recovery_codes_left(self, technician_id: int) -> int:
        """How many unspent recovery codes a person has."""

    async def login_failures(self, scope: str, subject: str) -> tuple[int, datetime] | None:
        """Failed logins in a row for an account or an address, and the last one's time; None: none."""

    async def add_login_failure(self, scope: str, subject: str, at: datetime, forget_before: datetime) -> None:
        """Count one more failed login (failures last seen before `forget_before` are dropped first)."""

    async def clear_login_failures(self, scope: str, subject: str) -> None:
        """Forgive an account's or address's failed logins."""

    async def enrolment_tokens(self) -> list[EnrolmentTokenRow]:
        """Every enrolment token (revoked ones too), newest first, for the dashboard's settings."""

    async def last_observed(self, kinds: list[str]) -> dict[tuple[str, str], datetime]:
        """When each device last reported each of these kinds, by (agent_id, kind); absent: never."""

    async def recent_observed(self, kind: str, per_agent: int, seen_since: datetime) -> dict[str, list[datetime]]:
        """When each unrevoked device seen since `seen_since` collected its newest `per_agent` signals of
        `kind`, newest first, by agent_id; absent: never."""

    async def offline_candidates(
        self, device_rule: str, site_rule: str, silent_since: datetime
    ) -> list[tuple[AgentRow, Severity | None]]:
        """The devices the offline sweep must judge, each with the severity of its open `device_rule` alert
        (None: none is open).

        Every enrolled, seen, unrevoked device of each site that has a device that fell silent (seen at or
        before `silent_since`) with no such alert open, or was seen since with one open, or that has an open
        `site_rule` alert: a site's verdict needs all its devices.
        """


class Store(Protocol):
    """A database the collector keeps everything in."""

    # The rows its readers met and could not use (skipped, logged once, counted per device).
    unreadable: Unreadable

    async def watch_feed(self, wake: Callable[[], None]) -> None:
        """Call `wake` whenever any collector on this database adds to the feed (where the database can tell)."""

    def on_feed_events(self, callback: Callable[[], None]) -> None:
        """Call `callback` after each transaction of this store that appended feed events has committed."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""

    async def close(self) -> None:
        """Close the connection(s)."""

    def transaction(self) -> AbstractAsyncContextManager[Tx]:
        """A transaction: committed when the block ends normally, rolled back on an exception."""

    def read(self) -> AbstractAsyncContextManager[Tx]:
        """A consistent read-only view for queries, which does not wait for the writer (a write on it fails)."""

    def is_transient(self, exc: BaseException) -> bool:
        """True when `exc` says the database is busy, locked, full or unreachable: worth trying again later."""


def log_failure(logger: logging.Logger, store: Store, exc: BaseException, message: str, *args: object) -> None:
    """Log a failed step: one warning line when the database was unavailable for the moment (a server restart
    repeats it every second; a traceback each time would bury the log), the traceback for anything else."""
    if store.is_transient(exc):
        logger.warning(message + ": database unavailable (%s: %s)", *args, type(exc).__name__, exc)
    else:
        logger.error(message, *args, exc_info=exc)


def is_postgresql(url: str) -> bool:
    """True when the database URL names PostgreSQL (`postgresql://...` or `postgres://...`)."""
    return url.startswith(("postgresql://", "postgres://"))


def open_store(url: str) -> Store:
    """The store for a database URL or path: `postgresql://...` (or `postgres://...`) is PostgreSQL;
    `sqlite:///path`, a plain path or `:memory:` is SQLite."""
    if is_postgresql(url):
        from collector.store.postgresql import PostgresStore

        return PostgresStore(url)
    from collector.store.sqlite import SqliteStore

    path = url.removeprefix("sqlite://")
    return SqliteStore(path)
