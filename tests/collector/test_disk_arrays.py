"""Hardware RAID (MegaRAID) and Storage Spaces in the disk_health verdict: degraded is critical, rebuilding a
warning with its progress, optimal ok, a controller whose tool is missing "cannot look" (unknown)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.checks.disk_health.controllers import parse_megaraid, parse_rebuild, parse_virtual_disks
from collector.app import create_app
from collector.rules.disk_health import evaluate
from shared.disk_health import ControllerReading, DiskHealth
from tests.collector.test_disk_health import NOW, WINDOWS, history
from tests.collector.test_disk_identity import disk_alerts, send
from tests.collector.test_incidents import settings_for
from tests.support.clock import Clock
from tests.support.collector import enrolled

MEGARAID = Path(__file__).parent.parent / "fixtures" / "megaraid"
DETECTED = "megaraid_sas driver bound to 0000:03:00.0"


def megaraid(name: str, rebuild: str | None = None) -> ControllerReading:
    progress = parse_rebuild((MEGARAID / rebuild).read_text()) if rebuild else None
    return ControllerReading(source="megaraid", detected=DETECTED, tool="storcli64",
                             volumes=parse_megaraid((MEGARAID / name).read_text(), progress))


def verdicts(*readings: ControllerReading) -> dict[str, tuple[str, str]]:
    evaluations = evaluate(DiskHealth(collected_at=NOW, controllers=list(readings)), history())
    return {e.subject: (e.status, e.summary) for e in evaluations if e.subject.startswith("raid:")}


def test_optimal_volumes_are_ok():
    assert verdicts(megaraid("storcli-vall-optimal.json")) == {
        "raid:megaraid": ("ok", f"1 MegaRAID volume(s) read on books-pc ({DETECTED})"),
        "raid:megaraid:/c0/v0 system": ("ok", "MegaRAID /c0/v0 system (/dev/sda) (RAID1) on books-pc is healthy"),
    }


def test_a_rebuilding_volume_is_a_warning_with_its_progress():
    found = verdicts(megaraid("storcli-vall-rebuilding.json", "storcli-rebuild.json"))
    assert found["raid:megaraid:/c0/v1 data"] == (
        "warning", "MegaRAID /c0/v1 data (/dev/sdb) (RAID5) on books-pc: rebuilding (37 % done); disk(s) 252:3 Rbld")
    assert found["raid:megaraid:/c0/v0 system"][0] == "ok"


def test_degraded_and_offline_volumes_are_critical_naming_their_disks():
    found = verdicts(megaraid("storcli-vall-degraded.json"))
    assert found["raid:megaraid:/c0/v0"] == (
        "critical", "MegaRAID /c0/v0 (/dev/sda) (RAID6) on books-pc: degraded: Pdgd; disk(s) 252:1 Offln")
    assert found["raid:megaraid:/c0/v1 scratch"][0] == "critical"
    assert "offline: OfLn; disk(s) 252:4 UBad" in found["raid:megaraid:/c0/v1 scratch"][1]


def test_a_controller_that_cannot_be_looked_at_is_unknown_saying_so():
    reading = ControllerReading(source="megaraid", detected=DETECTED,
                                error="cannot look: neither storcli nor perccli is installed; install storcli")
    assert verdicts(reading) == {"raid:megaraid": (
        "unknown", "MegaRAID arrays on books-pc: cannot look: neither storcli nor perccli is installed; "
                   "install storcli")}


def test_storage_spaces_repairing_degraded_and_healthy():
    repairing = parse_virtual_disks((WINDOWS / "virtual_disks_repairing.json").read_text())
    [degraded] = parse_virtual_disks((WINDOWS / "virtual_disk_degraded.json").read_text())
    spaces = ControllerReading(source="storage_spaces", detected="Get-VirtualDisk lists virtual disks",
                               volumes=[*repairing, degraded.model_copy(update={"name": "Mirror2"})])
    found = verdicts(spaces)
    assert found["raid:storage_spaces:Mirror"] == (
        "warning", "Storage Spaces Mirror (Mirror) on books-pc: rebuilding")
    assert found["raid:storage_spaces:Archive"][0] == "ok"
    assert found["raid:storage_spaces:Mirror2"] == (
        "critical", "Storage Spaces Mirror2 (Mirror) on books-pc: degraded: Warning, Degraded, Incomplete")


# --- through the running collector ------------------------------------------------------------------------


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


async def test_a_degraded_volume_alerts_rebuilding_softens_it_and_optimal_resolves_it(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client)

    async def report(reading: ControllerReading) -> dict[str, str]:
        clock.advance(hours=1)
        await send(client, agent, DiskHealth(collected_at=clock.now, controllers=[reading]))
        return {subject: alert["severity"] for subject, alert in (await disk_alerts(client)).items()}

    assert await report(megaraid("storcli-vall-optimal.json")) == {}
    # The second disk of the RAID1 failed: the volume degraded.
    degraded = megaraid("storcli-vall-optimal.json")
    degraded.volumes[0] = degraded.volumes[0].model_copy(update={"state": "Dgrd", "condition": "degraded"})
    assert await report(degraded) == {"raid:megaraid:/c0/v0 system": "critical"}
    rebuilding = degraded.model_copy(deep=True)
    rebuilding.volumes[0] = rebuilding.volumes[0].model_copy(update={"condition": "rebuilding",
                                                                     "rebuild_percent": 12.0})
    assert await report(rebuilding) == {"raid:megaraid:/c0/v0 system": "warning"}
    await report(megaraid("storcli-vall-optimal.json"))
    clock.advance(hours=1)
    await report(megaraid("storcli-vall-optimal.json"))
    assert await disk_alerts(client) == {}
    # The tool uninstalled while the controller is there: "cannot look" is its own alert, never a silent ok.
    cannot = ControllerReading(source="megaraid", detected=DETECTED, error="cannot look: storcli is not installed")
    await report(cannot)
    alerts = await disk_alerts(client)
    assert "raid:megaraid" in alerts and "cannot look" in alerts["raid:megaraid"]["summary"]
