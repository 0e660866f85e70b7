"""Dedupe and lifecycle: one open alert per fingerprint; repeats update it, good evaluations resolve it
after hysteresis, a recent alert comes back by reopening, and an alert that keeps changing is flapping."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from collector.alerts.flapping import is_flapping, stopped_flapping
from collector.rules import Evaluation, alert_rule, fingerprint
from collector.store import AgentRow, AlertOwner, AlertRow, Tx

STATE_CHANGES = frozenset({"opened", "reopened", "resolved"})
SITE_WIDE = "site-wide"
NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


@dataclass(frozen=True)
class Lifecycle:
    """How alerts open, resolve and come back (the `[collector.alerts]` settings)."""

    resolve_after_good: int = 2
    resolve_after: timedelta = timedelta(minutes=10)
    reopen_within: timedelta = timedelta(hours=1)
    flapping_threshold: int = 6
    flapping_window: timedelta = timedelta(hours=1)


DEFAULT_LIFECYCLE = Lifecycle()

# Called for every recorded change (the notification step plugs in here).
OnChange = Callable[[Tx, AlertRow, str, datetime], Awaitable[None]]


def alert_view(alert: AlertRow) -> dict[str, Any]:
    """An alert as the API and the feed show it."""
    return {
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": alert.severity,
        "state": alert.state,
        "summary": alert.summary,
        "details": alert.details,
        "agent_id": alert.owner.agent_id,
        "hostname": alert.owner.hostname,
        "client": alert.owner.client,
        "site": alert.owner.site,
        "opened_at": alert.opened_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "occurrences": alert.occurrences,
        "acknowledged_at": alert.acknowledged_at.isoformat() if alert.acknowledged_at else None,
        "acknowledged_by": alert.acknowledged_by,
        "snoozed_until": alert.snoozed_until.isoformat() if alert.snoozed_until else None,
        "flapping": alert.flapping,
    }


def owner_of(agent: AgentRow, scope: str) -> AlertOwner:
    """Who an evaluation's alert belongs to: the device, or its whole site."""
    site = agent.site
    if scope == "site":
        return AlertOwner(None, site.site_id, site.client_name, site.site_name, SITE_WIDE)
    return AlertOwner(agent.agent_id, site.site_id, site.client_name, site.site_name, agent.hostname)


async def apply(
    tx: Tx, agent: AgentRow, evaluations: list[Evaluation], now: datetime, actor: str,
    lifecycle: Lifecycle = DEFAULT_LIFECYCLE, on_change: OnChange | None = None,
) -> int:
    """Apply evaluations to the alerts of a device (and its site) inside `tx`; returns feed events added.

    1. `ok`: count a good evaluation; resolve once hysteresis is met (at once for rules whose spec says so).
    2. not `ok`, nothing open: reopen the same alert if it resolved within `reopen_within`, else open one;
       if another writer won the race to open it, treat the evaluation as a repeat.
    3. not `ok`, already open: count the occurrence; a change of severity or summary is recorded.
    """
    recorder = Recorder(tx, now, actor, lifecycle, on_change)
    open_now = {alert.fingerprint: alert for alert in await tx.open_alerts_of(agent.agent_id)}
    for evaluation in evaluations:
        if "event" in evaluation.details:
            # Facts worth a line in the device's history even with no alert open (e.g. a replaced disk).
            data = {**evaluation.details, "summary": evaluation.summary, "agent_id": agent.agent_id,
                    "hostname": agent.hostname, "client": agent.site.client_name, "site": agent.site.site_name}
            await tx.append_feed(now, f"device.{evaluation.details['event']}", data)
            recorder.published += 1
        owner = owner_of(agent, evaluation.scope)
        fp = fingerprint(evaluation.rule, owner.agent_id or f"site:{owner.site_id}", evaluation.subject)
        current = open_now.get(fp)
        if current is None and evaluation.scope == "site":
            # Another device of the site may have opened it.
            current = await tx.open_alert(fp)
        if evaluation.status == "ok":
            if current is not None:
                open_now.pop(fp, None)
                await recorder.good(current, evaluation)
            continue
        open_now[fp] = await recorder.bad(current, fp, owner, evaluation)
    return recorder.published


def inert(evaluations: list[Evaluation]) -> bool:
    """True when `apply` would change nothing for a device with no open alert: every evaluation is good, of
    the device's own alerts, with no fact to record (a site-wide alert may be open through another device)."""
    return all(e.status == "ok" and e.scope == "device" and "event" not in e.details for e in evaluations)


