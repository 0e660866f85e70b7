"""The offline sweep: on the collector's own schedule, devices whose heartbeats stopped are declared offline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from collector.alerts import dedupe
from collector.feed import Feed
from collector.rules import heartbeat
from collector.settings import Settings
from collector.store import Store

log = logging.getLogger(__name__)


async def sweep(store: Store, feed: Feed, settings: Settings, up_since: datetime, now: datetime) -> int:
    """Evaluate every enrolled device's silence once; returns how many feed events were added."""
    offline_after = timedelta(seconds=settings.heartbeat_interval_seconds * settings.offline_after_missed)
    grace = timedelta(seconds=settings.startup_grace_seconds)
    published = 0
    async with store.transaction() as tx:
        for agent in await tx.agents():
            if agent.revoked or agent.last_seen_at is None:
                continue
            verdict = heartbeat.evaluate_silence(
                agent.hostname, agent.last_seen_at, now, offline_after, up_since, grace
            )
            if verdict is not None:
                published += await dedupe.apply(tx, agent, [verdict], now, "rule:device_offline")
    if published:
        feed.notify()
    return published


async def run_sweeper(
    store: Store, feed: Feed, settings: Settings, up_since: datetime,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> None:
    """Sweep every `offline_check_seconds` until cancelled; a failed sweep is logged and retried."""
    while True:
        await asyncio.sleep(settings.offline_check_seconds)
        try:
            await sweep(store, feed, settings, up_since, clock())
        except Exception:
            log.exception("offline sweep failed; retrying in %s s", settings.offline_check_seconds)
