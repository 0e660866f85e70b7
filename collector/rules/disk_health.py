"""The disk_health rule: verdicts on each disk and filesystem, with reasons a technician can act on.

Thresholds are per client: `history.settings["disk_health"]` may hold any of these keys (defaults):

* `attribute_warn_above` (0): reallocated (5), pending (197), offline-uncorrectable (198),
  reported-uncorrect (187), end-to-end error (184) and SCSI grown-defect counts above this warn, and
  growing they are critical (the disk is failing now); reallocation events (196) and spin-up retries (10)
  above it warn, growing too. Interface CRC errors (199) and command timeouts (188) warn only when they grow.
* `growth_window_days` (7): growth is measured against the oldest report within this many days
  (or, when there is none, the newest older one), so "8 -> 40 in a week" stays visible all week.
* `wear_warning_percent` (90), `wear_critical_percent` (100): endurance used (NVMe percentage used,
  Windows Wear).
* `nvme_media_errors_status` ("critical"): NVMe media errors are unrecovered data integrity errors;
  set "warning" to treat them as a warning only.
* `fs_warning_free_percent` (10), `fs_critical_free_percent` (5): free space below this share of the
  volume. For large volumes the share is capped by a minimum in bytes:
  `fs_warning_free_bytes` (50 GiB), `fs_critical_free_bytes` (20 GiB); a 4 TB volume warns at 50 GiB
  free, not at 400 GB. The same percentages apply to free inodes.
* `missing_disk_status` ("critical"): a disk the device had that is gone from the scan, or that smartctl can
  no longer open or read (it hangs), named by its serial and model; set "warning" for removable disks.
  A never-seen disk appearing while one is gone replaced it: the old disk's alert resolves as replaced.
* `fs_missing_status` ("warning"): a filesystem mounted in an earlier report that is no longer mounted.
* Software RAID (`/proc/mdstat`): a degraded array (members missing or failed) is critical, an inactive
  one a warning (firmware RAID containers excepted).
* Hardware RAID (MegaRAID, through storcli/perccli) and Windows Storage Spaces: a degraded or offline volume
  is critical, one being rebuilt a warning with its progress, an optimal one ok. A controller found whose tool
  is missing is unknown ("cannot look"); no controller and no tool is nothing at all.
* `fs_fill_forecast_days` (14): warn when the volume fills within this many days at the rate of the
  last `fs_forecast_window_days` (7) of reports (least-squares line through free space over time).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from collector.rules import AlertRule, Caught, Evaluation, History, KnownDisk, RuleSpec, Status, thresholds
from shared.disk_health import (
    ControllerReading,
    ControllerVolume,
    DiskFacts,
    DiskHealth,
    FilesystemFacts,
    RaidArray,
    exit_bits,
    serial_key,
)

RULE = "disk_health"
GIB = 1024**3
SEVERITY: dict[Status, int] = {"ok": 0, "unknown": 1, "warning": 2, "critical": 3}

# Counts that warn above `attribute_warn_above`; growing, they say the disk is failing now (critical).
COUNTED_ATTRIBUTES: dict[int | str, str] = {
    5: "reallocated sectors",
    197: "pending sectors",
    198: "offline-uncorrectable sectors",
    187: "reported uncorrectable errors",
    184: "end-to-end errors (data corrupted inside the drive)",
    "scsi_grown_defects": "grown defects (reallocated blocks)",
}
# Counts that warn above `attribute_warn_above` and when growing, but do not alone say the disk is failing.
WARNING_ATTRIBUTES: dict[int | str, str] = {
    196: "reallocation events",
    10: "spin-up retries",
}
# Counts that are normal above zero (or packed by some vendors) but news when they grow.
GROWTH_ATTRIBUTES: dict[int | str, str] = {
    199: "interface CRC errors (check the cable)",
    188: "command timeouts (check the cable and power)",
}
NVME_CRITICAL_WARNINGS: dict[int, tuple[Status, str]] = {
    0: ("critical", "available spare below threshold"),
    1: ("warning", "temperature beyond a threshold"),
    2: ("critical", "reliability degraded by media or internal errors"),
    3: ("critical", "media placed in read-only mode"),
    4: ("critical", "volatile memory backup failed"),
    5: ("critical", "persistent memory region read-only"),
}
WINDOWS_OPERATIONAL: dict[str, Status] = {
    "Predictive Failure": "critical",
    "Error": "critical",
    "Non-Recoverable Error": "critical",
    "Degraded": "warning",
    "Stressed": "warning",
}


@dataclass(frozen=True)
class Thresholds:
    """The configurable limits of this rule (see the module docstring)."""

    attribute_warn_above: int = 0
    growth_window_days: float = 7.0
    wear_warning_percent: int = 90
    wear_critical_percent: int = 100
    nvme_media_errors_status: Status = "critical"
    fs_warning_free_percent: float = 10.0
    fs_critical_free_percent: float = 5.0
    fs_warning_free_bytes: int = 50 * GIB
    fs_critical_free_bytes: int = 20 * GIB
    fs_fill_forecast_days: float = 14.0
    fs_forecast_window_days: float = 7.0
    missing_disk_status: Status = "critical"
    fs_missing_status: Status = "warning"


Finding = tuple[Status, str]


def _worst(statuses: Iterable[Status]) -> Status:
    return max(statuses, key=SEVERITY.__getitem__, default="ok")


def _day(moment: datetime) -> str:
    return f"{moment.day} {moment:%b}"


def _previous_signals(history: History) -> list[DiskHealth]:
    return [s for s in history.previous if isinstance(s, DiskHealth)]


def _baseline(signals: list[DiskHealth], now: datetime, window_days: float) -> list[DiskHealth]:
    """Earlier reports (newest first) in comparison order: the window's oldest first, then older ones."""
    window = window_days * 86400
    inside = [s for s in signals if (now - s.collected_at).total_seconds() <= window]
    before = [s for s in signals if (now - s.collected_at).total_seconds() > window]
    return inside[::-1] + before


