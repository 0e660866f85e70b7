"""The never-silent sweep: on the collector's own schedule, a device's check that has produced no usable result
for 3 times its interval is a warning, and an unknown verdict that persists that long is escalated to one.

A check's interval is read from the device's own records (the median gap between its latest results and
failures), so it follows each agent's configuration without being told. Only devices that are online are
judged: a device that is silent altogether is the offline alert's business.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.alerts import dedupe
from collector.alerts.dedupe import OnChange
from collector.rules import Evaluation, fingerprint, unknown
from collector.settings import Settings
from collector.store import AgentRow, AlertRow, Store, Tx
from shared.clock import Clock, system_clock
from shared.signals import SIGNALS, signal_of

log = logging.getLogger(__name__)

ACTOR = "rule:never_silent"
# Missed runs before a check's silence (or a persisting unknown) is a warning.
MISSED_RUNS = 3
# The latest records a check's interval is measured over.
INTERVAL_RECORDS = 6
# Failures (`unknown` signals of any check) looked back over for a check's last error.
FAILURES_LOOKED_AT = 100
# Checks judged: every check of an agent except the heartbeat, whose silence is the offline alert.
CHECKS = tuple(s.name for s in SIGNALS if s.own_check and s.name != "heartbeat")


@dataclass(frozen=True)
class CheckRecord:
    """What the collector knows of one check on one device: when it produced results, when it failed and why."""

    kind: str
    results: tuple[datetime, ...]
    failures: tuple[tuple[datetime, str], ...]

    def interval(self) -> timedelta | None:
        """The check's interval: the median gap between its latest runs (None: fewer than two runs known)."""
        runs = sorted([*self.results, *(at for at, _ in self.failures)])[-INTERVAL_RECORDS:]
        gaps = [later - earlier for earlier, later in itertools.pairwise(runs) if later > earlier]
        return statistics.median(gaps) if gaps else None


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def _every(interval: timedelta) -> str:
    seconds = interval.total_seconds()
    return f"{seconds / 3600:.3g} h" if seconds >= 3600 else f"{seconds / 60:.3g} min"


def judge_check(record: CheckRecord, hostname: str, now: datetime) -> Evaluation | None:
    """A warning when the check has produced no usable result for MISSED_RUNS times its interval, else None."""
    interval = record.interval()
    if interval is None:
        return None
    last_result = max(record.results, default=None)
    since = last_result or min(at for at, _ in record.failures)
    if now - since < MISSED_RUNS * interval:
        return None
    last_error = max(record.failures, default=None)
    error = last_error[1] if last_error and (last_result is None or last_error[0] > last_result) else None
    summary = (
        f"{record.kind} has produced no usable result on {hostname} since {_when(since)} "
        f"(it runs every {_every(interval)}); "
        + (f"last error: {error}" if error else "no error was reported: the check may be stuck")
    )
    return Evaluation(unknown.RULE, record.kind, "warning", summary, {
        "check": record.kind, "since": since.isoformat(), "last_error": error,
        "interval_seconds": interval.total_seconds(), "escalated": True,
    })


def escalate(alert: AlertRow, record: CheckRecord, now: datetime) -> Evaluation | None:
    """A warning in place of an unknown verdict that has persisted for MISSED_RUNS times the check's interval."""
    interval = record.interval()
    if alert.severity != "unknown" or interval is None or now - alert.opened_at < MISSED_RUNS * interval:
        return None
    return Evaluation(alert.rule, alert.subject, "warning",
                      f"still unknown since {_when(alert.opened_at)}: {alert.summary}",
                      {**alert.details, "unknown_since": alert.opened_at.isoformat(), "escalated": True})


async def check_records(tx: Tx, agent_id: str) -> dict[str, CheckRecord]:
    """Each judged check's latest results and failures on one device."""
    failed = await tx.observations(agent_id, "unknown", FAILURES_LOOKED_AT)
    records = {}
    for kind in CHECKS:
        results = tuple(row.collected_at for row in await tx.observations(agent_id, kind, INTERVAL_RECORDS))
        failures = tuple((row.collected_at, str(row.payload.get("error", ""))) for row in failed
                         if row.payload.get("check") == kind)
        records[kind] = CheckRecord(kind, results, failures)
    return records


