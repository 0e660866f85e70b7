"""The `disk_health` signal: facts about each disk (SMART or Windows storage counters) and each filesystem."""

from __future__ import annotations

from typing import Literal

from shared.base import Int, Signal, WireModel, fact

# smartctl's exit status is a bitmask (smartctl(8), "RETURN VALUES"); bits 0-2 mean it could not read.
SMARTCTL_EXIT_BITS: dict[int, str] = {
    0: "command line did not parse",
    1: "device open failed, or the device did not answer IDENTIFY, or is in a low-power mode",
    2: "a SMART or other command to the disk failed, or a SMART data structure had a checksum error",
    3: "SMART status check returned 'DISK FAILING'",
    4: "prefail attributes are at or below their threshold now",
    5: "some attributes were at or below their threshold in the past",
    6: "the device error log contains records of errors",
    7: "the device self-test log contains records of errors",
}

ReadStatus = Literal["complete", "partial", "unknown", "standby"]


def serial_key(serial: str) -> str:
    """A serial number as compared across paths and buses (smartctl, Windows WMI pad and case it differently)."""
    return "".join(serial.split()).upper()


def exit_bits(exit_status: int | None) -> list[int]:
    """The bits set in a smartctl exit status, lowest first."""
    if not exit_status:
        return []
    return [bit for bit in SMARTCTL_EXIT_BITS if exit_status & (1 << bit)]


class SmartAttribute(WireModel):
    """One ATA SMART attribute as the drive reports it, with its raw value decoded."""

    id: Int = fact(
        "ATA attribute number (5 = reallocated sectors, 197 = pending sectors, ...)", "attribute id", ge=1, le=255
    )
    name: str = fact("Attribute name as smartctl knows it for this drive")
    value: Int | None = fact("Normalised current value (higher is better)", "normalised 1-253", default=None)
    worst: Int | None = fact("Lowest normalised value ever recorded", "normalised 1-253", default=None)
    threshold: Int | None = fact(
        "Normalised value at or below which the drive counts the attribute failed", "normalised 1-253",
        default=None
    )
    prefailure: bool = fact(
        "Prefail attribute: at or below threshold predicts imminent failure", default=False
    )
    when_failed: Literal["now", "past"] | None = fact(
        "Whether the normalised value is at/below threshold now, was in the past, or never (null)",
        default=None,
    )
    raw_value: Int = fact("Raw 48-bit value as reported, possibly several counters packed together", "raw", ge=0)
    raw_string: str | None = fact("smartctl's rendering of the raw value", default=None)
    decoded: Int = fact(
        "The counter that matters, decoded from the raw value (see agent smartctl parser)", "count", ge=0
    )


class NvmeHealth(WireModel):
    """The NVMe SMART / Health Information log (log page 02h)."""

    critical_warning: Int = fact(
        "Critical warning bitmask (bit 0 spare, 1 temperature, 2 reliability, "
        "3 read-only, 4 volatile backup, 5 PMR read-only)",
        "bitmask",
        ge=0,
    )
    available_spare: Int | None = fact("Remaining spare capacity", "percent", default=None)
    available_spare_threshold: Int | None = fact(
        "Spare capacity below which the drive warns", "percent", default=None
    )
    media_errors: Int | None = fact("Unrecovered data integrity errors", "count", default=None)
    unsafe_shutdowns: Int | None = fact("Power losses without a clean shutdown", "count", default=None)
    warning_temp_minutes: Int | None = fact(
        "Time above the warning composite temperature", "minutes", default=None
    )


