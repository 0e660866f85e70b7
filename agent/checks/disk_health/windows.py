"""Windows without smartctl: MSFT_PhysicalDisk and MSFT_StorageReliabilityCounter through PowerShell, and
the ATA SMART attributes the disk driver exposes in WMI (MSStorageDriver_FailurePredictData).

The parsers take the text `ConvertTo-Json` prints: one object for one disk, an array for several,
nothing at all for none. CIM enumerations arrive as their numbers (MOF types: HealthStatus UInt16,
OperationalStatus UInt16[], MediaType UInt16, BusType UInt16); the names are those of Microsoft's
MSFT_PhysicalDisk / MSFT_StorageFaultDomain documentation. A name string is accepted too, in case a
PowerShell type extension rendered the value.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Mapping
from typing import Any

from agent.checks.disk_health.smartctl import REPORTED_ATTRIBUTES, decode_raw
from agent.commands import Runner, powershell
from shared.disk_health import DiskFacts, SmartAttribute

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
FAILURE_PREDICT_DATA_SCRIPT = (
    "Get-CimInstance -Namespace root/wmi -ClassName MSStorageDriver_FailurePredictData | "
    "Select-Object InstanceName,Active,VendorSpecific | ConvertTo-Json -Depth 3"
)
FAILURE_PREDICT_THRESHOLDS_SCRIPT = (
    "Get-CimInstance -Namespace root/wmi -ClassName MSStorageDriver_FailurePredictThresholds | "
    "Select-Object InstanceName,Active,VendorSpecific | ConvertTo-Json -Depth 3"
)
# Joins the driver's instance names (PnP device ids) to the disk numbers MSFT_PhysicalDisk calls DeviceId.
DISK_DRIVES_SCRIPT = (
    "Get-CimInstance Win32_DiskDrive | Select-Object Index,PNPDeviceID,SerialNumber,Model | ConvertTo-Json"
)
# The ATA SMART data page (VendorSpecific): a 2-byte revision, then 30 attributes of 12 bytes each: id,
# flags (2 bytes, bit 0 = prefailure), normalised value, worst, raw value (6 bytes, little-endian), reserved.
# The thresholds page has the same layout with id and threshold in the first two bytes of each entry.
SMART_ENTRIES, SMART_ENTRY = 30, 12
# smartctl's default names of the attributes the rule reads.
ATTRIBUTE_NAMES = {
    1: "Raw_Read_Error_Rate", 5: "Reallocated_Sector_Ct", 7: "Seek_Error_Rate", 9: "Power_On_Hours",
    10: "Spin_Retry_Count", 184: "End-to-End_Error", 187: "Reported_Uncorrect", 188: "Command_Timeout",
    190: "Airflow_Temperature_Cel", 194: "Temperature_Celsius", 195: "Hardware_ECC_Recovered",
    196: "Reallocated_Event_Count", 197: "Current_Pending_Sector", 198: "Offline_Uncorrectable",
    199: "UDMA_CRC_Error_Count", 201: "Soft_Read_Error_Rate",
}
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


def enum_name(value: Any, names: Mapping[int, str]) -> str | None:
    """A CIM enumeration's name for its number (a name PowerShell already rendered stays as it is)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return names.get(int(value), f"code {value}")


def _counter(value: Any) -> int | None:
    return int(value) if isinstance(value, int) else None


def _disk(disk: Mapping[str, Any], counters: Mapping[str, Any] | None) -> DiskFacts:
    health = enum_name(disk.get("HealthStatus"), HEALTH_STATUS)
    statuses = disk.get("OperationalStatus")
    if not isinstance(statuses, list):
        statuses = [] if statuses is None else [statuses]
    media = enum_name(disk.get("MediaType"), MEDIA_TYPE)
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
        protocol=enum_name(disk.get("BusType"), BUS_TYPE),
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
        windows_operational=[name for name in (enum_name(s, OPERATIONAL_STATUS) for s in statuses) if name],
    )


def parse_windows_disks(
    physical_json: str, reliability_json: str, smart: Mapping[str, list[SmartAttribute]] | None = None
) -> list[DiskFacts]:
    """Disk facts from `Get-PhysicalDisk` and `Get-StorageReliabilityCounter` ConvertTo-Json output, with the
    SMART attributes by disk number (`parse_failure_predict`) where the driver has them."""
    counters = {str(c.get("DeviceId")): c for c in json_objects(reliability_json)}
    smart = smart or {}
    return [
        _disk(disk, counters.get(str(disk.get("DeviceId")))).model_copy(
            update={"attributes": smart.get(str(disk.get("DeviceId")), [])}
        )
        for disk in json_objects(physical_json)
    ]