async def judge_device(tx: Tx, agent: AgentRow, now: datetime) -> list[Evaluation]:
    """The device's silent checks and persisting unknowns that are not yet warnings, as of `now` (the
    newest collection time the device has sent)."""
    records = await check_records(tx, agent.agent_id)
    open_alerts = {alert.fingerprint: alert for alert in await tx.open_alerts_of(agent.agent_id)}
    evaluations = []
    for record in records.values():
        verdict = judge_check(record, agent.hostname, now)
        fp = fingerprint(unknown.RULE, agent.agent_id, record.kind)
        current = open_alerts.get(fp)
        if verdict is None or (current is not None and current.severity != "unknown"):
            continue
        resolved_at = await tx.last_resolved_at(fp) if current is None else None
        # A technician who resolved this silence (a check taken out of the configuration) is not asked
        # again until the check reports once more and then falls silent.
        if resolved_at is None or resolved_at < datetime.fromisoformat(verdict.details["since"]):
            evaluations.append(verdict)
    for alert in open_alerts.values():
        kind = alert.subject if alert.rule == unknown.RULE else signal_of(alert.rule)
        verdict = escalate(alert, records[kind], now) if kind in records else None
        if verdict is not None and not any(e.rule == alert.rule and e.subject == alert.subject for e in evaluations):
            evaluations.append(verdict)
    return evaluations


async def candidates(tx: Tx, online_since: datetime, now: datetime) -> list[tuple[AgentRow, datetime]]:
    """The online devices that may have a silent check or a persisting unknown, found cheaply (a few
    index lookups per check, no payloads), each with the time to judge it at; `judge_device` then looks
    at each in full.

    A device is judged at the newest collection time it has sent (never later than now), not at the
    collector's clock: a PC still uploading the backlog of a weekend offline has not gone silent.
    """
    online = {agent.agent_id: agent for agent in await tx.agents()
              if not agent.revoked and agent.last_seen_at is not None and agent.last_seen_at >= online_since}
    flagged = {alert.owner.agent_id for alert in await tx.alerts("open")
               if alert.severity == "unknown" and alert.owner.agent_id}
    recent = {kind: await tx.recent_observed(kind, 1 if kind == "heartbeat" else INTERVAL_RECORDS, online_since)
              for kind in ("heartbeat", *CHECKS)}
    heard = {agent_id: min(now, max(times[0] for found in recent.values() if (times := found.get(agent_id))))
             for agent_id in {agent_id for found in recent.values() for agent_id in found}}
    for kind in CHECKS:
        for agent_id, times in recent[kind].items():
            interval = CheckRecord(kind, tuple(times), ()).interval()
            if interval is not None and heard[agent_id] - times[0] >= MISSED_RUNS * interval:
                flagged.add(agent_id)
    return [(online[agent_id], heard.get(agent_id, now)) for agent_id in sorted(flagged) if agent_id in online]


async def sweep(store: Store, settings: Settings, now: datetime, on_change: OnChange | None = None) -> int:
    """Judge every online device's checks; returns how many feed events were added.

    1. Read (without holding the writer): the candidates, devices with a check silent for 3 intervals by
       its results alone, or with an open unknown alert.
    2. In one write transaction, judge each candidate in full (results and failures, read again there, so
       a report that arrived meanwhile counts) and apply the verdicts.
    """
    online_since = now - timedelta(seconds=settings.heartbeat_interval_seconds * settings.offline_after_missed)
    async with store.read() as tx:
        devices = await candidates(tx, online_since, now)
    if not devices:
        return 0
    lifecycle = settings.alerts.lifecycle()
    published = 0
    async with store.transaction() as tx:
        for agent, heard_at in devices:
            evaluations = await judge_device(tx, agent, heard_at)
            if evaluations:
                published += await dedupe.apply(tx, agent, evaluations, now, ACTOR, lifecycle, on_change)
    return published


async def run_sweeper(
    store: Store, settings: Settings, clock: Clock = system_clock, on_change: OnChange | None = None
) -> None:
    """Sweep every `silent_check_seconds` until cancelled; a failed sweep is logged and retried."""
    while True:
        await asyncio.sleep(settings.silent_check_seconds)
        try:
            await sweep(store, settings, clock(), on_change)
        except Exception:
            log.exception("never-silent sweep failed; retrying in %s s", settings.silent_check_seconds)
