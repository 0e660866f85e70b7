"""Ingest: store an agent's envelopes, evaluate their signals and publish the changes, all or nothing.

Requests that arrive together are committed together (group commit): one writer task takes every
queued request into one transaction, so the cost of a transaction is shared. If a group fails,
its requests are retried one by one, so one bad report cannot fail the others. The transaction first
reads the group's agents in one query: a device revoked (or deleted) since it signed is refused there.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from collector.alerts import dedupe
from collector.alerts.dedupe import DEFAULT_LIFECYCLE, Lifecycle, OnChange
from collector.auth import AuthError, admitted
from collector.rules import Evaluation, History, RuleSpec, SiteReport, evaluate, rules_by_kind
from collector.store import AgentRow, Contact, EnvelopeRow, ObservationRow, Store, Tx, log_failure
from collector.store.unreadable import DECODE_ERRORS, parse_signal
from shared.base import FUTURE_SLACK, Signal
from shared.device_class import DeviceClass
from shared.encryption import Encryption
from shared.wire import LEGACY_EPOCH, Heartbeat, ReportBatch

log = logging.getLogger(__name__)

MAX_GROUP = 64
# Under load, how long the writer waits for more requests before committing a group (as PostgreSQL's
# commit_delay): a transaction costs about a millisecond of CPU whatever its size, so larger groups cost less.
GATHER_SECONDS = 0.005
# Load is 50 requests or more in a tenth of a second (500 a second): commits alone would take half a core, and a
# gathering writer finds company. Below it, and for one device sending in turn, each request is committed at once.
LOAD_WINDOW_SECONDS = 0.1
LOAD_REQUESTS = 50
# Parsed history signals kept between reports: rules look back over hundreds of reports on every new one.
PARSED_CACHE = 50_000


@dataclass
class IngestResult:
    """Which envelopes were new and which had been stored before (both are acknowledged)."""

    accepted: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    # The stream the newest accepted envelope belongs to (None when none was accepted).
    epoch: str | None = None


@dataclass
class _Request:
    """One authenticated, validated batch waiting for the writer."""

    agent_id: str
    batch: ReportBatch
    received_at: datetime
    done: asyncio.Future[IngestResult]
    # The batch's last heartbeat (the device's hostname and class), looked up once.
    beat: Heartbeat | None = field(init=False)

    def __post_init__(self) -> None:
        self.beat = next((s for e in reversed(self.batch.envelopes) for s in reversed(e.signals)
                          if isinstance(s, Heartbeat)), None)

    @property
    def hostname(self) -> str | None:
        """The hostname the batch's last heartbeat reports, if it has one."""
        return self.beat.hostname if self.beat else None


class _Recent:
    """The history one group commit's rules look back on, newest first: read once for the group, then
    kept up to date in memory as the group's envelopes are stored (as a read per envelope would see it)."""

    def __init__(self, rules: Mapping[str, RuleSpec]) -> None:
        self._rules = rules
        self.previous: dict[tuple[str, str], list[Signal]] = {}
        self.site: dict[tuple[int, str], list[SiteReport]] = {}

    def before(
        self, agent: AgentRow, signals: list[Signal]
    ) -> dict[str, tuple[tuple[Signal, ...], tuple[SiteReport, ...]]]:
        """Per kind among `signals`: the device's earlier signals, and the site's collected within the
        rule's hours before the newest of `signals`."""
        newest = max(s.collected_at for s in signals)
        histories = {}
        for kind in {s.kind for s in signals}:
            spec = self._rules.get(kind)
            if spec is None or not (spec.history or spec.site_hours):
                continue
            since = newest - timedelta(hours=spec.site_hours)
            site = self.site.get((agent.site.site_id, kind), [])
            histories[kind] = (tuple(self.previous.get((agent.agent_id, kind), ())),
                               tuple(r for r in site if r.at >= since) if spec.site_hours else ())
        return histories

    def add(self, agent: AgentRow, signals: list[Signal]) -> None:
        """Signals just stored for `agent`, in the order stored, as the newest of their histories."""
        for signal in signals:
            spec = self._rules.get(signal.kind)
            if spec is None:
                continue
            previous = self.previous.get((agent.agent_id, signal.kind))
            if previous is not None:
                previous.insert(0, signal)
                del previous[spec.history:]
            site = self.site.get((agent.site.site_id, signal.kind))
            if site is not None:
                site.insert(0, SiteReport(agent.agent_id, agent.hostname, signal.collected_at, signal))
                # The same bounds as the read: the device's oldest beyond its share goes, then the site's oldest.
                mine = [n for n, report in enumerate(site) if report.agent_id == agent.agent_id]
                if len(mine) > spec.site_rows_per_device:
                    del site[mine[-1]]
                del site[spec.site_rows:]


