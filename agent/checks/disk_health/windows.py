"""Windows without smartctl: MSFT_PhysicalDisk and MSFT_StorageReliabilityCounter through PowerShell.

The parsers take the text `ConvertTo-Json` prints: one object for one disk, an array for several,
nothing at all for none. CIM enumerations arrive as their numbers (MOF types: HealthStatus UInt16,
OperationalStatus UInt16[], MediaType UInt16, BusType UInt16); the names are those of Microsoft's
MSFT_PhysicalDisk / MSFT_StorageFaultDomain documentation. A name string is accepted too, in case a
PowerShell type extension rendered the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent.commands import Runner, powershell
from shared.disk_health import DiskFacts

HEALTH_STATUS = {0: "Healthy", 1: "Warning", 2: "Unhealthy", 5: "Unknown"}
OPERATIONAL_STATUS = {
    0: "Unknown",
    1: "Other",
    2: "OK",
    3: "Degraded",
    4: "Stressed",
    5: "Predictive Failure",
    6: "Error",
    7: "Non-Recoverable Error",
    8: "Starting",
    9: "Stopping",
    10: "Stopped",
    11: "In Service",
    12: "No Contact",
    13: "Lost Communication",
    14: "Aborted",
    15: "Dormant",
    16: "Supporting Entity in Error",
    17: "Completed",
    18: "Power Mode",
    19: "Relocating",
}
MEDIA_TYPE = {0: "Unspecified", 3: "HDD", 4: "SSD", 5: "SCM"}
BUS_TYPE = {
    0: "Unknown",
    1: "SCSI",
    2: "ATAPI",
    3: "ATA",
    4: "1394",
    5: "SSA",
    6: "Fibre Channel",
    7: "USB",
    8: "RAID",
    9: "iSCSI",
    10: "SAS",
    11: "SATA",
    12: "SD",
    13: "MMC",
    14: "Virtual",
    15: "File Backed Virtual",
    16: "Storage Spaces",
    17: "NVMe",
}

PHYSICAL_DISKS_SCRIPT = (
    "Get-PhysicalDisk | Select-Object DeviceId,FriendlyName,Model,SerialNumber,FirmwareVersion,"
    "MediaType,BusType,Size,SpindleSpeed,HealthStatus,OperationalStatus | ConvertTo-Json"
)
RELIABILITY_SCRIPT = (
    "Get-PhysicalDisk | Get-StorageReliabilityCounter | Select-Object DeviceId,Temperature,TemperatureMax,"
    "ReadErrorsUncorrected,WriteErrorsUncorrected,Wear,PowerOnHours | ConvertTo-Json"
)
# SpindleSpeed is UInt32; Windows reports 0xFFFFFFFF when the speed is unknown.
UNKNOWN_SPINDLE = 0xFFFFFFFF


def json_objects(text: str) -> list[dict[str, Any]]:
    """ConvertTo-Json output as a list of objects, whether it printed one object, an array or nothing."""
    text = text.lstrip("\ufeff").strip()
    if not text:
        return []
    data = json.loads(text)
    items = data if isinstance(data, list) else [data]
    return [item for item in items if isinstance(item, dict)]


def _enum_name(value: Any, names: Mapping[int, str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return names.get(int(value), f"code {value}")


def _counter(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None


def _disk(disk: Mapping[str, Any], counters: Mapping[str, Any] | None) -> DiskFacts:
    health = _enum_name(disk.get("HealthStatus"), HEALTH_STATUS)
    statuses = disk.get("OperationalStatus")
    if not isinstance(statuses, list):
        statuses = [] if statuses is None else [statuses]
    media = _enum_name(disk.get("MediaType"), MEDIA_TYPE)
    spindle = _counter(disk.get("SpindleSpeed"))
    problems = []
    if counters is None:
        problems.append("Windows gives no storage reliability counters for this disk")
    if health not in ("Healthy", "Warning", "Unhealthy"):
        problems.append(f"Windows health status is {health or 'missing'}")
    counters = counters or {}
    read_errors = _counter(counters.get("ReadErrorsUncorrected"))
    write_errors = _counter(counters.get("WriteErrorsUncorrected"))
    uncorrected = (
        None if read_errors is None and write_errors is None else (read_errors or 0) + (write_errors or 0)
    )
    return DiskFacts(
        device=f"\\\\.\\PHYSICALDRIVE{disk.get('DeviceId')}",
        source="windows",
        protocol=_enum_name(disk.get("BusType"), BUS_TYPE),
        status_read="partial" if problems else "complete",
        read_problems=problems,
        model=(disk.get("Model") or disk.get("FriendlyName") or None),
        serial=(str(disk.get("SerialNumber") or "").strip() or None),
        firmware=disk.get("FirmwareVersion"),
        capacity_bytes=_counter(disk.get("Size")),
        rotation_rpm=0 if media == "SSD" else (spindle if spindle not in (None, UNKNOWN_SPINDLE) else None),
        power_on_hours=_counter(counters.get("PowerOnHours")),
        temperature_c=_counter(counters.get("Temperature")) or None,
        temperature_limit_c=_counter(counters.get("TemperatureMax")) or None,
        wear_percent=_counter(counters.get("Wear")),
        uncorrected_errors=uncorrected,
        windows_health=health if health in HEALTH_STATUS.values() else "Unknown",
        windows_operational=[name for name in (_enum_name(s, OPERATIONAL_STATUS) for s in statuses) if name],
    )


def parse_windows_disks(physical_json: str, reliability_json: str) -> list[DiskFacts]:
    """Disk facts from `Get-PhysicalDisk` and `Get-StorageReliabilityCounter` ConvertTo-Json output."""
    counters = {str(c.get("DeviceId")): c for c in json_objects(reliability_json)}
    return [_disk(disk, counters.get(str(disk.get("DeviceId")))) for disk in json_objects(physical_json)]


def read_windows_disks(run: Runner, timeout: float) -> list[DiskFacts]:
    """Ask Windows for its physical disks and their reliability counters (the calls; parsing is above)."""
    physical = run(powershell(PHYSICAL_DISKS_SCRIPT), timeout)
    if physical.returncode != 0:
        raise RuntimeError(f"Get-PhysicalDisk failed (exit {physical.returncode}): {physical.stderr.strip()}")
    reliability = run(powershell(RELIABILITY_SCRIPT), timeout)
    # Without administrator rights the counters are refused; the disks are still worth reporting.
    return parse_windows_disks(physical.stdout, reliability.stdout if reliability.returncode == 0 else "")
