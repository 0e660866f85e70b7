"""The offline sweep: on the collector's own schedule, devices whose heartbeats stopped are declared offline."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from collector.alerts import dedupe
from collector.alerts.dedupe import OnChange
from collector.rules import Evaluation, heartbeat
from collector.rules.expectations import UNKNOWN_CLASS, Expectation
from collector.settings import Settings
from collector.store import AgentRow, ClientHours, Store, log_failure
from shared.clock import Clock, system_clock

log = logging.getLogger(__name__)


ALIVE = "collector_alive_at"
# Devices of a site that fall silent within this span went down together: one cause, one alert.
SITE_WINDOW = timedelta(minutes=5)
DEVICE_ACTOR = f"rule:{heartbeat.RULE}"
SITE_ACTOR = f"rule:{heartbeat.SITE_RULE}"


class Availability:
    """Since when the collector has been able to take reports: its start, or the last time its database failed
    a request. The offline sweep's grace runs from then, so no device is offline because the collector was."""

    def __init__(self, up_since: datetime) -> None:
        self.since = up_since

    def failed(self, at: datetime) -> None:
        """The database failed a request at `at` (busy, locked, full, unreachable): agents are backing off."""
        self.since = max(self.since, at)


async def announce_downtime(store: Store, settings: Settings, now: datetime) -> None:
    """After the collector itself was down, say so in the feed: "I was down from ... to ..."."""
    async with store.transaction() as tx:
        alive = await tx.get_meta(ALIVE)
        if alive is None:
            return
        last = datetime.fromisoformat(alive)
        if now - last > timedelta(seconds=3 * settings.offline_check_seconds):
            await tx.append_feed(now, "collector.down", {
                "summary": f"the collector was down from {last:%Y-%m-%d %H:%M} to {now:%H:%M} UTC; devices get "
                           f"{settings.startup_grace_seconds} s to catch up before anyone is declared offline",
                "down_from": last.isoformat(), "down_to": now.isoformat(),
            })


async def sweep(
    store: Store, settings: Settings, availability: Availability, now: datetime, on_change: OnChange | None = None
) -> int:
    """Judge the devices whose silence may have changed something; returns how many feed events were added.

    A sweep the database held back for a heartbeat interval or more (a write lock another process held) counts
    as the database failing: the devices' reports were held back just as long, so the grace starts again.

    1. Candidates come from the database: devices silent past the limit with no offline alert open, devices
       seen again with one open, and all devices of their sites and of sites with an open site alert
       (a site's verdict counts all its devices). A device whose verdict matches its alert is left alone.
    2. Per site, the site's verdict first: while it is down as a whole, its devices' own alerts stay quiet.
    3. Then each candidate device's own verdict.
    """
    offline_after = timedelta(seconds=settings.heartbeat_interval_seconds * settings.offline_after_missed)
    grace = timedelta(seconds=settings.startup_grace_seconds)
    lifecycle = settings.alerts.lifecycle()
    published = 0
    asked = time.monotonic()
    async with store.transaction() as tx:
        sites: dict[int, list[tuple[AgentRow, str | None, Evaluation, Expectation]]] = {}
        # The first statement takes the write lock (SQLite's BEGIN IMMEDIATE goes with it): waited for here.
        candidates = await tx.offline_candidates(heartbeat.RULE, heartbeat.SITE_RULE, now - offline_after)
        held = time.monotonic() - asked
        if held >= settings.heartbeat_interval_seconds:
            now += timedelta(seconds=held)
            availability.failed(now)
        up_since = availability.since
        hours = await tx.client_hours() if candidates else {}
        for agent, open_severity in candidates:
            expect = expectation(agent, settings, hours)
            verdict = heartbeat.evaluate_silence(agent.hostname, agent.last_seen_at, now, offline_after,
                                                 up_since, grace, expect)
            if verdict is not None:  # None: the collector's own grace period after it was down
                sites.setdefault(agent.site.site_id, []).append((agent, open_severity, verdict, expect))
        for devices in sites.values():
            # A site is down when the devices expected on now went silent together: at night, its servers.
            expected = [(agent, v) for agent, _, v, expect in devices if expect.expected_up(now)]
            silent = [(agent.hostname, agent.last_seen_at) for agent, v in expected if v.status != "ok"]
            site = heartbeat.evaluate_site(devices[0][0].site.site_name, silent, len(expected), SITE_WINDOW)
            published += await dedupe.apply(tx, devices[0][0], [site], now, SITE_ACTOR, lifecycle, on_change)
            for agent, open_severity, verdict, _ in devices:
                if (None if verdict.status == "ok" else verdict.status) != open_severity:
                    published += await dedupe.apply(tx, agent, [verdict], now, DEVICE_ACTOR, lifecycle, on_change)
        await tx.set_meta(ALIVE, now.isoformat())
    return published


def expectation(agent: AgentRow, settings: Settings, hours: dict[int, ClientHours]) -> Expectation:
    """What is expected of the device: its class (a device of no known class counts as a server) and its
    client's business hours (the collector's defaults where the client has none)."""
    defaults = settings.business_hours
    return Expectation(agent.device_class or UNKNOWN_CLASS,
                       defaults.for_client(hours.get(agent.site.client_id, ClientHours())),
                       defaults.workstation_off_days)


async def run_sweeper(
    store: Store, settings: Settings, availability: Availability,
    clock: Clock = system_clock, on_change: OnChange | None = None,
) -> None:
    """Sweep every `offline_check_seconds` until cancelled; a failed sweep is logged and retried."""
    while True:
        await asyncio.sleep(settings.offline_check_seconds)
        try:
            await sweep(store, settings, availability, clock(), on_change)
        except Exception as exc:
            if store.is_transient(exc):
                availability.failed(clock())
            log_failure(log, store, exc, "offline sweep failed; retrying in %s s", settings.offline_check_seconds)
