"""The technician's actions on an alert: acknowledge, snooze, resolve; each recorded with who and why."""

from __future__ import annotations

from datetime import datetime

from collector.alerts.dedupe import DEFAULT_LIFECYCLE, OnChange, Recorder
from collector.store import AlertRow, Tx

ACTIONS = ("acknowledged", "snoozed", "resolved")


class ActionRefused(Exception):
    """The action does not apply to the alert as it is; the message says why."""


async def act(
    tx: Tx, alert_id: int, action: str, now: datetime, actor: str, note: str = "",
    until: datetime | None = None, on_change: OnChange | None = None,
) -> AlertRow:
    """Carry out one action inside `tx` and record it (alert history, live feed, notifications)."""
    current = await tx.alert(alert_id)
    if current is None:
        raise ActionRefused(f"there is no alert {alert_id}")
    if current.state != "open":
        raise ActionRefused(f"alert {alert_id} is already resolved")
    if action == "acknowledged":
        changed = await tx.acknowledge(alert_id, actor, now)
        if changed is None:
            raise ActionRefused(f"alert {alert_id} was acknowledged by {current.acknowledged_by} before")
    elif action == "snoozed":
        if until is None or until <= now:
            raise ActionRefused("snooze needs a time in the future")
        changed = await tx.snooze(alert_id, until)
    elif action == "resolved":
        changed = await tx.resolve_alert(alert_id, now)
    else:
        raise ActionRefused(f"unknown action {action!r} (one of {', '.join(ACTIONS)})")
    if changed is None:
        raise ActionRefused(f"alert {alert_id} changed meanwhile; look again")
    detail = {"note": note, **({"until": until.isoformat()} if until else {})}
    await Recorder(tx, now, actor, DEFAULT_LIFECYCLE, on_change).record(changed, action, detail)
    return changed
