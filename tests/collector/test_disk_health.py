"""The disk_health rule: fixture verdicts, rule branches, growth, replacement, fill forecast, diagnose."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.checks.disk_health.mdstat import parse_mdstat
from agent.checks.disk_health.smartctl import parse_xall
from agent.checks.disk_health.windows import parse_windows_disks
from collector.diagnose import diagnose_smartctl_file
from collector.rules import Evaluation, History
from collector.rules.disk_health import GIB, evaluate, fill_forecast_days
from shared.disk_health import DiskFacts, DiskHealth, FilesystemFacts, NvmeHealth, SmartAttribute

FIXTURES = Path(__file__).parent.parent / "fixtures"
SMARTCTL = FIXTURES / "smartctl"
WINDOWS = FIXTURES / "windows"
NOW = datetime(2025, 11, 10, 9, 0, tzinfo=UTC)

# Every fixture file and the verdict the collector gives it.
FIXTURE_VERDICTS = {
    "smart-ata.json": "ok",
    "smart-ata-date.json": "ok",
    "smart-ata-full.json": "ok",
    "smart-ata2.json": "ok",
    # Passes every SMART check; Scrutiny fails it only by its own statistics on 108 lifetime
    # interface CRC errors (a cable symptom, attribute 199): ok here unless the count grows.
    "smart-ata-failed-scrutiny.json": "ok",
    "smart-ata-date2.json": "warning",  # 10 reallocated / pending / offline-uncorrectable
    "smart-megaraid1.json": "warning",  # 387 reallocated sectors behind a MegaRAID
    "smart-sat.json": "warning",  # 2111 reallocation events (raw16(raw16) packed)
    "smart-fail2.json": "critical",  # SMART FAILED, attribute 5 failing now
    "smart-nvme-failed.json": "critical",  # 7 NVMe media errors
    "smart-nvme.json": "ok",
    "smart-nvme2.json": "ok",  # 8382 error-log entries are not media errors
    "smart-scsi.json": "warning",  # 56 grown defects: a stable count, but not a healthy disk
    "smart-scsi2.json": "ok",
    "smart-fail.json": "unknown",  # open failed (exit bit 1)
    "smart-megaraid0.json": "ok",  # exit bit 2 alone behind a MegaRAID, yet fully read: not unknown
    "smart-raid.json": "unknown",  # RAID volume, no SMART
    "smart-pass.json": "unknown",  # -H only: no attributes
    "smartctl_info_nvme.json": "unknown",
    "smartctl_info_sata_smart_support_bool.json": "unknown",
    "smartctl_info_sata_smart_support_object.json": "unknown",
    "smartctl_scan_megaraid.json": "unknown",
    "smartctl_scan_nvme.json": "unknown",
    "smartctl_scan_simple.json": "unknown",
}


def test_the_table_covers_every_fixture_file():
    assert set(FIXTURE_VERDICTS) == {p.name for p in SMARTCTL.glob("*.json")}


@pytest.mark.parametrize(("name", "status"), sorted(FIXTURE_VERDICTS.items()))
def test_it_gives_every_fixture_its_verdict(name, status):
    result = diagnose_smartctl_file(SMARTCTL / name, now=NOW)
    assert set(result) == {"file", "device", "model", "serial", "status", "reasons"}
    assert result["status"] == status
    assert json.loads(json.dumps(result)) == result
    if status != "ok":
        assert result["reasons"], "a verdict other than ok names its reasons"


def test_it_names_the_reasons_of_the_failing_disk():
    result = diagnose_smartctl_file(SMARTCTL / "smart-fail2.json", now=NOW)
    assert (result["device"], result["model"], result["serial"]) == (
        "/dev/sdc",
        "Hitachi HDS721050DLE630",
        "MSK423Y20S3HBC",
    )
    assert result["reasons"][:2] == [
        "SMART overall-health self-assessment: FAILED",
        "attribute 5 Reallocated_Sector_Ct failing now (value 1, threshold 5)",
    ]
    assert (
        "3 failed self-test(s), most recent: Extended offline: Completed: read failure at 4 h"
        in result["reasons"]
    )


def test_it_says_unknown_for_a_file_it_cannot_read(tmp_path):
    result = diagnose_smartctl_file(tmp_path / "missing.json", now=NOW)
    assert result["status"] == "unknown"
    (tmp_path / "text.txt").write_text("=== START OF INFORMATION SECTION ===\n")
    assert diagnose_smartctl_file(tmp_path / "text.txt", now=NOW)["status"] == "unknown"


# --- helpers ---------------------------------------------------------------------------------------------


def healthy(name: str = "smart-ata.json") -> DiskFacts:
    return parse_xall(json.loads((SMARTCTL / name).read_text()))


def with_counts(disk: DiskFacts, **counts: int) -> DiskFacts:
    """The disk with attribute raw counts replaced, e.g. with_counts(disk, a5=40)."""
    wanted = {int(key[1:]): value for key, value in counts.items()}
    attributes = [
        a.model_copy(update={"raw_value": wanted[a.id], "decoded": wanted[a.id]}) if a.id in wanted else a
        for a in disk.attributes
    ]
    return disk.model_copy(update={"attributes": attributes})


def signal(
    *disks: DiskFacts,
    at: datetime = NOW,
    filesystems: tuple[FilesystemFacts, ...] = (),
    error: str | None = None,
) -> DiskHealth:
    return DiskHealth(collected_at=at, disks=list(disks), filesystems=list(filesystems), error=error)


def history(*previous: DiskHealth, **settings) -> History:
    return History(
        now=NOW,
        hostname="books-pc",
        previous=previous,
        settings={"disk_health": settings} if settings else {},
    )


def verdict(disk: DiskFacts, hist: History | None = None) -> Evaluation:
    evaluations = evaluate(signal(disk), hist or history())
    return next(e for e in evaluations if e.subject == f"disk:{disk.serial or disk.device}")


# --- each rule branch ------------------------------------------------------------------------------------

BASE = healthy()
NVME = healthy("smart-nvme.json")
NVME_LOG = NVME.nvme or NvmeHealth(critical_warning=0)


def failing_attr(when: str) -> DiskFacts:
    attributes = [a.model_copy(update={"when_failed": when}) if a.id == 1 else a for a in BASE.attributes]
    return BASE.model_copy(update={"attributes": attributes})


BRANCHES = [
    ("healthy", BASE, "ok", "is healthy"),
    ("smart failed", BASE.model_copy(update={"smart_passed": False}), "critical", "self-assessment: FAILED"),
    ("exit bit 3", BASE.model_copy(update={"smartctl_exit_status": 8}), "critical", "FAILED"),
    ("attribute failing now", failing_attr("now"), "critical", "attribute 1 Raw_Read_Error_Rate failing now"),
    (
        "exit bit 4",
        BASE.model_copy(update={"smartctl_exit_status": 16}),
        "critical",
        "at or below its threshold now",
    ),
    ("attribute failed in the past", failing_attr("past"), "warning", "failed in the past"),
    ("exit bit 5", BASE.model_copy(update={"smartctl_exit_status": 32}), "warning", "in the past"),
    ("exit bit 6 alone", BASE.model_copy(update={"smartctl_exit_status": 64}), "ok", "is healthy"),
    (
        "self-test failures",
        BASE.model_copy(update={"self_test_failures": 1}),
        "warning",
        "1 failed self-test",
    ),
    (
        "exit bit 7",
        BASE.model_copy(update={"smartctl_exit_status": 128}),
        "warning",
        "self-test log records errors",
    ),
    ("reallocated", with_counts(BASE, a5=3), "warning", "3 reallocated sectors"),
    ("pending", with_counts(BASE, a197=1), "warning", "1 pending sectors"),
    ("offline uncorrectable", with_counts(BASE, a198=2), "warning", "2 offline-uncorrectable sectors"),
    ("reallocation events", with_counts(BASE, a196=4), "warning", "4 reallocation events"),
    (
        "reported uncorrect",
        with_counts(healthy("smart-sat.json"), a187=5, a196=0),
        "warning",
        "5 reported uncorrectable errors",
    ),
    ("crc errors alone", with_counts(BASE, a199=108), "ok", "is healthy"),
    (
        "temperature above limit",
        BASE.model_copy(update={"temperature_c": 71, "temperature_limit_c": 70}),
        "warning",
        "71 °C above the drive's limit of 70 °C",
    ),
    (
        "temperature at limit",
        BASE.model_copy(update={"temperature_c": 70, "temperature_limit_c": 70}),
        "ok",
        "",
    ),
    (
        "uncorrected errors",
        healthy("smart-scsi.json").model_copy(update={"uncorrected_errors": 2}),
        "critical",
        "2 uncorrected read/write errors",
    ),
    (
        "read unknown",
        BASE.model_copy(update={"status_read": "unknown", "read_problems": ["open failed"]}),
        "unknown",
        "open failed",
    ),
    (
        "partial read, nothing found",
        BASE.model_copy(update={"status_read": "partial", "read_problems": ["x"]}),
        "unknown",
        "x",
    ),
    (
        "partial read with a problem",
        with_counts(BASE, a5=3).model_copy(update={"status_read": "partial"}),
        "warning",
        "3 reallocated sectors",
    ),
    # NVMe
    (
        "nvme spare below threshold",
        NVME.model_copy(update={"nvme": NVME_LOG.model_copy(update={"available_spare": 9})}),
        "critical",
        "available spare 9 % below the drive's threshold of 10 %",
    ),
    ("nvme wear 90", NVME.model_copy(update={"wear_percent": 90}), "warning", "90 % of rated endurance used"),
    ("nvme wear 89", NVME.model_copy(update={"wear_percent": 89}), "ok", ""),
    ("nvme wear 100", NVME.model_copy(update={"wear_percent": 100}), "critical", "100 % of rated endurance"),
    (
        "nvme media errors",
        NVME.model_copy(update={"nvme": NVME_LOG.model_copy(update={"media_errors": 1})}),
        "critical",
        "1 media errors",
    ),
]


@pytest.mark.parametrize(("case", "disk", "status", "reason"), BRANCHES, ids=[b[0] for b in BRANCHES])
def test_it_applies_each_disk_rule_branch(case, disk, status, reason):
    result = verdict(disk)
    assert result.status == status, result.summary
    assert reason in result.summary
    assert result.rule == "disk_health"


@pytest.mark.parametrize(
    ("bit", "status", "text"),
    [
        (0, "critical", "available spare below threshold"),
        (1, "warning", "temperature beyond a threshold"),
        (2, "critical", "reliability degraded"),
        (3, "critical", "read-only mode"),
        (4, "critical", "volatile memory backup failed"),
        (5, "critical", "persistent memory region read-only"),
    ],
)
def test_it_raises_each_nvme_critical_warning_bit(bit, status, text):
    disk = NVME.model_copy(update={"nvme": NVME_LOG.model_copy(update={"critical_warning": 1 << bit})})
    result = verdict(disk)
    assert (result.status, text in result.summary) == (status, True)


def test_it_lets_a_client_treat_nvme_media_errors_as_a_warning():
    disk = NVME.model_copy(update={"nvme": NVME_LOG.model_copy(update={"media_errors": 7})})
    assert verdict(disk, history(nvme_media_errors_status="warning")).status == "warning"


def test_it_accepts_a_configured_count_but_its_growth_is_critical():
    accepted = with_counts(BASE, a5=8)
    assert verdict(accepted, history(attribute_warn_above=10)).status == "ok"
    earlier = signal(accepted, at=datetime(2025, 11, 3, 9, 0, tzinfo=UTC))
    grown = verdict(with_counts(BASE, a5=40), history(earlier, attribute_warn_above=10))
    assert grown.status == "critical"
    assert "40 reallocated sectors, up from 8 on 3 Nov" in grown.summary


def test_a_stable_count_is_a_warning_and_a_rising_one_critical():
    three_days_ago = signal(with_counts(BASE, a5=8), at=NOW - timedelta(days=3))
    assert verdict(with_counts(BASE, a5=8), history(three_days_ago)).status == "warning"
    rising = verdict(with_counts(BASE, a5=400), history(three_days_ago))
    assert (rising.status, "400 reallocated sectors, up from 8" in rising.summary) == ("critical", True)


def test_it_measures_growth_from_the_oldest_report_within_the_window():
    reports = [
        signal(with_counts(BASE, a5=value), at=NOW - timedelta(days=days))
        for value, days in [(30, 1), (8, 6), (0, 20)]
    ]  # newest first
    result = verdict(with_counts(BASE, a5=40), history(*reports, attribute_warn_above=50))
    assert "40 reallocated sectors, up from 8 on 4 Nov" in result.summary
    # When every earlier report is older than the window, the newest one is the baseline.
    result = verdict(with_counts(BASE, a5=40), history(reports[2], attribute_warn_above=50))
    assert "up from 0 on 21 Oct" in result.summary


def test_crc_errors_growing_warn_and_scsi_defects_growing_are_critical():
    crc = verdict(
        with_counts(BASE, a199=120), history(signal(with_counts(BASE, a199=108), at=NOW - timedelta(days=1)))
    )
    assert crc.status == "warning"
    assert "120 interface CRC errors (check the cable), up from 108" in crc.summary
    scsi = healthy("smart-scsi.json")
    grown = verdict(
        scsi.model_copy(update={"scsi_grown_defects": 60}), history(signal(scsi, at=NOW - timedelta(days=1)))
    )
    assert grown.status == "critical"
    assert "60 grown defects (reallocated blocks), up from 56" in grown.summary
    stable = verdict(scsi, history(signal(scsi, at=NOW - timedelta(days=1))))
    assert (stable.status, stable.summary.endswith("56 grown defects (reallocated blocks)")) == ("warning", True)


def test_it_does_not_compare_with_a_different_disk_or_an_unread_one():
    other = with_counts(BASE, a5=0).model_copy(update={"serial": "OTHER"})
    unread = with_counts(BASE, a5=0).model_copy(update={"status_read": "unknown"})
    result = verdict(with_counts(BASE, a5=3), history(signal(other), signal(unread)))
    assert result.summary.endswith("3 reallocated sectors")


# --- replaced disks --------------------------------------------------------------------------------------


def test_it_records_a_replaced_disk_and_resolves_the_old_one():
    old = healthy("smart-fail2.json")
    new = healthy("smart-ata.json").model_copy(update={"device": old.device})
    evaluations = evaluate(signal(new), history(signal(old, at=NOW - timedelta(hours=1))))
    replaced = [e for e in evaluations if e.details.get("event") == "disk_replaced"]
    assert replaced == [
        Evaluation(
            "disk_health",
            "disk:MSK423Y20S3HBC",
            "ok",
            "disk MSK423Y20S3HBC in /dev/sdc was replaced by 9RK1XXXX",
            {
                "event": "disk_replaced",
                "resolution": "replaced",
                "old_serial": "MSK423Y20S3HBC",
                "old_model": "Hitachi HDS721050DLE630",
                "new_serial": "9RK1XXXX",
                "new_model": "WDC WD140EDFZ-11A0VA0",
                "device": "/dev/sdc",
            },
            gone=True,
        )
    ]


def test_it_does_not_call_a_disk_that_moved_slots_replaced():
    first = healthy("smart-ata.json").model_copy(update={"device": "/dev/sda"})
    second = healthy("smart-ata2.json").model_copy(update={"device": "/dev/sdb"})
    swapped = [
        first.model_copy(update={"device": "/dev/sdb"}),
        second.model_copy(update={"device": "/dev/sda"}),
    ]
    evaluations = evaluate(signal(*swapped), history(signal(first, second, at=NOW - timedelta(hours=1))))
    assert not [e for e in evaluations if e.details.get("event") == "disk_replaced"]


def by_subject(evaluations: list[Evaluation], subject: str) -> list[Evaluation]:
    return [e for e in evaluations if e.subject == subject]


def test_a_disk_gone_from_the_scan_is_missing_by_its_serial_and_model():
    first, second = healthy("smart-ata.json"), healthy("smart-nvme.json")
    earlier = signal(first, second, at=NOW - timedelta(hours=2))
    evaluations = evaluate(signal(first), history(signal(first, second, at=NOW - timedelta(hours=1)), earlier))
    (missing,) = by_subject(evaluations, f"disk:{second.serial}")
    assert missing.status == "critical"
    assert missing.summary.startswith(f"disk missing: {second.model} (serial {second.serial}) on books-pc")
    assert missing.details["event"] == "disk_missing"
    # Still missing an hour later: the same alert, no second event; a removable disk may only warn.
    later = evaluate(signal(first), history(signal(first), signal(first, second), missing_disk_status="warning"))
    (again,) = by_subject(later, f"disk:{second.serial}")
    assert (again.status, "event" in again.details) == ("warning", False)


def test_a_known_disk_that_cannot_be_opened_keeps_its_own_subject():
    known = healthy("smart-ata.json")
    hung = DiskFacts(device=known.device, source="smartctl", status_read="unknown",
                     read_problems=["smartctl did not answer within 60 s"])
    evaluations = evaluate(signal(hung), history(signal(known, at=NOW - timedelta(hours=1))))
    assert not by_subject(evaluations, f"disk:{known.device}")
    (missing,) = by_subject(evaluations, f"disk:{known.serial}")
    assert missing.status == "critical"
    assert "disk missing" in missing.summary and "smartctl did not answer within 60 s" in missing.summary


def test_a_disk_in_standby_is_skipped_not_unknown_nor_missing():
    known = healthy("smart-ata.json")
    asleep = DiskFacts(device=known.device, source="smartctl", status_read="standby")
    evaluations = evaluate(signal(asleep), history(signal(known, at=NOW - timedelta(hours=1))))
    assert [e.subject for e in evaluations] == ["disks"]


def test_a_disk_swapped_to_another_path_and_bus_replaces_the_gone_one():
    old = healthy("smart-fail2.json")  # SATA /dev/sdc
    new = healthy("smart-nvme.json")  # cloned onto an NVMe drive
    gone_hour = signal(at=NOW - timedelta(hours=1))
    evaluations = evaluate(signal(new), history(gone_hour, signal(old, at=NOW - timedelta(hours=2))))
    (replaced,) = by_subject(evaluations, f"disk:{old.serial}")
    assert (replaced.status, replaced.gone, replaced.details["event"]) == ("ok", True, "disk_replaced")
    assert replaced.summary == f"disk {old.serial} in /dev/sdc, now {new.device} was replaced by {new.serial}"
    # Once replaced, the old disk is neither missing nor replaced again.
    after = evaluate(signal(new, at=NOW + timedelta(hours=1)), history(signal(new), gone_hour, signal(old)))
    assert not by_subject(after, f"disk:{old.serial}")


def test_a_serial_padded_differently_is_the_same_disk():
    disk = healthy("smart-ata.json")
    padded = disk.model_copy(update={"serial": f"  {disk.serial.lower()} ", "device": "PhysicalDisk0"})
    evaluations = evaluate(signal(padded), history(signal(disk, at=NOW - timedelta(hours=1))))
    assert not [e for e in evaluations if "missing" in e.details or "event" in e.details]


def test_it_says_nothing_about_missing_disks_when_it_could_not_look():
    disk = healthy("smart-ata.json")
    evaluations = evaluate(signal(error="smartctl not found"), history(signal(disk, at=NOW - timedelta(hours=1))))
    assert [e.subject for e in evaluations] == ["disks"]


def test_a_filesystem_no_longer_mounted_is_missing():
    data = FilesystemFacts(mount="/srv/data", device="/dev/sdb1", fstype="ext4", total_bytes=100 * GIB,
                           used_bytes=10 * GIB, free_bytes=90 * GIB)
    evaluations = evaluate(signal(), history(signal(filesystems=(data,), at=NOW - timedelta(hours=1))))
    (missing,) = by_subject(evaluations, "fs:/srv/data")
    assert missing.status == "warning"
    assert missing.summary == "/srv/data on books-pc is no longer mounted (/dev/sdb1, ext4, last seen on 10 Nov)"
    assert missing.details["event"] == "filesystem_missing"


# --- software RAID ---------------------------------------------------------------------------------------


MDSTAT = FIXTURES / "mdstat"


def test_a_degraded_array_is_critical_and_a_healthy_one_ok():
    arrays = parse_mdstat((MDSTAT / "node_exporter.mdstat").read_text())
    arrays += parse_mdstat((MDSTAT / "faulty_raid5.mdstat").read_text())[:1]
    arrays[-1] = arrays[-1].model_copy(update={"name": "md20"})
    verdicts = {e.subject: e for e in evaluate(DiskHealth(collected_at=NOW, arrays=arrays), history())}
    statuses = {subject[5:]: e.status for subject, e in verdicts.items() if subject.startswith("raid:")}
    assert statuses == {
        "md3": "ok", "md127": "ok", "md0": "ok", "md8": "ok", "md9": "ok", "md10": "ok", "md11": "ok", "md12": "ok",
        "md219": "ok",  # an IMSM container is inactive by nature
        "md4": "warning",  # inactive
        "md6": "critical",  # 1 of 2 in sync, rebuilding
        "md7": "critical",  # raid6 with 3 of 4
        "md20": "critical",  # two failed members
    }
    assert verdicts["raid:md6"].summary == (
        "md6 (raid1) on books-pc: degraded: 1 of 2 members in sync; rebuilding (8.5 % done)"
    )
    assert "failed member(s): sdd1, sdc1" in verdicts["raid:md20"].summary


# --- Windows ---------------------------------------------------------------------------------------------


def test_it_judges_windows_disks_by_health_status_and_counters():
    disks = parse_windows_disks(
        (WINDOWS / "physical_disks_three.json").read_text(),
        (WINDOWS / "reliability_counters_two.json").read_text(),
    )
    results = [verdict(disk) for disk in disks]
    assert [r.status for r in results] == ["ok", "critical", "unknown"]
    assert "Windows operational status: Predictive Failure" in results[1].summary
    assert "14 uncorrected read/write errors" in results[1].summary
    assert "Windows reports the disk Warning" in results[1].summary
    unhealthy = disks[0].model_copy(update={"windows_health": "Unhealthy"})
    assert verdict(unhealthy).status == "critical"


# --- the reading as a whole ------------------------------------------------------------------------------


def test_it_reports_missing_smartctl_as_unknown_and_clears_it_later():
    missing = "smartctl not found: install smartmontools (apt install smartmontools)"
    (overall,) = [e for e in evaluate(signal(error=missing), history()) if e.subject == "disks"]
    assert overall.status == "unknown"
    assert missing in overall.summary
    (overall,) = [e for e in evaluate(signal(BASE), history()) if e.subject == "disks"]
    assert overall.status == "ok"


# --- filesystems -----------------------------------------------------------------------------------------


def fs(free_gib: float, total_gib: float = 100, mount: str = "C:\\", inodes: tuple[int, int] | None = None):
    total, free = int(total_gib * GIB), int(free_gib * GIB)
    return FilesystemFacts(
        mount=mount,
        device="\\\\?\\Volume{1}",
        fstype="NTFS",
        total_bytes=total,
        used_bytes=total - free,
        free_bytes=free,
        inodes_total=inodes[0] if inodes else None,
        inodes_free=inodes[1] if inodes else None,
    )


def fs_verdict(current: FilesystemFacts, hist: History | None = None) -> Evaluation:
    evaluations = evaluate(signal(filesystems=(current,)), hist or history())
    return next(e for e in evaluations if e.subject == f"fs:{current.mount}")


@pytest.mark.parametrize(
    ("free", "total", "status"),
    [
        (50, 100, "ok"),
        (10, 100, "ok"),
        (9.9, 100, "warning"),
        (5, 100, "warning"),
        (4.9, 100, "critical"),
        # 4 TB volume: 10 % would be 400 GiB; the byte minimums (50 / 20 GiB) apply instead.
        (300, 4000, "ok"),
        (49, 4000, "warning"),
        (19, 4000, "critical"),
    ],
)
def test_it_grades_free_space_by_share_capped_by_bytes(free, total, status):
    assert fs_verdict(fs(free, total)).status == status


def test_it_takes_free_space_thresholds_from_client_settings():
    assert fs_verdict(fs(15), history(fs_warning_free_percent=20)).status == "warning"
    assert fs_verdict(
        fs(15), history(fs_critical_free_percent=20, fs_critical_free_bytes=100 * GIB)
    ).status == ("critical")


def test_it_grades_free_inodes():
    result = fs_verdict(fs(50, mount="/", inodes=(1_000_000, 30_000)))
    assert (result.status, "3.0 % inodes free" in result.summary) == ("critical", True)


def test_it_forecasts_a_volume_filling_within_two_weeks():
    # 60 GiB free, losing 5 GiB a day: full in 12 days.
    earlier = [signal(filesystems=(fs(60 + 5 * d),), at=NOW - timedelta(days=d)) for d in (1, 2, 3)]
    result = fs_verdict(fs(60), history(*earlier))
    assert result.status == "warning"
    assert "full in about 12 days at the current rate" in result.summary
    assert result.details["days_to_full"] == 12.0


def test_a_report_that_arrives_late_gets_the_same_forecast():
    # Collected at NOW, losing 5 GiB a day, but received half a day later (the collector was down).
    earlier = [signal(filesystems=(fs(60 + 5 * d),), at=NOW - timedelta(days=d)) for d in (1, 2, 3)]
    late = History(now=NOW + timedelta(hours=12), hostname="books-pc", previous=tuple(earlier))
    [result] = [e for e in evaluate(signal(filesystems=(fs(60),)), late) if e.subject == "fs:C:\\"]
    assert result.details["days_to_full"] == 12.0


def test_it_does_not_forecast_a_slow_or_shrinking_use():
    slow = [signal(filesystems=(fs(60 + 1 * d),), at=NOW - timedelta(days=d)) for d in (1, 2, 3)]
    assert fs_verdict(fs(60), history(*slow)).status == "ok"
    freeing = [signal(filesystems=(fs(60 - d),), at=NOW - timedelta(days=d)) for d in (1, 2)]
    assert fs_verdict(fs(60), history(*freeing)).details["days_to_full"] is None


def test_it_forecasts_only_from_reports_within_the_window():
    old = [signal(filesystems=(fs(95),), at=NOW - timedelta(days=30))]
    assert fs_verdict(fs(60), history(*old)).details["days_to_full"] is None


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([], None),
        ([(NOW - timedelta(days=1), 70 * GIB)], 6.0),
        ([(NOW, 70 * GIB)], None),
    ],
)
def test_it_fits_the_fill_rate(points, expected):
    days = fill_forecast_days(fs(60), NOW, points)
    assert days == (None if expected is None else pytest.approx(expected))


def with_attribute(disk: DiskFacts, attribute_id: int, name: str, count: int) -> DiskFacts:
    """The disk with this ATA attribute (replaced, or added where the drive had none) holding `count`."""
    extra = SmartAttribute(id=attribute_id, name=name, value=100, worst=100, threshold=0, prefailure=False,
                           raw_value=count, decoded=count)
    return disk.model_copy(update={"attributes": [*(a for a in disk.attributes if a.id != attribute_id), extra]})


@pytest.mark.parametrize(
    ("attribute_id", "name", "before", "now", "expected"),
    [
        (184, "End-to-End_Error", 0, 0, "ok"),
        (184, "End-to-End_Error", 2, 2, "warning"),
        (184, "End-to-End_Error", 2, 3, "critical"),
        (10, "Spin_Retry_Count", 4, 4, "warning"),
        (10, "Spin_Retry_Count", 4, 9, "warning"),
        (188, "Command_Timeout", 12, 12, "ok"),  # non-zero is common (and vendor-packed); growth is news
        (188, "Command_Timeout", 12, 30, "warning"),
    ],
)
def test_end_to_end_errors_spin_retries_and_command_timeouts_are_judged(
    attribute_id: int, name: str, before: int, now: int, expected: str
) -> None:
    earlier = signal(with_attribute(with_counts(BASE, a5=0), attribute_id, name, before), at=NOW - timedelta(days=1))
    found = verdict(with_attribute(with_counts(BASE, a5=0), attribute_id, name, now), history(earlier))
    assert found.status == expected, found.summary