class DiskFacts(WireModel):
    """What was read from one disk in one slot, and how completely it could be read."""

    device: str = fact("Slot the disk was read in: device path plus smartctl -d type, or Windows DeviceId")
    source: Literal["smartctl", "windows"] = fact(
        "Where the facts come from: smartctl, or Windows storage WMI"
    )
    protocol: str | None = fact("ATA, NVMe or SCSI (smartctl), or the Windows bus type", default=None)
    status_read: ReadStatus = fact(
        "complete; partial (some data missing); unknown (the disk could not be read); "
        "standby (asleep, not read so as not to spin it up)"
    )
    read_problems: list[str] = fact("Why the read was partial or failed, in words", default_factory=list)
    smartctl_exit_status: Int | None = fact("smartctl exit status bitmask (see smartctl(8))", "bitmask", default=None)
    model: str | None = fact("Model name", default=None)
    serial: str | None = fact("Serial number", default=None)
    firmware: str | None = fact("Firmware version", default=None)
    capacity_bytes: Int | None = fact("User capacity", "bytes", default=None, ge=0)
    rotation_rpm: Int | None = fact("Rotation rate; 0 for solid state", "rpm", default=None, ge=0)
    power_on_hours: Int | None = fact("Power-on time", "hours", default=None, ge=0)
    temperature_c: Int | None = fact("Current temperature", "°C", default=None)
    temperature_limit_c: Int | None = fact(
        "The drive's own temperature limit (operating max or trip point)", "°C", default=None
    )
    smart_passed: bool | None = fact(
        "SMART overall-health self-assessment passed; null when not reported", default=None
    )
    attributes: list[SmartAttribute] = fact("Failure-predicting ATA attributes", default_factory=list)
    nvme: NvmeHealth | None = fact("NVMe health log", default=None)
    wear_percent: Int | None = fact(
        "Endurance used (NVMe percentage used, Windows Wear)", "percent", default=None, ge=0
    )
    scsi_grown_defects: Int | None = fact(
        "SCSI grown defect list length (reallocated blocks)", "count", default=None, ge=0
    )
    uncorrected_errors: Int | None = fact(
        "Uncorrected read plus write errors (SCSI error counter log, Windows reliability counters)",
        "count",
        default=None,
        ge=0,
    )
    error_log_entries: Int | None = fact(
        "Entries in the device error log (ATA) / error information log (NVMe)", "count", default=None, ge=0
    )
    self_test_failures: Int | None = fact(
        "Failed self-tests not outdated by a newer passing extended test", "count", default=None, ge=0
    )
    last_self_test: str | None = fact("Most recent self-test: type, result and power-on hour", default=None)
    last_failed_self_test: str | None = fact(
        "Most recent failed self-test: type, result and power-on hour", default=None
    )
    windows_health: Literal["Healthy", "Warning", "Unhealthy", "Unknown"] | None = fact(
        "MSFT_PhysicalDisk HealthStatus", default=None
    )
    windows_operational: list[str] = fact(
        "MSFT_PhysicalDisk OperationalStatus values, in words", default_factory=list
    )


class FilesystemFacts(WireModel):
    """Space and inodes on one mounted filesystem."""

    mount: str = fact("Mount point or drive letter")
    device: str = fact("Block device or volume the filesystem lives on")
    fstype: str = fact("Filesystem type (ext4, ntfs, apfs, ...)")
    total_bytes: Int = fact("Size of the filesystem", "bytes", ge=0)
    used_bytes: Int = fact("Space in use", "bytes", ge=0)
    free_bytes: Int = fact("Space available to ordinary users", "bytes", ge=0)
    inodes_total: Int | None = fact(
        "Inodes in the filesystem; null where the OS has none", "count", default=None, ge=0
    )
    inodes_free: Int | None = fact("Inodes available to ordinary users", "count", default=None, ge=0)


