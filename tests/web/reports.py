"""A week of real, signed reports from one PC, for pages that show history (charts) and for screenshots."""

from __future__ import annotations

from datetime import timedelta

from aiohttp.test_utils import TestClient

from shared.backup_results import BackupJob, BackupResults
from shared.disk_health import DiskFacts, DiskHealth, FilesystemFacts, SmartAttribute
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import GIB

SERIAL = "WD-WCC4N1234567"


def disk(day: int) -> DiskFacts:
    """An ATA disk that warms up by a degree a day and reallocates four sectors a day."""
    reallocated = SmartAttribute(id=5, name="Reallocated_Sector_Ct", value=200, worst=200, threshold=140,
                                 prefailure=True, raw_value=4 * day, decoded=4 * day)
    return DiskFacts(device="/dev/sda", source="smartctl", protocol="ATA", status_read="complete",
                     model="WDC WD10EZEX-08WN4A0", serial=SERIAL, temperature_c=35 + day, smart_passed=True,
                     power_on_hours=20_000 + 24 * day, attributes=[reallocated])


def volume(day: int) -> FilesystemFacts:
    """C: losing 5 GiB a day from 40 GiB free of 100 GiB."""
    free = (40 - 5 * day) * GIB
    return FilesystemFacts(mount="C:", device="C:", fstype="ntfs", total_bytes=100 * GIB,
                           used_bytes=100 * GIB - free, free_bytes=free)


async def report_week(client: TestClient, agent: SimAgent, clock: Clock, days: int = 7) -> None:
    """One report a day: disk health and filesystems, and a nightly restic backup that grows a GiB a day."""
    for day in range(days):
        if day:
            clock.advance(days=1)
        ended = clock.now - timedelta(minutes=30)
        job = BackupJob(name="nightly", tool="restic", schedule="daily", last_result="success",
                        last_run_started_at=ended - timedelta(minutes=20 + day), last_run_ended_at=ended,
                        last_success_at=ended, duration_seconds=60 * (20 + day), bytes_total=(50 + day) * GIB)
        signals = [DiskHealth(collected_at=clock.now, disks=[disk(day)], filesystems=[volume(day)]),
                   BackupResults(collected_at=clock.now, jobs=[job])]
        body = agent.body(agent.envelope(signals))
        response = await client.post(REPORTS, data=body, headers=agent.headers(body))
        assert response.status == 200, await response.text()