def _instance_key(name: str) -> str:
    """A PnP device id as the disk driver's WMI instance name spells it and Win32_DiskDrive does (case, `_0`)."""
    return re.sub(r"_\d+$", "", name).upper()


def smart_page_attributes(page: list[int], thresholds: list[int] | None, seagate: bool) -> list[SmartAttribute]:
    """The reported attributes in an ATA SMART data page (and its thresholds page, when Windows gave one)."""
    limits = {}
    for n in range(SMART_ENTRIES):
        entry = (thresholds or [])[2 + n * SMART_ENTRY: 2 + (n + 1) * SMART_ENTRY]
        if len(entry) == SMART_ENTRY and entry[0]:
            limits[entry[0]] = entry[1]
    attributes = []
    for n in range(SMART_ENTRIES):
        entry = page[2 + n * SMART_ENTRY: 2 + (n + 1) * SMART_ENTRY]
        if len(entry) < SMART_ENTRY or entry[0] not in REPORTED_ATTRIBUTES:
            continue
        attr_id, value, worst = entry[0], entry[3], entry[4]
        raw = int.from_bytes(bytes(entry[5:11]), "little")
        threshold = limits.get(attr_id)
        failed = None
        if threshold:  # threshold 0: the attribute never fails
            failed = "now" if value <= threshold else "past" if worst <= threshold else None
        attributes.append(SmartAttribute(
            id=attr_id, name=ATTRIBUTE_NAMES.get(attr_id, f"Attribute_{attr_id}"), value=value, worst=worst,
            threshold=threshold, prefailure=bool(entry[1] & 1), when_failed=failed, raw_value=raw,
            decoded=decode_raw(attr_id, raw, seagate),
        ))
    return attributes


def parse_failure_predict(data_json: str, thresholds_json: str, drives_json: str) -> dict[str, list[SmartAttribute]]:
    """SMART attributes by disk number from MSStorageDriver_FailurePredictData (and its thresholds),
    joined to disk numbers through Win32_DiskDrive's PnP device ids."""
    numbers = {_instance_key(str(d.get("PNPDeviceID") or "")): d for d in json_objects(drives_json)}
    limits = {_instance_key(str(t.get("InstanceName") or "")): t.get("VendorSpecific")
              for t in json_objects(thresholds_json)}
    found = {}
    for item in json_objects(data_json):
        key = _instance_key(str(item.get("InstanceName") or ""))
        drive, page = numbers.get(key), item.get("VendorSpecific")
        if drive is None or not item.get("Active", True) or not isinstance(page, list):
            continue
        seagate = str(drive.get("Model") or "").upper().startswith("ST")
        found[str(drive.get("Index"))] = smart_page_attributes(page, limits.get(key), seagate)
    return found


def read_windows_disks(run: Runner, timeout: float) -> list[DiskFacts]:
    """Ask Windows for its physical disks and their reliability counters (the calls; parsing is above)."""
    physical = run(powershell(PHYSICAL_DISKS_SCRIPT), timeout)
    if physical.returncode != 0:
        raise RuntimeError(f"Get-PhysicalDisk failed (exit {physical.returncode}): {physical.stderr.strip()}")
    reliability, data, thresholds, drives = (
        _optional(run, script, timeout)
        for script in (RELIABILITY_SCRIPT, FAILURE_PREDICT_DATA_SCRIPT, FAILURE_PREDICT_THRESHOLDS_SCRIPT,
                       DISK_DRIVES_SCRIPT)
    )
    return parse_windows_disks(physical.stdout, reliability, parse_failure_predict(data, thresholds, drives))


def _optional(run: Runner, script: str, timeout: float) -> str:
    """The output of a query the disks are still worth reporting without (refused without administrator
    rights, absent on disks whose driver has no SMART data, or too slow): empty when it fails."""
    try:
        answer = run(powershell(script), timeout)
    except subprocess.TimeoutExpired:
        return ""
    return answer.stdout if answer.returncode == 0 else ""
