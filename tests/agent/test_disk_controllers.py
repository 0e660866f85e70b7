"""Hardware RAID and Storage Spaces: storcli JSON and Get-VirtualDisk output parsed, and looked at only where
such a controller is, saying "cannot look" when it is there and its tool is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.checks import CheckContext
from agent.checks.disk_health import DiskHealthCheck
from agent.checks.disk_health.controllers import (
    REBUILD_ARGS,
    STORCLI_TOOLS,
    VIRTUAL_DISKS_SCRIPT,
    VOLUMES_ARGS,
    ControllerOutputError,
    parse_megaraid,
    parse_rebuild,
    parse_virtual_disks,
)
from agent.commands import powershell
from shared.disk_health import DiskHealth
from tests.agent.test_disk_health import SCAN, SMARTCTL, WINDOWS, RecordedRunner

MEGARAID = Path(__file__).parent.parent / "fixtures" / "megaraid"
VOLUMES = ("storcli64", *VOLUMES_ARGS)
REBUILD = ("storcli64", *REBUILD_ARGS)


def text(name: str) -> str:
    return (MEGARAID / name).read_text()


def collect(runner: RecordedRunner, root: Path, platform: str = "linux") -> DiskHealth:
    [signal] = DiskHealthCheck(CheckContext(run=runner, root=root), platform=platform).collect()
    assert isinstance(signal, DiskHealth)
    return signal


def bound_driver(root: Path) -> Path:
    """A machine whose megaraid_sas driver drives one controller (as sysfs shows it)."""
    (root / "sys/bus/pci/drivers/megaraid_sas/0000:03:00.0").mkdir(parents=True)
    (root / "sys/bus/pci/drivers/megaraid_sas/new_id").touch()
    return root


def test_it_reads_optimal_megaraid_volumes_with_their_disks():
    [volume] = parse_megaraid(text("storcli-vall-optimal.json"))
    assert (volume.name, volume.level, volume.state, volume.condition, volume.os_device) == (
        "/c0/v0 system", "RAID1", "Optl", "optimal", "/dev/sda")
    assert [(m.slot, m.state, m.model) for m in volume.members] == [
        ("252:0", "Onln", "ST1200MM0099"), ("252:1", "Onln", "ST1200MM0099")]


def test_a_degraded_volume_with_a_disk_rebuilding_is_rebuilding_with_its_progress():
    rebuild = parse_rebuild(text("storcli-rebuild.json"))
    assert rebuild == {"/c0/e252/s3": 37.0}
    optimal, data = parse_megaraid(text("storcli-vall-rebuilding.json"), rebuild)
    assert optimal.condition == "optimal"
    assert (data.state, data.condition, data.rebuild_percent) == ("Dgrd", "rebuilding", 37.0)
    assert [m.rebuild_percent for m in data.members] == [None, 37.0, None, None]


def test_partially_degraded_and_offline_volumes():
    raid6, raid0 = parse_megaraid(text("storcli-vall-degraded.json"))
    assert (raid6.state, raid6.condition) == ("Pdgd", "degraded")
    assert (raid0.name, raid0.state, raid0.condition) == ("/c0/v1 scratch", "OfLn", "offline")
    assert [m.state for m in raid0.members] == ["UBad", "Onln"]


def test_a_controller_without_virtual_drives_has_none_and_other_output_is_an_error():
    assert parse_megaraid(text("storcli-no-vds.json")) == []
    with pytest.raises(ControllerOutputError, match="not storcli JSON output"):
        parse_megaraid("Error: license expired")


def test_the_check_reads_the_controller_its_driver_shows(tmp_path):
    runner = RecordedRunner({VOLUMES: (MEGARAID / "storcli-vall-rebuilding.json", 0),
                             REBUILD: (MEGARAID / "storcli-rebuild.json", 0)}, missing={"smartctl"})
    [reading] = collect(runner, bound_driver(tmp_path)).controllers
    assert (reading.source, reading.detected, reading.tool, reading.error) == (
        "megaraid", "megaraid_sas driver bound to 0000:03:00.0", "storcli64", None)
    assert [v.condition for v in reading.volumes] == ["optimal", "rebuilding"]


def test_perccli_is_asked_where_storcli_is_not_installed(tmp_path):
    runner = RecordedRunner({("perccli64", *VOLUMES_ARGS): (MEGARAID / "storcli-vall-optimal.json", 0)},
                            missing={"smartctl"})
    [reading] = collect(runner, bound_driver(tmp_path)).controllers
    assert (reading.tool, [v.condition for v in reading.volumes]) == ("perccli64", ["optimal"])
    assert [call[0] for call in runner.calls[1:]] == ["storcli64", "storcli", "perccli64", "perccli64"]


def test_no_tool_and_no_controller_is_no_error(tmp_path):
    runner = RecordedRunner({}, missing={"smartctl", *STORCLI_TOOLS})
    assert collect(runner, tmp_path).controllers == []


def test_a_controller_whose_tool_is_missing_cannot_be_looked_at(tmp_path):
    runner = RecordedRunner({}, missing={"smartctl", *STORCLI_TOOLS})
    [reading] = collect(runner, bound_driver(tmp_path)).controllers
    assert reading.volumes == []
    assert reading.error is not None and reading.error.startswith("cannot look: neither storcli nor perccli")


def test_disks_read_through_a_megaraid_show_the_controller_too(tmp_path):
    """The recorded smartctl scan of a real MegaRAID: its disks are read, its volumes cannot be."""
    runner = RecordedRunner({
        SCAN: (SMARTCTL / "smartctl_scan_megaraid.json", 0),
        ("smartctl", "--xall", "--json", "-n", "standby", "-d", "megaraid,0", "/dev/bus/0"): (
            SMARTCTL / "smart-megaraid0.json", 4),
        ("smartctl", "--xall", "--json", "-n", "standby", "-d", "megaraid,1", "/dev/bus/0"): (
            SMARTCTL / "smart-megaraid1.json", 4),
    })
    [reading] = collect(runner, tmp_path).controllers
    assert reading.detected == "smartctl reads /dev/bus/0 [megaraid,0] through a MegaRAID controller"
    assert reading.error is not None and "cannot look" in reading.error


@pytest.mark.parametrize("answer", ["storcli-no-vds.json", "storcli-no-controller.json"])
def test_an_installed_storcli_without_a_controller_reports_nothing(tmp_path, answer):
    runner = RecordedRunner({VOLUMES: (MEGARAID / answer, 0)}, missing={"smartctl"})
    assert collect(runner, tmp_path).controllers == []


def test_a_controller_whose_tool_fails_says_why(tmp_path):
    runner = RecordedRunner({VOLUMES: (MEGARAID / "storcli-no-controller.json", 0)}, missing={"smartctl"})
    [reading] = collect(runner, bound_driver(tmp_path)).controllers
    assert reading.error == "storcli64 /call/vall show all J (exit 0): storcli failed: Controller 0 not found"


def test_storage_spaces_being_repaired_and_healthy():
    mirror, parity = parse_virtual_disks((WINDOWS / "virtual_disks_repairing.json").read_text())
    assert (mirror.name, mirror.level, mirror.state, mirror.condition) == (
        "Mirror", "Mirror", "Warning, In Service", "rebuilding")
    assert (parity.level, parity.condition, len(parity.members)) == ("Parity", "optimal", 3)
    assert parity.members[0].state == "Healthy, OK"


def test_a_storage_space_that_lost_a_disk_is_degraded():
    [mirror] = parse_virtual_disks((WINDOWS / "virtual_disk_degraded.json").read_text())
    assert (mirror.state, mirror.condition) == ("Warning, Degraded, Incomplete", "degraded")
    assert [m.slot for m in mirror.members] == ["WDC WD40EFRX-68N32N0"]


def test_the_windows_check_reads_storage_spaces(tmp_path):
    runner = RecordedRunner({tuple(powershell(VIRTUAL_DISKS_SCRIPT)): (WINDOWS / "virtual_disk_degraded.json", 0)},
                            missing={"smartctl"})
    check = DiskHealthCheck(CheckContext(run=runner, root=tmp_path), platform="win32")
    readings = check.controllers([])
    assert [(r.source, r.error, [v.condition for v in r.volumes]) for r in readings] == [
        ("storage_spaces", None, ["degraded"])]
