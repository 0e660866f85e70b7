"""The offline sweep: on the collector's own schedule, devices whose heartbeats stopped are declared offline."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from collector.alerts import dedupe
from collector.alerts.dedupe import OnChange
from collector.feed import Feed
from collector.rules import Evaluation, heartbeat
from collector.settings import Settings
from collector.store import AgentRow, Store
from shared.clock import Clock, system_clock

log = logging.getLogger(__name__)


ALIVE = "collector_alive_at"
# Devices of a site that fall silent within this span went down together: one cause, one alert.
SITE_WINDOW = timedelta(minutes=5)
DEVICE_ACTOR = f"rule:{heartbeat.RULE}"
SITE_ACTOR = f"rule:{heartbeat.SITE_RULE}"


async def announce_downtime(store: Store, feed: Feed, settings: Settings, now: datetime) -> None:
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
    feed.notify()


async def sweep(
    store: Store, feed: Feed, settings: Settings, up_since: datetime, now: datetime, on_change: OnChange | None = None
) -> int:
    """Evaluate every enrolled device's silence once; returns how many feed events were added."""
    offline_after = timedelta(seconds=settings.heartbeat_interval_seconds * settings.offline_after_missed)
    grace = timedelta(seconds=settings.startup_grace_seconds)
    lifecycle = settings.alerts.lifecycle()
    published = 0
    async with store.transaction() as tx:
        verdicts: dict[int, list[tuple[AgentRow, Evaluation]]] = {}
        for agent in await tx.agents():
            if agent.revoked or agent.last_seen_at is None:
                continue
            verdict = heartbeat.evaluate_silence(
                agent.hostname, agent.last_seen_at, now, offline_after, up_since, grace
            )
            if verdict is not None:
                verdicts.setdefault(agent.site.site_id, []).append((agent, verdict))
        for devices in verdicts.values():
            # The site first: while it is down as a whole, its devices' own offline alerts stay quiet.
            silent = [(agent.hostname, agent.last_seen_at) for agent, v in devices if v.status != "ok"]
            site = heartbeat.evaluate_site(devices[0][0].site.site_name, silent, len(devices), SITE_WINDOW)
            published += await dedupe.apply(tx, devices[0][0], [site], now, SITE_ACTOR, lifecycle, on_change)
            for agent, verdict in devices:
                published += await dedupe.apply(tx, agent, [verdict], now, DEVICE_ACTOR, lifecycle, on_change)
        await tx.set_meta(ALIVE, now.isoformat())
    if published:
        feed.notify()
    return published


async def run_sweeper(
    store: Store, feed: Feed, settings: Settings, up_since: datetime,
    clock: Clock = system_clock, on_change: OnChange | None = None,
) -> None:
    """Sweep every `offline_check_seconds` until cancelled; a failed sweep is logged and retried."""
    while True:
        await asyncio.sleep(settings.offline_check_seconds)
        try:
            await sweep(store, feed, settings, up_since, clock(), on_change)
        except Exception:
            log.exception("offline sweep failed; retrying in %s s", settings.offline_check_seconds)