def _earlier_value(
    disk: DiskFacts, key: int | str, candidates: list[DiskHealth]
) -> tuple[int, datetime] | None:
    """The same disk's count in the preferred earlier report that has it."""
    for signal in candidates:
        for old in signal.disks:
            if old.serial == disk.serial and old.status_read != "unknown":
                value = _count(old, key)
                if value is not None:
                    return value, signal.collected_at
    return None


def _count(disk: DiskFacts, key: int | str) -> int | None:
    if key == "scsi_grown_defects":
        return disk.scsi_grown_defects
    return next((a.decoded for a in disk.attributes if a.id == key), None)


def _count_findings(disk: DiskFacts, candidates: list[DiskHealth], th: Thresholds) -> list[Finding]:
    """A stable count above the threshold is a warning; a growing failure count is critical (8 -> 400
    reallocated sectors in three days is a disk failing now, not a disk with a history)."""
    findings: list[Finding] = []
    for key, label in {**COUNTED_ATTRIBUTES, **WARNING_ATTRIBUTES, **GROWTH_ATTRIBUTES}.items():
        value = _count(disk, key)
        if value is None:
            continue
        earlier = _earlier_value(disk, key, candidates) if disk.serial else None
        if earlier and value > earlier[0]:
            status: Status = "critical" if key in COUNTED_ATTRIBUTES else "warning"
            findings.append((status, f"{value} {label}, up from {earlier[0]} on {_day(earlier[1])}"))
        elif key not in GROWTH_ATTRIBUTES and value > th.attribute_warn_above:
            findings.append(("warning", f"{value} {label}"))
    return findings


def _smart_findings(disk: DiskFacts) -> list[Finding]:
    bits = exit_bits(disk.smartctl_exit_status)
    findings: list[Finding] = []
    if disk.smart_passed is False or 3 in bits:
        findings.append(("critical", "SMART overall-health self-assessment: FAILED"))
    now_failing = [a for a in disk.attributes if a.when_failed == "now"]
    findings += [
        ("critical", f"attribute {a.id} {a.name} failing now (value {a.value}, threshold {a.threshold})")
        for a in now_failing
    ]
    if 4 in bits and not now_failing:
        findings.append(("critical", "smartctl: a prefail attribute is at or below its threshold now"))
    past = [a for a in disk.attributes if a.when_failed == "past"]
    findings += [
        (
            "warning",
            f"attribute {a.id} {a.name} failed in the past (worst {a.worst}, threshold {a.threshold})",
        )
        for a in past
    ]
    if 5 in bits and not past:
        findings.append(("warning", "smartctl: an attribute was at or below its threshold in the past"))
    if disk.self_test_failures:
        findings.append(
            (
                "warning",
                f"{disk.self_test_failures} failed self-test(s), most recent: "
                f"{disk.last_failed_self_test or 'not in the log'}",
            )
        )
    elif 7 in bits:
        findings.append(("warning", "smartctl: the self-test log records errors"))
    return findings


