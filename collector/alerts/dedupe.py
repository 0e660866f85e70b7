"""Dedupe: one open alert per fingerprint; repeats update it, `ok` resolves it, every change is recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from collector.rules import Evaluation, fingerprint
from collector.store import AgentRow, AlertRow, Tx


def alert_view(alert: AlertRow, agent: AgentRow) -> dict[str, Any]:
    """An alert as the API and the feed show it, with the device's name, client and site."""
    return {
        "alert_id": alert.alert_id,
        "rule": alert.rule,
        "subject": alert.subject,
        "severity": alert.severity,
        "state": alert.state,
        "summary": alert.summary,
        "details": alert.details,
        "agent_id": alert.agent_id,
        "hostname": agent.hostname,
        "client": agent.site.client_name,
        "site": agent.site.site_name,
        "opened_at": alert.opened_at.isoformat(),
        "last_seen_at": alert.last_seen_at.isoformat(),
        "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
        "occurrences": alert.occurrences,
    }


async def apply(tx: Tx, agent: AgentRow, evaluations: list[Evaluation], now: datetime, actor: str) -> int:
    """Apply evaluations to the agent's alerts inside `tx`; returns how many feed events were added.

    1. `ok`: resolve the open alert with that fingerprint, if any.
    2. not `ok`, nothing open: open an alert; if another writer won the race, treat it as a repeat.
    3. not `ok`, already open: count the occurrence; a change of severity or summary is recorded.
    """
    published = 0
    # One read of the device's open alerts serves every evaluation of the report.
    open_now = {alert.fingerprint: alert for alert in await tx.open_alerts_of(agent.agent_id)}
    for evaluation in evaluations:
        if "event" in evaluation.details:
            # Facts worth a line in the device's history even with no alert open (e.g. a replaced disk).
            data = {**evaluation.details, "summary": evaluation.summary, "agent_id": agent.agent_id,
                    "hostname": agent.hostname, "client": agent.site.client_name, "site": agent.site.site_name}
            await tx.append_feed(now, f"device.{evaluation.details['event']}", data)
            published += 1
        owner = f"site:{agent.site.site_id}" if evaluation.scope == "site" else agent.agent_id
        fp = fingerprint(evaluation.rule, owner, evaluation.subject)
        current = open_now.get(fp)
        if current is None and evaluation.scope == "site":
            # Another device of the site may have opened it.
            current = await tx.open_alert(fp)
        if evaluation.status == "ok":
            if current is None:
                continue
            del open_now[fp]
            resolved = await tx.resolve_alert(current.alert_id, now)
            if resolved is not None:
                detail = {"reason": evaluation.summary, **evaluation.details}
                await _record(tx, resolved, agent, now, "resolved", actor, detail)
                published += 1
            continue
        if current is None:
            opened = await tx.insert_alert(
                fp, evaluation.rule, agent.agent_id, evaluation.subject, evaluation.status,
                evaluation.summary, evaluation.details, now,
            )
            if opened is not None:
                open_now[fp] = opened
                await _record(tx, opened, agent, now, "opened", actor, {"reason": evaluation.summary})
                published += 1
                continue
            current = await tx.open_alert(fp)
            if current is None:
                continue
        updated = await tx.update_alert(
            current.alert_id, evaluation.status, evaluation.summary, evaluation.details, now
        )
        open_now[fp] = updated
        if updated.severity != current.severity or updated.summary != current.summary:
            change = {"from": current.severity, "to": updated.severity, "reason": evaluation.summary}
            await _record(tx, updated, agent, now, "changed", actor, change)
            published += 1
    return published


async def _record(
    tx: Tx, alert: AlertRow, agent: AgentRow, now: datetime, what: str, actor: str, detail: dict[str, Any]
) -> None:
    """Add the change to the alert's history and to the live feed."""
    await tx.add_alert_event(alert.alert_id, now, what, actor, detail)
    await tx.append_feed(now, f"alert.{what}", alert_view(alert, agent))