def escrowed(signal: Signal) -> list[tuple[str, str, str]]:
    """The sealed recovery keys a signal carries: (volume, protector id, sealed JSON); never opened here."""
    if not isinstance(signal, Encryption) or signal.escrow is None:
        return []
    return [(key.volume, key.protector_id, key.sealed.model_dump_json())
            for key in signal.escrow.keys if key.sealed is not None]


def judged_class(agent: AgentRow, batch: ReportBatch) -> DeviceClass | None:
    """The class rules judge the device by: the technician's override, else what the batch's latest heartbeat
    says (a new device's first batch carries its first heartbeat), else the class stored for it."""
    beats = [s for e in batch.envelopes for s in e.signals if isinstance(s, Heartbeat) and s.device_class]
    return agent.class_override or (beats[-1].device_class if beats else None) or agent.reported_class


class Ingest:
    """The store-evaluate-publish part of the hot path (after authentication and validation)."""

    def __init__(
        self, store: Store, thresholds: Callable[[str], Mapping[str, Any]] | None = None,
        rules: dict[str, RuleSpec] | None = None, lifecycle: Lifecycle = DEFAULT_LIFECYCLE,
        on_change: OnChange | None = None, gather_seconds: float = GATHER_SECONDS,
    ) -> None:
        self._store = store
        self._gather_seconds = gather_seconds
        self._lifecycle = lifecycle
        self._on_change = on_change
        # Settings do not change while the collector runs, so each client's thresholds are merged once.
        self._thresholds = functools.cache(thresholds or (lambda client: {}))
        self._rules = rules if rules is not None else rules_by_kind()
        self._parsed: OrderedDict[int, Signal] = OrderedDict()
        # Each agent's stream as of its last committed batch: the stream need not be looked up again.
        self._streams: dict[str, str] = {}
        self._queue: list[_Request] = []
        self._writer: asyncio.Task[None] | None = None
        # Set while the writer gathers a group: resolved early once the group is full.
        self._gathering: asyncio.Future[None] | None = None
        # Requests counted in the current load window (loop time), and whether the window before it was loaded.
        self._window_start = 0.0
        self._window_requests = 0
        self._loaded_before = False

    async def ingest(self, agent_id: str, batch: ReportBatch, received_at: datetime) -> IngestResult:
        """Store and evaluate a batch signed by `agent_id`; a resent envelope is acknowledged, not stored twice.

        AuthError when the agent, as stored in the storing transaction, is unknown or revoked.
        """
        loop = asyncio.get_running_loop()
        request = _Request(agent_id, batch, received_at, loop.create_future())
        now = loop.time()
        if now - self._window_start >= LOAD_WINDOW_SECONDS:
            # A window that ended long before this request says nothing of the load now.
            self._loaded_before = (self._window_requests >= LOAD_REQUESTS
                                   and now - self._window_start < 2 * LOAD_WINDOW_SECONDS)
            self._window_start, self._window_requests = now, 0
        self._window_requests += 1
        self._queue.append(request)
        if len(self._queue) >= MAX_GROUP and self._gathering is not None and not self._gathering.done():
            self._gathering.set_result(None)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        return await request.done

    async def _write(self) -> None:
        """Commit queued requests until none are left.

        1. Under load (LOAD_REQUESTS in this load window or the one before), gather more for up to
           `gather_seconds`.
        2. Take up to MAX_GROUP queued requests and commit them in one transaction.
        3. If that fails, commit each alone, so only a failing request gets the error.
        4. Answer each request (the commit has woken the feed already).
        """
        while self._queue:
            loaded = self._loaded_before or self._window_requests >= LOAD_REQUESTS
            if loaded and len(self._queue) < MAX_GROUP and self._gather_seconds:
                await self._gather()
            group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
            answers: list[IngestResult | BaseException]
            try:
                answers = list(await self._commit(group))
            except Exception as exc:
                if len(group) > 1:
                    answers = [await self._commit_alone(request) for request in group]
                else:
                    log_failure(log, self._store, exc, "ingest failed for agent %s", group[0].agent_id)
                    answers = [exc]
            for request, answer in zip(group, answers, strict=True):
                if request.done.done():
                    continue  # the uploader hung up; what was committed stays committed
                if isinstance(answer, BaseException):
                    request.done.set_exception(answer)
                else:
                    request.done.set_result(answer)

    async def _gather(self) -> None:
        """Wait `gather_seconds` for more requests, or until MAX_GROUP are queued."""
        loop = asyncio.get_running_loop()
        self._gathering = gathering = loop.create_future()
        timer = loop.call_later(self._gather_seconds, lambda: gathering.done() or gathering.set_result(None))
        try:
            await gathering
        finally:
            timer.cancel()
            self._gathering = None

    async def _commit_alone(self, request: _Request) -> IngestResult | BaseException:
        """Commit one request in its own transaction, returning the error instead of raising it."""
        try:
            [result] = await self._commit([request])
        except Exception as exc:
            log_failure(log, self._store, exc, "ingest failed for agent %s", request.agent_id)
            return exc
        return result

    async def _commit(self, group: list[_Request]) -> list[IngestResult | BaseException]:
        """Ingest a group of requests in one transaction (the store wakes the feed when it commits events).

        1. Read the group's agents in one query; a request whose agent is unknown or revoked gets its AuthError.
        2. Read what the group's rules look back on; store every envelope of the group, then note every
           contact, each in one trip to the database.
        3. Per request, in order: evaluate its new signals and apply the verdicts that can change something.
        """
        outcomes: dict[int, IngestResult] = {}
        async with self._store.transaction() as tx:
            rows = await tx.reporting_agents(sorted({request.agent_id for request in group}))
            # Devices that have (or may have, once this group opened one) an open alert.
            alerted = {agent_id for agent_id, (_, has_open) in rows.items() if has_open}
            agents: list[AgentRow | AuthError] = []
            for request in group:
                try:
                    agents.append(admitted(request.agent_id, rows.get(request.agent_id, (None, False))[0]))
                except AuthError as exc:
                    agents.append(exc)
            admitted_group = [(request, agent) for request, agent in zip(group, agents, strict=True)
                              if isinstance(agent, AgentRow)]
            recent = await self._recent(tx, admitted_group)
            stored = iter(await tx.record_envelopes([
                EnvelopeRow(agent.agent_id, e.seq, e.boot_id, e.sent_at, request.received_at,
                            [(s.kind, s.collected_at, s.stored_json()) for s in e.signals], e.epoch or LEGACY_EPOCH)
                for request, agent in admitted_group for e in request.batch.envelopes
            ]))
            new = [[next(stored) for _ in request.batch.envelopes] for request, _ in admitted_group]
            previous = iter(await tx.touch_agents([
                Contact(agent.agent_id, request.received_at, request.batch.envelopes[-1].seq, request.hostname)
                for (request, agent), fresh in zip(admitted_group, new, strict=True) if any(fresh)
            ]))
            for (request, agent), fresh in zip(admitted_group, new, strict=True):
                first_contact = any(fresh) and next(previous) is None
                outcomes[id(request)] = await self._ingest(tx, request, agent, fresh, first_contact, recent, alerted)
        results: list[IngestResult | BaseException] = [
            agent if isinstance(agent, AuthError) else outcomes[id(request)]
            for request, agent in zip(group, agents, strict=True)
        ]
        for request, result in zip(group, results, strict=True):
            if isinstance(result, IngestResult) and result.epoch is not None:
                self._streams[request.agent_id] = result.epoch
        return results

    async def _ingest(
        self, tx: Tx, request: _Request, agent: AgentRow, fresh: list[bool], first_contact: bool, recent: _Recent,
        alerted: set[str],
    ) -> IngestResult:
        """Evaluate one stored batch's new signals (`fresh`: which envelopes were new) and apply the verdicts
        that can change something."""
        now = request.received_at
        result = IngestResult()
        evaluations: list[Evaluation] = []
        # Each stream the batch adds to, with the first sequence number it adds.
        streams: dict[str, int] = {}
        settings = self._thresholds(agent.site.client_name)
        device_class = judged_class(agent, request.batch)
        # The client's own time zone, read once and only for the rules that read local hours.
        zones: dict[int, str | None] = {}
        for envelope, new in zip(request.batch.envelopes, fresh, strict=True):
            histories = recent.before(agent, envelope.signals)
            if not new:
                result.duplicates.append(envelope.seq)
                continue
            epoch = envelope.epoch or LEGACY_EPOCH
            result.accepted.append(envelope.seq)
            recent.add(agent, envelope.signals)
            result.epoch = epoch
            streams.setdefault(epoch, envelope.seq)
            for signal in envelope.signals:
                spec = self._rules.get(signal.kind)
                if spec is not None:
                    previous, site = histories.get(signal.kind, ((), ()))
                    # Judged when it happened: a report that waited in the outbox over a weekend is not late.
                    known = tuple(await tx.known_disks(agent.agent_id)) if spec.known_disks else ()
                    if spec.client_zone and not zones:
                        zones[agent.site.client_id] = await tx.client_zone(agent.site.client_id)
                    history = History(now=signal.collected_at, hostname=agent.hostname, previous=previous,
                                      agent_id=agent.agent_id, settings=settings, site=site,
                                      device_class=device_class, known_disks=known,
                                      client_zone=zones.get(agent.site.client_id))
                    evaluations.extend(evaluate(spec, signal, history))
                    if spec.known_disks is not None:
                        # Kept beyond the reports the rule looks back on: a disk missing for weeks is still known.
                        await tx.save_known_disks(agent.agent_id, spec.known_disks(signal, history))
                sealed = escrowed(signal)
                if sealed:
                    # Kept as sealed on the device, apart from the report (which keeps only the protector ids).
                    await tx.save_escrowed_keys(agent.agent_id, sealed, now)
        if not result.accepted:
            return result
        beat = request.beat
        if beat is not None and beat.device_class is not None and beat.device_class != agent.reported_class:
            await tx.set_reported_class(agent.agent_id, beat.device_class)
        device = {"agent_id": agent.agent_id, "hostname": request.hostname or agent.hostname,
                  "client": agent.site.client_name, "site": agent.site.site_name}
        # First contact goes into the feed before the device's first alerts.
        if first_contact:
            await tx.append_feed(now, "device.online", device)
        await self._note_streams(tx, agent, streams, now, device, first_contact)
        if agent.agent_id in alerted or not dedupe.inert(evaluations):
            await dedupe.apply(tx, agent, evaluations, now, "rule", self._lifecycle, self._on_change)
            alerted.add(agent.agent_id)
        return result

    async def _recent(self, tx: Tx, group: list[tuple[_Request, AgentRow]]) -> _Recent:
        """What the group's rules look back on, read once for the whole group before anything is stored:
        each device's latest signals of a kind, and each site's signals of a kind over the widest window
        any envelope of the group needs (bounded in rows, and in time on both sides)."""
        recent = _Recent(self._rules)
        windows: dict[tuple[int, str], tuple[datetime, datetime]] = {}
        for request, agent in group:
            # Nothing stored can be later than this (the schema's bound), whatever an older version wrote.
            until = request.received_at + FUTURE_SLACK
            for envelope in request.batch.envelopes:
                newest = max(s.collected_at for s in envelope.signals)
                for kind in {s.kind for s in envelope.signals}:
                    spec = self._rules.get(kind)
                    if spec is None:
                        continue
                    if spec.history:
                        recent.previous.setdefault((agent.agent_id, kind), [])
                    if spec.site_hours:
                        since = newest - timedelta(hours=spec.site_hours)
                        key = (agent.site.site_id, kind)
                        low, high = windows.get(key, (since, until))
                        windows[key] = (min(low, since), max(high, until))
        for agent_id, kind in recent.previous:
            rows = await tx.observations(agent_id, kind, self._rules[kind].history)
            recent.previous[agent_id, kind] = [s for s in self._signals(rows) if s is not None]
        for (site_id, kind), (since, until) in windows.items():
            spec = self._rules[kind]
            rows = await tx.site_observations(site_id, kind, since, until, spec.site_rows_per_device,
                                              spec.site_rows)
            recent.site[site_id, kind] = [
                SiteReport(row.agent_id, host, row.collected_at, signal)
                for (host, row), signal in zip(rows, self._signals([row for _, row in rows]), strict=True)
                if signal is not None
            ]
        return recent

    async def _note_streams(self, tx: Tx, agent: AgentRow, streams: dict[str, int], now: datetime,
                            device: dict[str, Any], first_contact: bool) -> None:
        """Record the streams the batch added to; a new one from a known device is an outbox reset, told
        in the feed (its reports are stored: sequence numbers count anew within it)."""
        known = self._streams.get(agent.agent_id)
        for epoch, seq in streams.items():
            if epoch == known or not await tx.note_epoch(agent.agent_id, epoch, seq, now):
                continue
            if not first_contact:
                log.warning("agent %s reports in a new stream %s from seq %d: its outbox was reset",
                            agent.agent_id, epoch, seq)
                await tx.append_feed(now, "device.stream_reset", {**device, "epoch": epoch, "seq": seq})

    def _signals(self, rows: list[ObservationRow]) -> list[Signal | None]:
        """Stored rows as their signals, in order; None for a row the schema refuses (noted, then skipped)."""
        return [self._parse(row) for row in rows]

    def _parse(self, row: ObservationRow) -> Signal | None:
        """A stored signal as its model, parsed once and then kept (least recently used goes first)."""
        key = row.row_id
        signal = self._parsed.get(key)
        if signal is None:
            try:
                signal = parse_signal(row.payload)
            except DECODE_ERRORS as exc:
                self._store.unreadable.note(row.what, row.agent_id, exc)
                return None
            self._parsed[key] = signal
            if len(self._parsed) > PARSED_CACHE:
                self._parsed.popitem(last=False)
        else:
            self._parsed.move_to_end(key)
        return signal
