"""The disk_health check: smartctl parsing, raw-value decoding, exit bits, Windows parsing, filesystems."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import psutil
import pytest

from agent.checks import CheckContext
from agent.checks.disk_health import DiskHealthCheck, smartctl_missing
from agent.checks.disk_health.filesystems import read_filesystems, real_partitions
from agent.checks.disk_health.mdstat import parse_mdstat
from agent.checks.disk_health.smartctl import decode_raw, parse_xall, parse_xall_text
from agent.checks.disk_health.windows import (
    DISK_DRIVES_SCRIPT,
    FAILURE_PREDICT_DATA_SCRIPT,
    FAILURE_PREDICT_THRESHOLDS_SCRIPT,
    PHYSICAL_DISKS_SCRIPT,
    RELIABILITY_SCRIPT,
    parse_windows_disks,
    smart_page_attributes,
)
from agent.commands import CommandNotFound, CommandResult, powershell, run_command
from shared.disk_health import DiskHealth
from shared.wire import Unknown

FIXTURES = Path(__file__).parent.parent / "fixtures"
SMARTCTL = FIXTURES / "smartctl"
WINDOWS = FIXTURES / "windows"
# psutil's own partition record type (its module path is private and moves between versions).
sdiskpart = type(psutil.disk_partitions(all=True)[0])


def fixture(name: str) -> dict:
    return json.loads((SMARTCTL / name).read_text())


class RecordedRunner:
    """A Runner answering from recorded outputs: argv -> (fixture path, exit status); logs every call."""

    def __init__(
        self, answers: dict[tuple[str, ...], tuple[Path, int]], missing: set[str] = frozenset()
    ) -> None:
        self.answers = answers
        self.missing = missing
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        # A program with no recorded answer at all is not installed here (storcli on most machines).
        if argv[0] in self.missing or all(recorded[0] != argv[0] for recorded in self.answers):
            raise CommandNotFound(f"{argv[0]} is not installed or not on PATH")
        if argv not in self.answers:
            raise subprocess.TimeoutExpired(list(argv), timeout)
        path, code = self.answers[argv]
        return CommandResult(argv, code, path.read_text(), "")


SCAN = ("smartctl", "--scan-open", "--json")


def check_with(runner: RecordedRunner, platform: str = "linux") -> DiskHealth:
    signals = DiskHealthCheck(CheckContext(run=runner), platform=platform).collect()
    assert len(signals) == 1
    assert isinstance(signals[0], DiskHealth)
    return signals[0]


# --- the check, through the Runner seam -----------------------------------------------------------------


def test_it_scans_then_reads_each_disk_with_its_type():
    runner = RecordedRunner(
        {
            SCAN: (SMARTCTL / "smartctl_scan_megaraid.json", 0),
            ("smartctl", "--xall", "--json", "-n", "standby", "-d", "megaraid,0", "/dev/bus/0"): (
                SMARTCTL / "smart-megaraid0.json",
                4,
            ),
            ("smartctl", "--xall", "--json", "-n", "standby", "-d", "megaraid,1", "/dev/bus/0"): (
                SMARTCTL / "smart-megaraid1.json",
                4,
            ),
        }
    )
    signal = check_with(runner)
    assert runner.calls[:3] == [
        SCAN,
        ("smartctl", "--xall", "--json", "-n", "standby", "-d", "megaraid,0", "/dev/bus/0"),
        ("smartctl", "--xall", "--json", "-n", "standby", "-d", "megaraid,1", "/dev/bus/0"),
    ]
    assert [d.device for d in signal.disks] == ["/dev/bus/0 [megaraid,0]", "/dev/bus/0 [megaraid,1]"]
    # Exit bit 2 behind the MegaRAID, yet everything read: complete, not a permanent unknown.
    assert [d.status_read for d in signal.disks] == ["complete", "complete"]
    assert next(a.decoded for a in signal.disks[1].attributes if a.id == 5) == 387
    assert signal.error is None


def test_it_reports_a_failing_nvme_disk_with_its_health_log():
    runner = RecordedRunner(
        {
            SCAN: (SMARTCTL / "smartctl_scan_nvme.json", 0),
            ("smartctl", "--xall", "--json", "-n", "standby", "-d", "nvme", "/dev/nvme0"): (
                SMARTCTL / "smart-nvme-failed.json",
                0,
            ),
        }
    )
    (disk,) = check_with(runner).disks
    assert (disk.status_read, disk.serial, disk.model) == (
        "complete",
        "S466NX0M776250H",
        "Samsung SSD 970 EVO 500GB",
    )
    assert disk.nvme is not None
    assert (disk.nvme.media_errors, disk.nvme.available_spare, disk.wear_percent) == (7, 99, 3)
    assert disk.error_log_entries == 62


def test_it_marks_a_disk_it_could_not_open_unknown_never_healthy():
    runner = RecordedRunner(
        {
            SCAN: (SMARTCTL / "smartctl_scan_nvme.json", 0),
            ("smartctl", "--xall", "--json", "-n", "standby", "-d", "nvme", "/dev/nvme0"): (
                SMARTCTL / "smart-fail.json", 2
            ),
        }
    )
    (disk,) = check_with(runner).disks
    assert disk.status_read == "unknown"
    assert disk.smart_passed is None
    assert any("Open failed, Error=5" in p for p in disk.read_problems)
    assert any("exit bit 1" in p for p in disk.read_problems)


def test_it_marks_a_disk_whose_smartctl_hangs_unknown():
    runner = RecordedRunner({SCAN: (SMARTCTL / "smartctl_scan_nvme.json", 0)})
    (disk,) = check_with(runner).disks
    assert disk.status_read == "unknown"
    assert "did not answer" in disk.read_problems[0]


def test_it_says_install_smartmontools_when_smartctl_is_missing_on_linux():
    signal = check_with(RecordedRunner({}, missing={"smartctl"}))
    assert signal.error == "smartctl not found: install smartmontools (apt install smartmontools)"
    assert signal.error == smartctl_missing("linux")
    assert signal.disks == []
    assert signal.filesystems, "filesystem space is still reported without smartctl"


def test_it_falls_back_to_windows_storage_counters_without_smartctl():
    runner = RecordedRunner(
        {
            tuple(powershell(PHYSICAL_DISKS_SCRIPT)): (WINDOWS / "physical_disks_three.json", 0),
            tuple(powershell(RELIABILITY_SCRIPT)): (WINDOWS / "reliability_counters_two.json", 0),
        },
        missing={"smartctl"},
    )
    signal = check_with(runner, platform="win32")
    assert signal.error is None
    assert [d.source for d in signal.disks] == ["windows"] * 3
    assert signal.disks[1].windows_operational == ["Predictive Failure", "OK"]
    assert [d.attributes for d in signal.disks] == [[], [], []], "no SMART data from the driver: none reported"


def test_windows_disks_get_their_smart_attributes_from_the_disk_driver():
    runner = RecordedRunner(
        {
            tuple(powershell(PHYSICAL_DISKS_SCRIPT)): (WINDOWS / "physical_disks_three.json", 0),
            tuple(powershell(RELIABILITY_SCRIPT)): (WINDOWS / "reliability_counters_two.json", 0),
            tuple(powershell(FAILURE_PREDICT_DATA_SCRIPT)): (WINDOWS / "failure_predict_data.json", 0),
            tuple(powershell(FAILURE_PREDICT_THRESHOLDS_SCRIPT)): (WINDOWS / "failure_predict_thresholds.json", 0),
            tuple(powershell(DISK_DRIVES_SCRIPT)): (WINDOWS / "disk_drives.json", 0),
        },
        missing={"smartctl"},
    )
    disks = {d.device: d for d in check_with(runner, platform="win32").disks}
    hitachi = {a.id: a for a in disks["\\\\.\\PHYSICALDRIVE1"].attributes}
    assert (hitachi[5].decoded, hitachi[5].when_failed, hitachi[5].threshold) == (1975, "now", 5)
    assert (hitachi[197].decoded, hitachi[196].decoded, hitachi[194].decoded) == (8, 3831, 25)
    assert disks["\\\\.\\PHYSICALDRIVE0"].attributes == []


def test_the_smart_page_of_the_driver_reads_like_smartctls_table():
    page = json.loads((WINDOWS / "failure_predict_data.json").read_text())["VendorSpecific"]
    limits = json.loads((WINDOWS / "failure_predict_thresholds.json").read_text())["VendorSpecific"]
    from_driver = {a.id: a for a in smart_page_attributes(page, limits, seagate=False)}
    from_smartctl = {a.id: a for a in parse_xall(fixture("smart-fail2.json")).attributes}
    assert from_driver.keys() == from_smartctl.keys()
    for attr_id, attr in from_driver.items():
        theirs = from_smartctl[attr_id]
        assert (attr.value, attr.worst, attr.threshold, attr.raw_value, attr.decoded, attr.when_failed) == (
            theirs.value, theirs.worst, theirs.threshold, theirs.raw_value, theirs.decoded, theirs.when_failed)


def test_it_reports_a_scan_that_is_not_json_as_the_signal_error():
    runner = RecordedRunner({SCAN: (WINDOWS / "README.md", 1)})
    signal = check_with(runner)
    assert signal.error is not None
    assert signal.error.startswith("smartctl --scan-open gave no device list: not smartctl JSON")


async def test_it_runs_through_the_base_class_without_turning_into_unknown():
    runner = RecordedRunner(
        {
            SCAN: (SMARTCTL / "smartctl_scan_nvme.json", 0),
            ("smartctl", "--xall", "--json", "-n", "standby", "-d", "nvme", "/dev/nvme0"): (
                SMARTCTL / "smart-nvme.json", 0
            ),
        }
    )
    signals = await DiskHealthCheck(CheckContext(run=runner), platform="linux").run()
    assert not isinstance(signals[0], Unknown)
    assert DiskHealthCheck.kind == "disk_health"
    assert DiskHealthCheck.default_interval == 3600


# --- smartctl parsing --------------------------------------------------------------------------------------


def test_it_reads_the_facts_of_a_failing_ata_disk():
    disk = parse_xall(fixture("smart-fail2.json"))
    assert (disk.device, disk.protocol, disk.smartctl_exit_status) == ("/dev/sdc", "ATA", 216)
    assert (disk.smart_passed, disk.power_on_hours, disk.temperature_c) == (False, 65592, 25)
    realloc = next(a for a in disk.attributes if a.id == 5)
    assert (realloc.when_failed, realloc.decoded, realloc.value, realloc.threshold) == ("now", 1975, 1, 5)
    assert disk.self_test_failures == 3
    assert disk.last_failed_self_test == "Extended offline: Completed: read failure at 4 h"
    assert disk.error_log_entries == 56
    assert {a.id for a in disk.attributes} <= {
        1,
        5,
        7,
        9,
        10,
        184,
        187,
        188,
        190,
        194,
        195,
        196,
        197,
        198,
        199,
        201,
    }


def test_it_reads_scsi_defects_errors_and_the_trip_temperature():
    disk = parse_xall(fixture("smart-scsi.json"))
    assert (disk.scsi_grown_defects, disk.uncorrected_errors) == (56, 0)
    assert (disk.temperature_c, disk.temperature_limit_c, disk.rotation_rpm) == (34, 68, 7200)
    assert disk.status_read == "complete"


def test_it_takes_the_sct_operating_limit_as_the_drive_temperature_limit():
    disk = parse_xall(fixture("smart-ata-full.json"))
    assert (disk.temperature_c, disk.temperature_limit_c) == (36, 70)


def test_it_ignores_a_zero_temperature_of_a_raid_volume():
    disk = parse_xall(fixture("smart-raid.json"))
    assert (disk.temperature_c, disk.temperature_limit_c) == (None, None)


def test_it_takes_the_device_from_the_command_line_when_smartctl_could_not_open_it():
    assert parse_xall(fixture("smart-fail.json")).device == "/dev/sda"


def test_it_turns_output_that_is_not_json_into_an_unknown_disk():
    disk = parse_xall_text("Smartctl: permission denied\n", "/dev/sda", 2)
    assert (disk.device, disk.status_read, disk.smartctl_exit_status) == ("/dev/sda", "unknown", 2)


@pytest.mark.parametrize(
    ("exit_status", "expected"),
    [
        (0, "complete"),
        (1, "unknown"),  # bit 0: command line did not parse
        (2, "unknown"),  # bit 1: device open failed
        (4, "complete"),  # bit 2 alone: a SMART command failed, yet everything needed was read
        (8, "complete"),  # bit 3: disk failing - read fine, verdict is the rule's
        (16 | 64, "complete"),
        (2 | 8, "unknown"),
    ],
)
def test_it_derives_the_read_status_from_the_exit_bits(exit_status, expected):
    disk = parse_xall(fixture("smart-ata.json"), exit_status=exit_status)
    assert disk.status_read == expected
    assert disk.smartctl_exit_status == exit_status


def test_exit_bit_2_with_data_missing_is_partial_and_says_why():
    disk = parse_xall(fixture("smart-raid.json"))
    assert disk.status_read == "partial"
    assert disk.read_problems[0].startswith("smartctl exit bit 2:")


@pytest.mark.parametrize("name", ["smart-pass.json", "smartctl_info_nvme.json", "smart-sat.json"])
def test_it_calls_an_output_without_smart_data_partial(name):
    assert parse_xall(fixture(name)).status_read == "partial"


# --- raw values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attr_id", "raw", "seagate", "expected"),
    [
        # Seagate 188 raw16: 0x0001_0001_0015 is 21 timeouts (>5 s and >7.5 s counters above).
        (188, 4295032853, True, 21),
        (188, 4295032853, False, 21),
        # Seagate error rates: errors above bit 32, operations below.
        (1, (3 << 32) | 199781349, True, 3),
        (7, 3275107577, True, 0),
        (195, 199781349, True, 0),
        (1, 83905456, False, 83905456),
        # raw16(raw16): smartctl prints "2111 (12437 0)".
        (196, 53416508262463, False, 2111),
        # temperatures: "32 (Min/Max 24/38)".
        (194, 163210330144, False, 32),
        (190, 487784477, False, 29),
        # power-on hours raw24(raw8): "2725 (151 234 0)".
        (9, 167031278144165, False, 2725),
        (5, 387, False, 387),
    ],
)
def test_it_decodes_the_counter_that_matters_from_packed_raw_values(attr_id, raw, seagate, expected):
    assert decode_raw(attr_id, raw, seagate) == expected


def test_it_decodes_seagate_packed_values_in_a_real_output():
    data = fixture("smart-sat.json")
    data["model_name"] = "ST2000LM003 HN-M201RAD"
    for row in data["ata_smart_attributes"]["table"]:
        if row["id"] == 188:
            row["raw"] = {"value": 4295032853, "string": "1 1 21"}
    attrs = {a.id: a for a in parse_xall(data).attributes}
    assert attrs[188].decoded == 21
    assert attrs[188].raw_value == 4295032853
    assert attrs[1].decoded == 0  # 83905456 read operations, no errors
    assert attrs[196].decoded == 2111
    assert attrs[194].decoded == 29


# --- Windows ---------------------------------------------------------------------------------------------


def test_it_parses_a_single_windows_disk_printed_as_one_object():
    (disk,) = parse_windows_disks(
        (WINDOWS / "physical_disks_one.json").read_text(),
        (WINDOWS / "reliability_counters_one.json").read_text(),
    )
    assert disk.device == "\\\\.\\PHYSICALDRIVE0"
    assert (disk.protocol, disk.rotation_rpm, disk.windows_health, disk.windows_operational) == (
        "NVMe",
        0,
        "Healthy",
        ["OK"],
    )
    assert (disk.temperature_c, disk.temperature_limit_c, disk.wear_percent, disk.power_on_hours) == (
        41,
        85,
        3,
        5312,
    )
    assert (disk.uncorrected_errors, disk.capacity_bytes, disk.status_read) == (0, 1000204886016, "complete")


def test_it_parses_several_windows_disks_printed_as_an_array():
    disks = parse_windows_disks(
        (WINDOWS / "physical_disks_three.json").read_text(),
        (WINDOWS / "reliability_counters_two.json").read_text(),
    )
    assert [d.serial for d in disks] == ["50026B7784A1C3F2", "ZFL1R3KQ", "575844314131393544313837"]
    assert [d.windows_health for d in disks] == ["Healthy", "Warning", "Unknown"]
    assert [d.protocol for d in disks] == ["SATA", "SATA", "USB"]
    assert [d.rotation_rpm for d in disks] == [0, 7200, None]
    assert disks[1].uncorrected_errors == 14
    assert disks[2].status_read == "partial"
    assert len(disks[2].read_problems) == 2


def test_it_parses_windows_output_with_a_byte_order_mark_or_nothing_at_all():
    text = "\ufeff" + (WINDOWS / "physical_disks_one.json").read_text()
    assert len(parse_windows_disks(text, "")) == 1
    assert parse_windows_disks("", "") == []


# --- filesystems -----------------------------------------------------------------------------------------


def test_it_keeps_real_filesystems_and_skips_pseudo_network_and_image_mounts():
    partitions = [
        sdiskpart("/dev/sda2", "/", "ext4", "rw,relatime"),
        sdiskpart("/dev/loop3", "/snap/core/1", "squashfs", "ro,nodev"),
        sdiskpart("/dev/sr0", "/media/cd", "iso9660", "ro"),
        sdiskpart("nas:/share", "/mnt/nas", "nfs4", "rw"),
        sdiskpart("tmpfs", "/run", "tmpfs", "rw"),
        sdiskpart("D:\\", "D:\\", "", "cdrom"),
        sdiskpart("\\\\nas\\share", "Z:\\", "NTFS", "rw,remote"),
        sdiskpart("C:\\", "C:\\", "NTFS", "rw,fixed"),
        sdiskpart("/dev/sda2", "/", "ext4", "rw,relatime"),
    ]
    assert [p.mountpoint for p in real_partitions(partitions)] == ["/", "C:\\"]


def test_it_reads_space_and_inodes_of_the_real_mounts_here():
    mounts = {fs.mount: fs for fs in read_filesystems()}
    expected = {p.mountpoint for p in real_partitions(psutil.disk_partitions(all=False))}
    assert set(mounts) == expected
    for fs in mounts.values():
        assert fs.total_bytes > 0
        assert fs.free_bytes <= fs.total_bytes
        assert fs.inodes_total is None or fs.inodes_free <= fs.inodes_total


# --- sleeping disks and SCSI names -------------------------------------------------------------------------

# What smartctl 7.3 writes for `--xall --json -n standby` on a sleeping disk (ataprint.cpp: an information
# message, exit status 2), written out from the source: no sleeping disk was at hand to record.
STANDBY_OUTPUT = {
    "json_format_version": [1, 0],
    "smartctl": {
        "version": [7, 3],
        "argv": ["smartctl", "--xall", "--json", "-n", "standby", "/dev/sdb"],
        "messages": [{"string": "Device is in STANDBY mode, exit(2)", "severity": "information"}],
        "exit_status": 2,
    },
    "device": {"name": "/dev/sdb", "info_name": "/dev/sdb [SAT]", "type": "sat", "protocol": "ATA"},
}


def test_a_sleeping_disk_is_left_asleep_and_reported_standby_not_unknown():
    disk = parse_xall(STANDBY_OUTPUT, "/dev/sdb")
    assert (disk.status_read, disk.read_problems) == ("standby", ["Device is in STANDBY mode, exit(2)"])


def test_scsi_disks_are_named_with_smartctl_7_3_keys():
    # smartctl 7.3 renamed SCSI vendor/product/model_name/revision to scsi_* (scsiprint.cpp).
    data = fixture("smart-scsi.json")
    for old in ("vendor", "product", "model_name", "revision"):
        data[f"scsi_{old}"] = data.pop(old)
    disk = parse_xall(data)
    assert (disk.model, disk.firmware) == ("SEAGATE ST4000NM0043", "MS03")
    del data["scsi_model_name"]
    assert parse_xall(data).model == "SEAGATE ST4000NM0043"


class HangingDisk(RecordedRunner):
    """Recorded outputs, except that reading `hung` runs a real command that never answers."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[Path, int]], hung: tuple[str, ...]) -> None:
        super().__init__(answers)
        self.hung = hung

    def __call__(self, argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
        if tuple(argv) == self.hung:
            return run_command(["sh", "-c", "sleep 300"], timeout)
        return super().__call__(argv, timeout)


MEGARAID = ("smartctl", "--xall", "--json", "-n", "standby", "-d", "megaraid,{}", "/dev/bus/0")


def megaraid(n: int) -> tuple[str, ...]:
    return tuple(part.format(n) for part in MEGARAID)


def test_a_hung_disk_costs_its_own_timeout_and_the_other_disks_are_read():
    runner = HangingDisk({SCAN: (SMARTCTL / "smartctl_scan_megaraid.json", 0),
                          megaraid(1): (SMARTCTL / "smart-megaraid1.json", 4)}, hung=megaraid(0))

    class Quick(DiskHealthCheck):
        command_timeout = 0.5

    [signal] = Quick(CheckContext(run=runner), platform="linux").collect()
    assert [d.status_read for d in signal.disks] == ["unknown", "complete"]
    assert signal.disks[0].read_problems == ["smartctl did not answer within 0.5 s"]


async def test_the_checks_budget_kills_the_disk_reads_it_started():
    runner = HangingDisk({SCAN: (SMARTCTL / "smartctl_scan_megaraid.json", 0),
                          megaraid(1): (SMARTCTL / "smart-megaraid1.json", 4)}, hung=megaraid(0))

    class Budgeted(DiskHealthCheck):
        timeout = 0.5

    check = Budgeted(CheckContext(run=runner), platform="linux")
    [signal] = await check.run()
    assert signal.error == "timed out after 0.5 s; killed sh"
    check._running.join(10)
    assert not check._running.is_alive()


# --- software RAID ---------------------------------------------------------------------------------------

MDSTAT = Path(__file__).parent.parent / "fixtures" / "mdstat"


def test_it_reads_each_md_array_from_a_recorded_mdstat():
    arrays = {a.name: a for a in parse_mdstat((MDSTAT / "node_exporter.mdstat").read_text())}
    assert list(arrays) == ["md3", "md127", "md0", "md4", "md6", "md8", "md7", "md9", "md10", "md11", "md12",
                            "md219"]
    md6 = arrays["md6"]
    assert (md6.level, md6.members_expected, md6.members_up, md6.sync_action, md6.sync_percent) == (
        "raid1", 2, 1, "recovery", 8.5)
    assert (arrays["md7"].members_expected, arrays["md7"].members_up) == (4, 3)
    assert arrays["md11"].state == "active (auto-read-only)"
    assert (arrays["md219"].level, arrays["md219"].metadata, arrays["md219"].spare_members) == (
        None, "external:imsm", ["sdb", "sdc", "sda"])
    assert arrays["md10"].members_expected is None  # raid0: no redundancy to count
    [raid5] = parse_mdstat((MDSTAT / "faulty_raid5.mdstat").read_text())
    assert raid5.failed_members == ["sdd1", "sdc1"]


def test_the_check_reports_the_arrays_of_a_linux_machine(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "mdstat").write_text((MDSTAT / "faulty_raid5.mdstat").read_text())
    runner = RecordedRunner({}, missing={"smartctl"})
    [signal] = DiskHealthCheck(CheckContext(run=runner, root=tmp_path), platform="linux").collect()
    assert [a.name for a in signal.arrays] == ["md0"]
    [signal] = DiskHealthCheck(CheckContext(run=runner, root=tmp_path / "none"), platform="linux").collect()
    assert signal.arrays == []