def _nvme_findings(disk: DiskFacts, th: Thresholds) -> list[Finding]:
    nvme = disk.nvme
    if nvme is None:
        return []
    findings: list[Finding] = [
        (status, f"NVMe critical warning: {text}")
        for bit, (status, text) in NVME_CRITICAL_WARNINGS.items()
        if nvme.critical_warning & (1 << bit)
    ]
    spare, spare_min = nvme.available_spare, nvme.available_spare_threshold
    if spare is not None and spare_min is not None and spare < spare_min:
        findings.append(
            ("critical", f"available spare {spare} % below the drive's threshold of {spare_min} %")
        )
    if nvme.media_errors:
        findings.append(
            (
                th.nvme_media_errors_status,
                f"{nvme.media_errors} media errors (unrecovered data integrity errors)",
            )
        )
    return findings


def _device_findings(disk: DiskFacts, th: Thresholds) -> list[Finding]:
    findings: list[Finding] = []
    if disk.wear_percent is not None and disk.wear_percent >= th.wear_critical_percent:
        findings.append(("critical", f"{disk.wear_percent} % of rated endurance used"))
    elif disk.wear_percent is not None and disk.wear_percent >= th.wear_warning_percent:
        findings.append(("warning", f"{disk.wear_percent} % of rated endurance used"))
    if disk.uncorrected_errors:
        findings.append(("critical", f"{disk.uncorrected_errors} uncorrected read/write errors"))
    limit = disk.temperature_limit_c
    if disk.temperature_c is not None and limit is not None and disk.temperature_c > limit:
        findings.append(
            ("warning", f"temperature {disk.temperature_c} °C above the drive's limit of {limit} °C")
        )
    if disk.windows_health in ("Warning", "Unhealthy"):
        status: Status = "critical" if disk.windows_health == "Unhealthy" else "warning"
        findings.append((status, f"Windows reports the disk {disk.windows_health}"))
    findings += [
        (WINDOWS_OPERATIONAL[s], f"Windows operational status: {s}")
        for s in disk.windows_operational
        if s in WINDOWS_OPERATIONAL
    ]
    return findings


def disk_subject(disk: DiskFacts) -> str:
    """The alert subject of a disk: its serial, or its slot when the serial could not be read."""
    return f"disk:{disk.serial or disk.device}"


def evaluate_disk(disk: DiskFacts, history: History, th: Thresholds) -> Evaluation:
    """One disk's verdict: the worst finding, or unknown when the read was incomplete and found nothing."""
    candidates = _baseline(_previous_signals(history), history.now, th.growth_window_days)
    findings = (
        _smart_findings(disk)
        + _count_findings(disk, candidates, th)
        + _nvme_findings(disk, th)
        + _device_findings(disk, th)
    )
    findings.sort(key=lambda finding: -SEVERITY[finding[0]])
    reasons = [text for _, text in findings]
    status = _worst(s for s, _ in findings)
    if disk.status_read != "complete":
        reasons += disk.read_problems
        status = _worst([status, "unknown"])
    name = f"{disk.model or 'disk'} (serial {disk.serial or 'unknown'}) in {disk.device}"
    summary = f"{name}: {'; '.join(reasons)}" if reasons else f"{name} is healthy"
    details = {
        "device": disk.device,
        "model": disk.model,
        "serial": disk.serial,
        "reasons": reasons,
        "status_read": disk.status_read,
    }
    return Evaluation(RULE, disk_subject(disk), status, summary, details)


