"""Devices (agents): whether each is online, on the collector's clock, and what it has open; revoking one."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from collector.services.base import Service
from collector.services.errors import NotFound
from collector.settings import Settings
from collector.store import AgentRow, AlertRow, Store
from shared.clock import Clock
from shared.device_class import DeviceClass


def offline_after(settings: Settings) -> timedelta:
    """How long a device may stay silent before it counts as offline: a few missed heartbeats."""
    return timedelta(seconds=settings.heartbeat_interval_seconds * settings.offline_after_missed)


@dataclass(frozen=True)
class DeviceStatus:
    """A device, whether it reported recently enough to count as online, and its open alerts."""

    agent: AgentRow
    online: bool
    open_alerts: list[AlertRow] = field(default_factory=list)


@dataclass(frozen=True)
class Fleet:
    """Every device with its status, and the open alerts that belong to a site rather than a device."""

    devices: list[DeviceStatus]
    site_wide: dict[tuple[str, str], list[AlertRow]]


class Devices(Service):
    """Devices and whether they are online."""

    def __init__(self, store: Store, clock: Clock, offline_after: timedelta) -> None:
        super().__init__(store, clock)
        self.offline_after = offline_after

    def online(self, agent: AgentRow, now: datetime) -> bool:
        """True when the device reported within `offline_after` of `now`."""
        return agent.last_seen_at is not None and now - agent.last_seen_at < self.offline_after

    async def fleet(self) -> Fleet:
        """Every enrolled device with whether it is online and its open alerts."""
        async with self.store.read() as tx:
            agents = await tx.agents()
            open_alerts = await tx.alerts("open")
        by_device: dict[str | None, list[AlertRow]] = defaultdict(list)
        site_wide: dict[tuple[str, str], list[AlertRow]] = defaultdict(list)
        for alert in open_alerts:
            by_device[alert.agent_id].append(alert)
            if alert.agent_id is None:
                site_wide[(alert.owner.client, alert.owner.site)].append(alert)
        now = self.clock()
        return Fleet([DeviceStatus(a, self.online(a, now), by_device[a.agent_id]) for a in agents], site_wide)

    async def device(self, agent_id: str) -> DeviceStatus:
        """One device with whether it is online and its open alerts (NotFound for an unknown one)."""
        async with self.store.read() as tx:
            agent = await tx.agent(agent_id)
            if agent is None:
                raise NotFound(f"there is no device {agent_id}")
            open_alerts = await tx.open_alerts_of(agent_id)
        return DeviceStatus(agent, self.online(agent, self.clock()), open_alerts)

    async def set_class(self, agent_id: str, device_class: DeviceClass | None) -> DeviceStatus:
        """Say what the device is, whatever its agent reports (None: the agent's class again)."""
        async with self.store.transaction() as tx:
            if not await tx.set_class_override(agent_id, device_class):
                raise NotFound(f"there is no device {agent_id}")
        return await self.device(agent_id)

    async def revoke(self, agent_id: str) -> None:
        """Refuse the device's reports from now on (a lost or retired PC)."""
        async with self.store.transaction() as tx:
            if not await tx.revoke_agent(agent_id, self.clock()):
                raise NotFound(f"no agent {agent_id} that is not revoked")