class RaidArray(WireModel):
    """One Linux software RAID array (md) as `/proc/mdstat` shows it."""

    name: str = fact("Array name (md0, md127)")
    level: str | None = fact("RAID level (raid1, raid5, raid10, raid0, linear); null for a container", default=None)
    state: str = fact("active, active (auto-read-only), inactive, ...")
    metadata: str | None = fact("Superblock format (1.2, external:imsm for a firmware RAID container)",
                                default=None)
    members: list[str] = fact("Member devices (sda1, nvme0n1p2)", default_factory=list)
    failed_members: list[str] = fact("Members marked failed (F)", default_factory=list)
    spare_members: list[str] = fact("Members that are spares (S)", default_factory=list)
    members_expected: Int | None = fact("Members the array should have (redundant levels)", "count",
                                        default=None, ge=0)
    members_up: Int | None = fact("Members in sync", "count", default=None, ge=0)
    sync_action: str | None = fact("recovery, resync, reshape, check or repair under way (or waiting)",
                                   default=None)
    sync_percent: float | None = fact("Progress of the sync action", "percent", default=None, ge=0, le=100)


ArrayCondition = Literal["optimal", "degraded", "rebuilding", "offline", "other"]


class ArrayMember(WireModel):
    """One physical disk of a hardware RAID virtual drive or a Storage Spaces virtual disk."""

    slot: str = fact("Where the disk sits: enclosure:slot (MegaRAID) or the disk's Windows name")
    state: str = fact("The controller's word for the disk: Onln, Rbld, Offln, UBad, Msng (MegaRAID); "
                      "Windows health and operational status (Storage Spaces)")
    model: str | None = fact("Model name", default=None)
    rebuild_percent: float | None = fact("Progress of a rebuild onto this disk", "percent", default=None,
                                         ge=0, le=100)


class ControllerVolume(WireModel):
    """One hardware RAID virtual drive (MegaRAID) or Storage Spaces virtual disk, as its tool reports it."""

    name: str = fact("The volume's name: /c0/v0 (MegaRAID, with its label if set) or its FriendlyName")
    level: str | None = fact("RAID level or resiliency (RAID1, RAID5, Mirror, Parity)", default=None)
    state: str = fact("The tool's own words for the volume's state (Optl, Dgrd, Pdgd, OfLn; Healthy/OK ...)")
    condition: ArrayCondition = fact(
        "The state in common words: optimal, degraded, rebuilding (a disk being rebuilt or repaired), "
        "offline, or other (a state the agent does not know)"
    )
    os_device: str | None = fact("The disk the operating system sees for it (/dev/sda)", default=None)
    members: list[ArrayMember] = fact("Its physical disks", default_factory=list)
    rebuild_percent: float | None = fact("Progress of the rebuild under way (the least advanced disk)",
                                         "percent", default=None, ge=0, le=100)


class ControllerReading(WireModel):
    """A RAID controller or Storage Spaces the agent found, and what its tool said (or why it could not look)."""

    source: Literal["megaraid", "storage_spaces"] = fact("MegaRAID (storcli/perccli) or Windows Storage Spaces")
    detected: str = fact("Why the agent looked: the driver, disk or query that showed it is there")
    tool: str | None = fact("The tool that was asked (storcli64, perccli64, Get-VirtualDisk)", default=None)
    error: str | None = fact("Why its volumes could not be read, with what to do about it", default=None)
    volumes: list[ControllerVolume] = fact("Its virtual drives / virtual disks", default_factory=list)


class DiskHealth(Signal):
    """Disk health and filesystem space of one device, as facts; the collector's rule gives the verdict."""

    kind: Literal["disk_health"] = "disk_health"
    disks: list[DiskFacts] = fact("Every disk found, read or not", default_factory=list)
    filesystems: list[FilesystemFacts] = fact("Every real mounted filesystem", default_factory=list)
    arrays: list[RaidArray] = fact("Software RAID arrays (Linux md, /proc/mdstat)", default_factory=list)
    controllers: list[ControllerReading] = fact(
        "Hardware RAID controllers (MegaRAID) and Storage Spaces found, with their volumes", default_factory=list
    )
    error: str | None = fact(
        "Why disks could not be looked at at all (e.g. smartctl not installed), with what to do about it",
        default=None,
    )
