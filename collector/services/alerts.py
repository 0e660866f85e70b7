"""Alerts as the technician sees and works them: list, one with its history, acknowledge/snooze/resolve."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from collector.alerts.actions import ActionRefused, act
from collector.alerts.dedupe import OnChange
from collector.services.base import Service
from collector.services.errors import Conflict, NotFound
from collector.services.inputs import Input, Minutes
from collector.store import AlertRow, AlertState, Store
from shared.clock import Clock

Action = Literal["acknowledge", "snooze", "resolve"]
# What each action makes of an alert, as its history records it.
DONE: dict[Action, str] = {"acknowledge": "acknowledged", "snooze": "snoozed", "resolve": "resolved"}
History = list[tuple[datetime, str, str, dict[str, Any]]]


class ActionInput(Input):
    """Why (for the alert's history and the value report) and, to snooze, for how long."""

    note: str = Field("", max_length=2000, description="Why, for the alert's history and the value report")
    minutes: Minutes | None = Field(None, description="snooze: for how long")


class Alerts(Service):
    """Alerts: list, history, the technician's actions (notified through `on_change`)."""

    def __init__(self, store: Store, clock: Clock, on_change: OnChange | None = None) -> None:
        super().__init__(store, clock)
        self.on_change = on_change

    async def list(self, state: AlertState | None) -> list[AlertRow]:
        """Alerts in one state (None: all), newest first."""
        async with self.store.read() as tx:
            return await tx.alerts(state)

    async def detail(self, alert_id: int) -> tuple[AlertRow, History]:
        """The alert and its history, oldest first."""
        async with self.store.read() as tx:
            alert = await tx.alert(alert_id)
            if alert is None:
                raise NotFound(f"there is no alert {alert_id}")
            return alert, await tx.alert_events(alert_id)

    async def act(self, alert_id: int, action: Action, actor: str, wanted: ActionInput) -> AlertRow:
        """Acknowledge, snooze (for `minutes`) or resolve the alert, recorded with who and why."""
        now = self.clock()
        until = now + timedelta(minutes=wanted.minutes) if wanted.minutes else None
        try:
            async with self.store.transaction() as tx:
                alert = await act(tx, alert_id, DONE[action], now, actor, wanted.note, until, self.on_change)
        except ActionRefused as exc:
            raise Conflict(str(exc)) from None
        return alert