@dataclass
class Roster:
    """The disks a device had: stored between reports (`History.known_disks`), or, where none are stored yet,
    folded over its reports oldest first.

    `known` holds the disks believed to be in the device, read or missing; `missing` those absent from the
    newest report; `retired` the disks replaced by another, so that a disk never seen before can be told apart.
    """

    known: dict[str, KnownDisk] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    retired: dict[str, KnownDisk] = field(default_factory=dict)
    by_slot: dict[str, str] = field(default_factory=dict)

    @classmethod
    def stored(cls, disks: Iterable[KnownDisk]) -> Roster:
        """The roster as the collector stored it after the previous report."""
        roster = cls()
        for disk in sorted(disks, key=lambda d: d.seen_at):
            key = serial_key(disk.serial)
            roster.by_slot[disk.device] = key
            if disk.replaced_by is not None:
                roster.retired[key] = disk
            else:
                roster.known[key] = disk
                if disk.missing:
                    roster.missing.add(key)
        return roster

    def disks(self) -> tuple[KnownDisk, ...]:
        """The roster as the collector stores it."""
        return (
            *(replace(d, missing=key in self.missing, replaced_by=None) for key, d in self.known.items()),
            *self.retired.values(),
        )

    def identify(self, disk: DiskFacts) -> str | None:
        """The serial key of a disk: read from it, or, when it could not be read, the one last read in its slot."""
        if disk.serial:
            return serial_key(disk.serial)
        return self.by_slot.get(disk.device)

    def step(self, signal: DiskHealth) -> tuple[list[tuple[KnownDisk, DiskFacts]], list[KnownDisk]]:
        """Take in one report: (old disk, new disk) replacements, and the disks that vanished with it."""
        present = {key for disk in signal.disks if (key := self.identify(disk))}
        fresh = [d for d in signal.disks
                 if d.serial and serial_key(d.serial) not in self.known.keys() | self.retired.keys()]
        gone = [key for key in self.known if key not in present]
        replacements = []
        for disk in fresh:
            # A new disk in the slot of a gone one replaced it; otherwise it replaced the first gone disk.
            old = next((k for k in gone if self.known[k].device == disk.device), gone[0] if gone else None)
            if old is not None:
                gone.remove(old)
                replacements.append((self.known.pop(old), disk))
                self.retired[old] = replace(replacements[-1][0], missing=False, replaced_by=disk.serial)
                self.missing.discard(old)
        vanished = [self.known[key] for key in gone if key not in self.missing]
        self.missing = set(gone)
        for disk in signal.disks:
            if disk.serial:
                key = serial_key(disk.serial)
                self.by_slot[disk.device] = key
                self.retired.pop(key, None)  # a replaced disk put back is the device's again
                if disk.status_read != "unknown" or key not in self.known:
                    self.known[key] = KnownDisk(disk.serial, disk.model, disk.device, signal.collected_at)
        return replacements, vanished


def client_sentence(c: Caught) -> str:
    """What a business owner reads for a disk, drive or disk-array alert."""
    done = {"open": "", "resolved": " and put right", "replaced": " and replaced before it lost any data"}
    if c.subject.startswith("disk:"):
        if c.details.get("missing"):
            return f"A disk in {c.device} stopped answering; it was found{done[c.outcome]}."
        disk = "A failing disk" if c.critical or c.outcome == "replaced" else "A disk showing early signs of wear"
        return f"{disk} in {c.device} was found{done[c.outcome]}."
    if mount := c.after_subject("fs:"):
        if c.details.get("missing"):
            return f"The drive {mount} on {c.device} went missing; it was found{done[c.outcome]}."
        fixed = "; space was freed before it filled up" if c.outcome != "open" else ""
        return f"The drive {mount} on {c.device} was running out of space{fixed}."
    if array := c.after_subject("raid:"):
        return f"The disk array {array} on {c.device} lost a disk's protection; it was found{done[c.outcome]}."
    ended = "; it was put right" if c.outcome != "open" else ""
    return f"Monitoring could not read the health of the disks in {c.device}{ended}."


def roster_of(history: History) -> Roster:
    """The device's disks before this report: as stored, or where none are stored yet (a device from before
    they were), as its earlier reports show them (reports that could not look at disks say nothing)."""
    if history.known_disks:
        return Roster.stored(history.known_disks)
    roster = Roster()
    for signal in reversed(_previous_signals(history)):
        if signal.error is None:
            roster.step(signal)
    return roster


def known_disks_after(signal: DiskHealth, history: History) -> tuple[KnownDisk, ...]:
    """The device's disks after this report, for the collector to store (a report that could not look at the
    disks changes nothing)."""
    roster = roster_of(history)
    if signal.error is None:
        roster.step(signal)
    return roster.disks()


