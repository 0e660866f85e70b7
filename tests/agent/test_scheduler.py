"""The schedule: a job per check with interval, splay, jitter, coalescing and no overlap; the upload job."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from agent.checks import Check
from agent.checks.heartbeat import HeartbeatCheck
from agent.config import parse_config
from agent.identity import Identity
from agent.nightly import start_offset
from agent.outbox import OUTBOX_FILE, Outbox
from agent.scheduler import NIGHTLY_JOB, build_scheduler, check_job_id, collect_into
from agent.uploader import Uploader
from shared.base import Signal
from shared.wire import Envelope, Unknown
from tests.agent.support import T0


class DiskHealth(Check):
    """A check with its own default interval, failing when it runs."""

    kind = "disk_health"
    default_interval = 3600.0

    def collect(self) -> list[Signal]:
        raise RuntimeError("smartctl exited 2")


@pytest.fixture
def outbox(state_dir: Path, identity: Identity) -> Outbox:
    return Outbox(state_dir / OUTBOX_FILE, identity.agent_id, "boot-1")


async def test_it_schedules_each_check_with_interval_splay_jitter_coalescing_and_no_overlap(
    outbox: Outbox, identity: Identity
) -> None:
    config = parse_config(
        """
[schedule]
splay_seconds = 30
jitter_seconds = 5
[checks.heartbeat]
interval_seconds = 45
[upload]
interval_seconds = 7
""",
        "agent.toml",
    )
    checks = {"heartbeat": HeartbeatCheck(), "disk_health": DiskHealth()}
    now = T0 + timedelta(days=3650)  # in the future, so that nothing is due while the test looks
    scheduler = build_scheduler(
        config, checks, outbox, Uploader(outbox, identity, identity.collector_url), identity.agent_id, now=now,
        rand=lambda: 0.5,
    )
    scheduler.start(paused=True)
    try:
        heartbeat = scheduler.get_job(check_job_id("heartbeat"))
        disk = scheduler.get_job(check_job_id("disk_health"))
        assert heartbeat.trigger.interval == timedelta(seconds=45)
        assert disk.trigger.interval == timedelta(seconds=3600), "a check's default interval applies"
        for job in (heartbeat, disk):
            assert job.next_run_time == now + timedelta(seconds=15), "first run after the splay"
            assert job.trigger.jitter == 5
            assert (job.coalesce, job.max_instances, job.misfire_grace_time) == (True, 1, None)
            assert job.args[:2] == (checks[job.id.removeprefix("check:")], outbox)
        nightly = scheduler.get_job(NIGHTLY_JOB)
        local = nightly.trigger.get_next_fire_time(None, datetime.now().astimezone())
        offset = start_offset(identity.agent_id, config.maintenance)
        assert time(2) <= local.time() < time(3), "inside the first half of the 02:00-04:00 window"
        assert local.time() == (datetime(2000, 1, 1, 2) + offset).time(), "at this device's own offset"
        assert len(scheduler.get_jobs()) == 3, "checks and nightly; the uploader keeps its own rounds"
    finally:
        scheduler.shutdown(wait=False)


async def test_a_check_job_queues_what_the_check_found_even_when_it_failed(outbox: Outbox) -> None:
    told = []
    seq = await collect_into(DiskHealth(), outbox, lambda: told.append("queued"))
    [(pending_seq, body)] = outbox.pending(1 << 20)
    [signal] = Envelope.model_validate_json(body).signals
    assert pending_seq == seq
    assert isinstance(signal, Unknown)
    assert signal.error == "RuntimeError: smartctl exited 2"
    assert told == ["queued"]


async def test_news_from_a_check_brings_the_next_upload_forward(outbox: Outbox, identity: Identity) -> None:
    config = parse_config("[upload]\ninterval_seconds = 600\n", "agent.toml")
    later = datetime.now(UTC) + timedelta(days=1)
    uploader = Uploader(outbox, identity, identity.collector_url)
    scheduler = build_scheduler(config, {"disk_health": DiskHealth()}, outbox, uploader, identity.agent_id,
                                now=later)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job(check_job_id("disk_health"))
        assert not uploader._wake.is_set()
        await job.func(*job.args)
        assert uploader._wake.is_set(), "the uploader is woken, not left to its interval"
    finally:
        scheduler.shutdown(wait=False)