def words(summary: str) -> str:
    """A summary with its numbers blanked out (8.5 GiB, 12 days, 2026-11-23 09:00 all become #)."""
    return NUMBER.sub("#", summary)


class Recorder:
    """The state changes of one `apply`, each recorded as an alert event and a feed event."""

    def __init__(self, tx: Tx, now: datetime, actor: str, lifecycle: Lifecycle, on_change: OnChange | None) -> None:
        self.tx, self.now, self.actor, self.lifecycle, self.on_change = tx, now, actor, lifecycle, on_change
        self.published = 0

    async def good(self, current: AlertRow, evaluation: Evaluation) -> None:
        """A good evaluation of an open alert: resolve it once hysteresis is met (or at once, as its rule says)."""
        if not (evaluation.gone or alert_rule(evaluation.rule).resolve_at_once):
            counted = await self.tx.record_good(current.alert_id, self.now)
            held_long = counted.good_since is not None and self.now - counted.good_since >= self.lifecycle.resolve_after
            if counted.good_streak < self.lifecycle.resolve_after_good and not held_long:
                return
        resolved = await self.tx.resolve_alert(current.alert_id, self.now)
        if resolved is not None:
            await self.record(resolved, "resolved", {"reason": evaluation.summary, **evaluation.details})

    async def bad(self, current: AlertRow | None, fp: str, owner: AlertOwner, evaluation: Evaluation) -> AlertRow:
        """A bad evaluation: open, reopen or update the alert; returns it as it is now."""
        if current is not None and evaluation.status == "unknown" and current.details.get("escalated"):
            # An unknown escalated by the never-silent sweep stays a warning, in the sweep's words, until a
            # usable result resolves it: otherwise each report and each sweep would flip it back and forth.
            evaluation = replace(evaluation, status=current.severity, summary=current.summary,
                                 details=current.details)
        if current is None:
            reopened = await self.tx.reopen_alert(fp, self.now - self.lifecycle.reopen_within, self.now)
            if reopened is not None:
                await self.record(reopened, "reopened", {"reason": evaluation.summary})
                current = reopened
            else:
                opened = await self.tx.insert_alert(
                    fp, evaluation.rule, owner, evaluation.subject, evaluation.status, evaluation.summary,
                    evaluation.details, self.now,
                )
                if opened is not None:
                    await self.record(opened, "opened", {"reason": evaluation.summary})
                    return opened
                current = await self.tx.open_alert(fp)
                if current is None:
                    raise LookupError(f"alert {fp} was neither opened nor found open")
        updated = await self.tx.update_alert(
            current.alert_id, evaluation.status, evaluation.summary, evaluation.details, self.now
        )
        if updated.severity != current.severity or updated.summary != current.summary:
            change = {"from": current.severity, "to": updated.severity, "reason": evaluation.summary}
            # Only a new severity or new words are worth a message; a number moving in the text (free space,
            # days pending) is an update: kept in the history and shown live, not sent.
            worth_a_message = updated.severity != current.severity or words(updated.summary) != words(current.summary)
            await self.record(updated, "changed" if worth_a_message else "updated", change)
        return updated

    async def record(self, alert: AlertRow, what: str, detail: dict[str, Any]) -> None:
        """Add a change to the alert's history and the live feed, tell the notification step, check flapping."""
        await self.tx.add_alert_event(alert.alert_id, self.now, what, self.actor, detail)
        await self.tx.append_feed(self.now, f"alert.{what}", alert_view(alert))
        self.published += 1
        if self.on_change is not None:
            await self.on_change(self.tx, alert, what, self.now)
        if what in STATE_CHANGES:
            await self._flapping(alert)

    async def _flapping(self, alert: AlertRow) -> None:
        """Mark an alert that keeps opening and resolving as flapping (its notifications are held), and
        clear the mark once it has been quiet."""
        history = await self.tx.alert_events(alert.alert_id)
        changes = [at for at, what, _, _ in history if what in STATE_CHANGES]
        if not alert.flapping and is_flapping(
            changes, self.now, self.lifecycle.flapping_threshold, self.lifecycle.flapping_window
        ):
            flagged = await self.tx.set_flapping(alert.alert_id, True)
            await self.record(flagged, "flapping", {"changes_in_window": len(changes)})
        elif alert.flapping and stopped_flapping(changes[:-1], self.now, self.lifecycle.flapping_window):
            await self.tx.set_flapping(alert.alert_id, False)