def replaced_disk(old: KnownDisk, new: DiskFacts) -> Evaluation:
    """The old disk's alert resolves as replaced, and the replacement is recorded (the value report counts it)."""
    where = old.device if old.device == new.device else f"{old.device}, now {new.device}"
    return Evaluation(
        RULE,
        f"disk:{old.serial}",
        "ok",
        f"disk {old.serial} in {where} was replaced by {new.serial}",
        {"event": "disk_replaced", "resolution": "replaced", "old_serial": old.serial, "old_model": old.model,
         "new_serial": new.serial, "new_model": new.model, "device": new.device},
        gone=True,
    )


def missing_disk(known: KnownDisk, hostname: str, status: Status, problems: list[str], first: bool) -> Evaluation:
    """A disk the device had that is gone from the scan or can no longer be read: its own alert says so."""
    why = f": {'; '.join(problems)}" if problems else ""
    summary = (
        f"disk missing: {known.model or 'disk'} (serial {known.serial}) on {hostname}, "
        f"last read in {known.device} on {_day(known.seen_at)}{why}"
    )
    details: dict[str, object] = {
        "device": known.device, "model": known.model, "serial": known.serial, "missing": True,
        "last_read_at": known.seen_at.isoformat(), "reasons": [summary],
    }
    if first:
        details["event"] = "disk_missing"
    return Evaluation(RULE, f"disk:{known.serial}", status, summary, details)


def disk_evaluations(signal: DiskHealth, history: History, th: Thresholds) -> list[Evaluation]:
    """Each disk's verdict, each replaced disk and each disk gone missing, by serial across slots and buses."""
    roster = roster_of(history)
    before = dict(roster.known)
    replacements, vanished = roster.step(signal)
    evaluations = [replaced_disk(old, new) for old, new in replacements]
    for known in vanished:
        evaluations.append(missing_disk(known, history.hostname, th.missing_disk_status, [], True))
    still_missing = roster.missing - {serial_key(k.serial) for k in vanished}
    evaluations += [
        missing_disk(roster.known[key], history.hostname, th.missing_disk_status, [], False) for key in still_missing
    ]
    for disk in signal.disks:
        if disk.status_read == "standby":
            continue  # asleep, not read so as not to wake it: neither healthy nor missing
        key = roster.identify(disk)
        known = before.get(key) if key else None
        if disk.status_read == "unknown" and not disk.serial and known is not None:
            # A disk the device had that hangs smartctl or cannot be opened: its own alert, by its serial.
            evaluations.append(
                missing_disk(known, history.hostname, th.missing_disk_status, disk.read_problems, False)
            )
            continue
        evaluations.append(evaluate_disk(disk, history, th))
    return evaluations


def known_mounts(history: History) -> dict[str, tuple[FilesystemFacts, datetime]]:
    """Every filesystem the earlier reports show, as last seen."""
    mounts: dict[str, tuple[FilesystemFacts, datetime]] = {}
    for signal in _previous_signals(history):
        for fs in signal.filesystems:
            mounts.setdefault(fs.mount, (fs, signal.collected_at))
    return mounts


def missing_filesystems(signal: DiskHealth, history: History, th: Thresholds) -> list[Evaluation]:
    """Filesystems mounted in earlier reports that are no longer mounted."""
    present = {fs.mount for fs in signal.filesystems}
    previous = _previous_signals(history)
    newest = {fs.mount for fs in previous[0].filesystems} if previous else set()
    evaluations = []
    for mount, (fs, seen_at) in known_mounts(history).items():
        if mount in present:
            continue
        summary = (
            f"{mount} on {history.hostname} is no longer mounted ({fs.device}, {fs.fstype}, "
            f"last seen on {_day(seen_at)})"
        )
        details: dict[str, object] = {"mount": mount, "device": fs.device, "missing": True,
                                      "last_seen_at": seen_at.isoformat(), "reasons": [summary]}
        if mount in newest:
            details["event"] = "filesystem_missing"
        evaluations.append(Evaluation(RULE, f"fs:{mount}", th.fs_missing_status, summary, details))
    return evaluations


def _free_fraction_findings(
    what: str, free: int, total: int, warn_at: float, crit_at: float
) -> list[Finding]:
    """Free space (or inodes) below the critical or warning level, in words."""
    share = 100.0 * free / total
    if free < crit_at:
        return [("critical", f"{share:.1f} % {what} free")]
    if free < warn_at:
        return [("warning", f"{share:.1f} % {what} free")]
    return []


