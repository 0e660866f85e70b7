"""The schedule: one APScheduler job per enabled check, spread by splay and jitter, plus nightly maintenance
(the uploader keeps its own rounds, on the monotonic clock: see Uploader.run)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from agent.checks import Check
from agent.config import AgentConfig
from agent.nightly import run_nightly, start_offset
from agent.outbox import Outbox
from agent.uploader import Uploader
from shared.clock import Clock, system_clock

log = logging.getLogger(__name__)

NIGHTLY_JOB = "nightly"


async def collect_into(check: Check, outbox: Outbox, queued: Callable[[], None]) -> int:
    """A check's job: run it (failures come back as `unknown`), queue the result durably, call `queued`."""
    signals = await check.run()
    seq = outbox.put(signals)
    log.debug("check %s: queued %d signals as envelope %d", check.kind, len(signals), seq)
    queued()
    return seq


def check_job_id(kind: str) -> str:
    """The scheduler's job id of a check."""
    return f"check:{kind}"


def build_scheduler(
    config: AgentConfig, checks: Mapping[str, Check], outbox: Outbox, uploader: Uploader, agent_id: str,
    *, now: datetime | None = None, rand: Callable[[], float] = random.random, clock: Clock = system_clock,
) -> AsyncIOScheduler:
    """A scheduler (not started) with a job per check and the nightly maintenance job.

    Each check first runs after a random splay, then every interval shifted by jitter, so that a site's
    agents do not all report at once after a power cut. A late run is run once (coalesce), and a run
    still going when the next is due makes that one wait (max_instances=1). A check's news wakes the
    uploader, so it does not wait for the upload interval.
    """
    # APScheduler compares job times with the wall clock itself, so they are read from it too.
    now = now or system_clock()
    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={
        "coalesce": True, "max_instances": 1,
        # None: a run missed while the machine slept still happens (once), however late.
        "misfire_grace_time": None,
    })
    jitter = config.schedule.jitter_seconds or None

    for kind, check in checks.items():
        interval = config.check(kind).interval_seconds or check.default_interval
        first = now + timedelta(seconds=rand() * config.schedule.splay_seconds)
        scheduler.add_job(
            collect_into, IntervalTrigger(seconds=interval, start_date=first, jitter=jitter, timezone=UTC),
            args=(check, outbox, uploader.wake), id=check_job_id(kind), name=f"check {kind}",
            next_run_time=first,
        )
    scheduler.add_job(run_nightly, nightly_trigger(config, agent_id), args=(checks, outbox, uploader.upload_once,
                      config.maintenance, lambda: clock().astimezone()), id=NIGHTLY_JOB, name="nightly maintenance")
    return scheduler


def nightly_trigger(config: AgentConfig, agent_id: str) -> CronTrigger:
    """Every night at the window's start plus this device's own offset, in the PC's local time."""
    window = config.maintenance.window_start
    start = timedelta(hours=window.hour, minutes=window.minute, seconds=window.second)
    at = int(((start + start_offset(agent_id, config.maintenance)) % timedelta(days=1)).total_seconds())
    return CronTrigger(hour=at // 3600, minute=at // 60 % 60, second=at % 60)