def fill_forecast_days(
    fs: FilesystemFacts, now: datetime, earlier: list[tuple[datetime, int]]
) -> float | None:
    """Days until the volume is full at the rate through the earlier (time, free bytes) points, if filling."""
    points = [*earlier, (now, fs.free_bytes)]
    if len(points) < 2:
        return None
    xs = [(t - now).total_seconds() for t, _ in points]
    ys = [float(free) for _, free in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    if slope >= 0:
        return None
    return fs.free_bytes / -slope / 86400


def evaluate_filesystem(fs: FilesystemFacts, at: datetime, history: History, th: Thresholds) -> Evaluation:
    """One filesystem's verdict (as collected at `at`): low free space, low free inodes, or filling up soon."""
    findings: list[Finding] = []
    if fs.total_bytes:
        findings += _free_fraction_findings(
            "space",
            fs.free_bytes,
            fs.total_bytes,
            min(fs.total_bytes * th.fs_warning_free_percent / 100, th.fs_warning_free_bytes),
            min(fs.total_bytes * th.fs_critical_free_percent / 100, th.fs_critical_free_bytes),
        )
    if fs.inodes_total and fs.inodes_free is not None:
        findings += _free_fraction_findings(
            "inodes",
            fs.inodes_free,
            fs.inodes_total,
            fs.inodes_total * th.fs_warning_free_percent / 100,
            fs.inodes_total * th.fs_critical_free_percent / 100,
        )
    # Collection times, not arrival times: reports that waited in an outbox must not bend the rate.
    window = th.fs_forecast_window_days * 86400
    earlier = [
        (signal.collected_at, old.free_bytes)
        for signal in _previous_signals(history)
        if 0 < (at - signal.collected_at).total_seconds() <= window
        for old in signal.filesystems
        if old.mount == fs.mount
    ]
    days = fill_forecast_days(fs, at, earlier)
    # Already critically full, a forecast is no new reason: it would only turn each report into a message.
    if days is not None and days < th.fs_fill_forecast_days and all(sev != "critical" for sev, _ in findings):
        findings.append(("warning", f"full in about {days:.0f} days at the current rate"))
    reasons = [text for _, text in findings]
    free_gib = fs.free_bytes / GIB
    text = "; ".join(reasons) if reasons else "enough free space"
    total_gib = fs.total_bytes / GIB
    summary = f"{fs.mount} on {history.hostname}: {text} ({free_gib:.1f} GiB of {total_gib:.1f} GiB free)"
    details = {
        "mount": fs.mount,
        "free_bytes": fs.free_bytes,
        "total_bytes": fs.total_bytes,
        "reasons": reasons,
        "days_to_full": None if days is None else round(days, 1),
    }
    return Evaluation(RULE, f"fs:{fs.mount}", _worst(s for s, _ in findings), summary, details)


def _array_verdict(subject: str, name: str, findings: list[Finding], details: dict[str, object]) -> Evaluation:
    """An array's verdict: the worst finding, its reasons in the summary (healthy when there are none)."""
    reasons = [text for _, text in findings]
    summary = f"{name}: {'; '.join(reasons)}" if reasons else f"{name} is healthy"
    return Evaluation(RULE, subject, _worst(s for s, _ in findings), summary, {**details, "reasons": reasons})


def evaluate_array(array: RaidArray, hostname: str) -> Evaluation:
    """One software RAID array's verdict: degraded (members missing or failed) is critical, rebuilding
    onto a new member a warning until done, an array that should run but does not a warning."""
    findings: list[Finding] = []
    up, expected = array.members_up, array.members_expected
    if array.failed_members:
        findings.append(("critical", f"failed member(s): {', '.join(array.failed_members)}"))
    if up is not None and expected is not None and up < expected:
        findings.append(("critical", f"degraded: {up} of {expected} members in sync"))
    if array.sync_action == "recovery" and findings:
        done = f" ({array.sync_percent:.1f} % done)" if array.sync_percent is not None else ""
        findings.append(("warning", f"rebuilding{done}"))
    # Firmware RAID containers (external metadata) are inactive by nature; their volumes are arrays of their own.
    if array.state.startswith("inactive") and not (array.metadata or "").startswith("external:"):
        findings.append(("warning", "inactive: the array is not running"))
    return _array_verdict(f"raid:{array.name}", f"{array.name} ({array.level or 'container'}) on {hostname}",
                          findings, {"array": array.name, "level": array.level, "members": array.members})


CONTROLLER_NAMES = {"megaraid": "MegaRAID", "storage_spaces": "Storage Spaces"}
# A hardware volume's condition as a verdict: one that lost redundancy or went offline is critical; one being
# rebuilt onto a new disk is a warning until it is done; a state the agent does not know is unknown.
CONDITION_STATUS: dict[str, Status] = {"optimal": "ok", "rebuilding": "warning", "degraded": "critical",
                                       "offline": "critical", "other": "unknown"}


def evaluate_volume(reading: ControllerReading, volume: ControllerVolume, hostname: str) -> Evaluation:
    """One MegaRAID virtual drive's or Storage Spaces virtual disk's verdict, with the disks that are not well."""
    findings: list[Finding] = []
    status = CONDITION_STATUS[volume.condition]
    if volume.condition == "rebuilding":
        done = f" ({volume.rebuild_percent:.0f} % done)" if volume.rebuild_percent is not None else ""
        findings.append((status, f"rebuilding{done}"))
    elif volume.condition != "optimal":
        findings.append((status, f"{volume.condition}: {volume.state}"))
    unwell = [m for m in volume.members if m.state not in ("Onln", "Healthy, OK")]
    if unwell and findings:
        findings.append((status, "disk(s) " + ", ".join(f"{m.slot} {m.state}" for m in unwell)))
    label = CONTROLLER_NAMES[reading.source]
    where = f" ({volume.os_device})" if volume.os_device else ""
    return _array_verdict(
        f"raid:{reading.source}:{volume.name}",
        f"{label} {volume.name}{where} ({volume.level or 'volume'}) on {hostname}",
        findings,
        {"array": volume.name, "level": volume.level, "state": volume.state, "condition": volume.condition,
         "members": [m.slot for m in volume.members], "rebuild_percent": volume.rebuild_percent},
    )


def evaluate_controller(reading: ControllerReading, hostname: str) -> list[Evaluation]:
    """A controller found: whether its volumes could be looked at ("cannot look" is unknown), then each volume."""
    label = CONTROLLER_NAMES[reading.source]
    if reading.error:
        return [Evaluation(RULE, f"raid:{reading.source}", "unknown",
                           f"{label} arrays on {hostname}: {reading.error}",
                           {"detected": reading.detected, "error": reading.error, "reasons": [reading.error]})]
    overall = Evaluation(RULE, f"raid:{reading.source}", "ok",
                         f"{len(reading.volumes)} {label} volume(s) read on {hostname} ({reading.detected})")
    return [overall, *(evaluate_volume(reading, volume, hostname) for volume in reading.volumes)]


def evaluate(signal: DiskHealth, history: History) -> list[Evaluation]:
    """Verdicts on the disk reading as a whole, each disk, each replaced disk and each filesystem."""
    th = thresholds(Thresholds, history.settings, RULE)
    if signal.error:
        overall = Evaluation(
            RULE,
            "disks",
            "unknown",
            f"disk health unknown on {history.hostname}: {signal.error}",
            {"error": signal.error},
        )
    else:
        overall = Evaluation(RULE, "disks", "ok", f"{len(signal.disks)} disk(s) read on {history.hostname}")
    # A reading that could not look at the disks says nothing about which are there.
    disks = [evaluate_disk(d, history, th) for d in signal.disks] if signal.error else disk_evaluations(
        signal, history, th
    )
    return [
        overall,
        *disks,
        *(evaluate_filesystem(fs, signal.collected_at, history, th) for fs in signal.filesystems),
        *missing_filesystems(signal, history, th),
        *(evaluate_array(array, history.hostname) for array in signal.arrays),
        *(e for reading in signal.controllers for e in evaluate_controller(reading, history.hostname)),
    ]


# Hourly reports: a week of history for growth of bad sectors and the fill forecast.
SPEC = RuleSpec(evaluate, history=24 * 8, known_disks=known_disks_after, alerts=(
    AlertRule(RULE, action="free space, or back up the disk and plan its replacement", sentence=client_sentence),
))
