"""Pure parsers of `smartctl --scan-open --json` and `smartctl --xall --json` output (smartmontools >= 7).

Raw values: smartctl reports each ATA attribute's 48-bit raw value, and for several attributes vendors
pack more than one counter into it. `decode_raw` takes out the counter that matters (smartmontools'
`ataprint`/`drivedb.h` raw formats: `raw16` prints three 16-bit words, `raw16(raw16)` the low word
first, Seagate's `raw24/raw32` error rates keep errors above the low 32 bits):

* 188 Command_Timeout: bits 0-15. Seagate (`-v 188,raw16`) packs three counters: total timeouts in
  the low word, timeouts over 5 s and over 7.5 s in the words above; 4295032853 means 21 timeouts.
* 1, 7, 195 (Raw_Read_Error_Rate, Seek_Error_Rate, Hardware_ECC_Recovered) on Seagate drives:
  bits 32-47, the error count; bits 0-31 count the operations, which is not a problem.
* 190, 194 (temperatures): bits 0-7, the current temperature; the bytes above hold min/max.
* every other attribute (5, 9, 10, 184, 187, 196-199, 201, ...): bits 0-31. Formats such as
  `raw16(raw16)` keep the count in the low word and other data in bits 32-47 (e.g. 196 raw
  53416508262463, which smartctl prints "2111 (12437 0)", is 2111 reallocation events).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.disk_health import (
    SMARTCTL_EXIT_BITS,
    DiskFacts,
    NvmeHealth,
    ReadStatus,
    SmartAttribute,
    exit_bits,
)

# The failure-predicting attributes (issue 3) plus the temperatures and Seagate error rates.
REPORTED_ATTRIBUTES = frozenset({1, 5, 7, 9, 10, 184, 187, 188, 190, 194, 195, 196, 197, 198, 199, 201})
SEAGATE_ERROR_RATES = frozenset({1, 7, 195})
# smartctl -n standby: "Device is in STANDBY mode, exit(2)" (also SLEEP, IDLE, and "STANDBY (OS)").
STANDBY = re.compile(r"Device is in [A-Z ()]+ mode, exit\(\d+\)")


class SmartctlOutputError(ValueError):
    """The text is not smartctl JSON output."""


@dataclass(frozen=True)
class ScannedDevice:
    """One disk `smartctl --scan-open` found: its path and the -d type to read it with."""

    name: str
    type: str | None
    protocol: str | None

    @property
    def slot(self) -> str:
        """The slot name used to recognise a replaced disk: path plus type when the type names a port."""
        return f"{self.name} [{self.type}]" if self.type and "," in self.type else self.name


def load_json(text: str) -> dict[str, Any]:
    """smartctl's JSON document, or SmartctlOutputError saying why it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SmartctlOutputError(f"not smartctl JSON output ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise SmartctlOutputError("not smartctl JSON output (top level is not an object)")
    return data


def parse_scan(data: Mapping[str, Any]) -> list[ScannedDevice]:
    """The devices listed by `smartctl --scan-open --json` (or `--scan`)."""
    return [
        ScannedDevice(str(dev["name"]), dev.get("type"), dev.get("protocol"))
        for dev in data.get("devices", [])
        if isinstance(dev, dict) and dev.get("name")
    ]


def xall_argv(device: ScannedDevice) -> list[str]:
    """The command that reads everything about one scanned device."""
    # -n standby: a sleeping disk is left asleep (smartctl says so and exits) rather than spun up every hour.
    argv = ["smartctl", "--xall", "--json", "-n", "standby"]
    if device.type:
        argv += ["-d", device.type]
    return [*argv, device.name]


def is_seagate(data: Mapping[str, Any]) -> bool:
    """Seagate drives name themselves ST... or carry a Seagate model family in smartctl's drive database."""
    model = str(data.get("model_name") or "")
    family = str(data.get("model_family") or "")
    return model.upper().startswith("ST") or "seagate" in f"{model} {family}".lower()


def decode_raw(attr_id: int, raw: int, seagate: bool) -> int:
    """The counter that matters in an attribute's raw value (the rules are in this module's docstring)."""
    if attr_id == 188:
        return raw & 0xFFFF
    if attr_id in SEAGATE_ERROR_RATES and seagate:
        return (raw >> 32) & 0xFFFF
    if attr_id in (190, 194):
        return raw & 0xFF
    return raw & 0xFFFFFFFF


def _attributes(data: Mapping[str, Any]) -> list[SmartAttribute]:
    seagate = is_seagate(data)
    attributes = []
    for row in data.get("ata_smart_attributes", {}).get("table", []):
        if row.get("id") not in REPORTED_ATTRIBUTES:
            continue
        raw = row.get("raw", {})
        raw_value = int(raw.get("value", 0))
        attributes.append(
            SmartAttribute(
                id=row["id"],
                name=row.get("name", ""),
                value=row.get("value"),
                worst=row.get("worst"),
                threshold=row.get("thresh"),
                prefailure=bool(row.get("flags", {}).get("prefailure", False)),
                when_failed=row.get("when_failed") or None,
                raw_value=raw_value,
                raw_string=raw.get("string"),
                decoded=decode_raw(row["id"], raw_value, seagate),
            )
        )
    return attributes


def _nvme(data: Mapping[str, Any]) -> NvmeHealth | None:
    log = data.get("nvme_smart_health_information_log")
    if not isinstance(log, dict):
        return None
    return NvmeHealth(
        critical_warning=int(log.get("critical_warning", 0)),
        available_spare=log.get("available_spare"),
        available_spare_threshold=log.get("available_spare_threshold"),
        media_errors=log.get("media_errors"),
        unsafe_shutdowns=log.get("unsafe_shutdowns"),
        warning_temp_minutes=log.get("warning_temp_time"),
    )


def _test_text(test: Mapping[str, Any] | None) -> str | None:
    if test is None:
        return None
    return (
        f"{test.get('type', {}).get('string', '?')}: {test.get('status', {}).get('string', '?')} "
        f"at {test.get('lifetime_hours', '?')} h"
    )


def _self_tests(data: Mapping[str, Any]) -> tuple[int | None, str | None, str | None]:
    """(failures smartctl still counts, last test, last failed test) from the ATA self-test log."""
    log = data.get("ata_smart_self_test_log", {})
    section = log.get("extended") or log.get("standard")
    if not isinstance(section, dict):
        return None, None, None
    table = section.get("table", [])
    failed = [test for test in table if test.get("status", {}).get("passed") is False]
    if "error_count_total" in section:
        # smartctl ignores failures outdated by a later passing extended test; so do we.
        failures = section["error_count_total"] - section.get("error_count_outdated", 0)
    else:
        failures = len(failed)
    return failures, _test_text(table[0] if table else None), _test_text(failed[0] if failed else None)


def _temperature_limit(data: Mapping[str, Any]) -> int | None:
    """The drive's own limit: operating max (SCT / NVMe warning), else SCSI trip point, else absolute max."""
    temperature = data.get("temperature", {})
    threshold = data.get("nvme_composite_temperature_threshold", {})
    for value in (
        temperature.get("op_limit_max"),
        threshold.get("warning"),
        temperature.get("drive_trip"),
        temperature.get("limit_max"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return None


def _uncorrected(data: Mapping[str, Any]) -> int | None:
    log = data.get("scsi_error_counter_log")
    if not isinstance(log, dict):
        return None
    return sum(int(log.get(way, {}).get("total_uncorrected_errors", 0)) for way in ("read", "write"))


def _error_log_entries(data: Mapping[str, Any]) -> int | None:
    nvme = data.get("nvme_smart_health_information_log", {})
    if "num_err_log_entries" in nvme:
        return int(nvme["num_err_log_entries"])
    log = data.get("ata_smart_error_log", {})
    section = log.get("extended") or log.get("summary")
    return int(section["count"]) if isinstance(section, dict) and "count" in section else None


def _read_status(data: Mapping[str, Any], exit_status: int | None) -> tuple[ReadStatus, list[str]]:
    """How completely smartctl could read the disk, with the reasons in words.

    Exit bit 2 alone (a SMART or other command failed) is common behind MegaRAID, on RAID volumes and on
    SCSI disks: when everything the verdict needs was read anyway, the read is complete, not unknown.
    """
    errors = [
        f"smartctl: {msg['string']}"
        for msg in data.get("smartctl", {}).get("messages", [])
        if isinstance(msg, dict) and msg.get("severity") == "error"
    ]
    bits = exit_bits(exit_status)
    failed = [f"smartctl exit bit {bit}: {SMARTCTL_EXIT_BITS[bit]}" for bit in bits if bit <= 2]
    if 0 in bits or 1 in bits or "device" not in data:
        return "unknown", errors + failed or ["output names no device: not a per-disk smartctl output"]
    missing = []
    protocol = data["device"].get("protocol")
    if protocol == "ATA" and "ata_smart_attributes" not in data:
        missing.append("output has no ATA SMART attribute table")
    if protocol == "NVMe" and "nvme_smart_health_information_log" not in data:
        missing.append("output has no NVMe health log")
    if "passed" not in data.get("smart_status", {}):
        missing.append("output has no SMART overall-health assessment")
    if not errors and not missing:
        return "complete", []
    return "partial", errors + failed + missing


def standby_message(data: Mapping[str, Any]) -> str | None:
    """smartctl's note that it left a sleeping disk alone (`-n standby`), if that is what it did."""
    for msg in data.get("smartctl", {}).get("messages", []):
        if isinstance(msg, dict) and STANDBY.search(str(msg.get("string", ""))):
            return str(msg["string"]).strip()
    return None


def model_of(data: Mapping[str, Any]) -> str | None:
    """The model: ATA/NVMe `model_name`; SCSI `scsi_model_name` (smartctl >= 7.3) or vendor plus product."""
    if data.get("model_name") or data.get("scsi_model_name"):
        return str(data.get("model_name") or data.get("scsi_model_name"))
    vendor = data.get("scsi_vendor") or data.get("vendor") or ""
    product = data.get("scsi_product") or data.get("product") or ""
    return f"{vendor} {product}".strip() or None


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None


def parse_xall(data: Mapping[str, Any], slot: str | None = None, exit_status: int | None = None) -> DiskFacts:
    """The facts in one `smartctl --xall --json` document; `exit_status` defaults to the one it records."""
    if exit_status is None:
        exit_status = data.get("smartctl", {}).get("exit_status")
    device = data.get("device", {})
    if slot is None:
        slot = _slot_from_output(data)
    asleep = standby_message(data)
    if asleep is not None:
        return DiskFacts(device=slot, source="smartctl", protocol=device.get("protocol"), status_read="standby",
                         read_problems=[asleep], smartctl_exit_status=exit_status, model=model_of(data),
                         serial=data.get("serial_number") or None)
    status_read, problems = _read_status(data, exit_status)
    failures, last_test, last_failed = _self_tests(data)
    nvme = _nvme(data)
    temperature = data.get("temperature", {}).get("current")
    return DiskFacts(
        device=slot,
        source="smartctl",
        protocol=device.get("protocol"),
        status_read=status_read,
        read_problems=problems,
        smartctl_exit_status=exit_status,
        model=model_of(data),
        serial=(data.get("serial_number") or None),
        firmware=data.get("firmware_version") or data.get("revision") or data.get("scsi_revision"),
        capacity_bytes=data.get("user_capacity", {}).get("bytes"),
        rotation_rpm=_int_or_none(data.get("rotation_rate")),
        power_on_hours=data.get("power_on_time", {}).get("hours"),
        # smartctl reports 0 when a RAID volume has no sensor; 0 °C is never a real disk reading.
        temperature_c=temperature if temperature else None,
        temperature_limit_c=_temperature_limit(data),
        smart_passed=data.get("smart_status", {}).get("passed"),
        attributes=_attributes(data),
        nvme=nvme,
        wear_percent=data.get("nvme_smart_health_information_log", {}).get("percentage_used"),
        scsi_grown_defects=data.get("scsi_grown_defect_list"),
        uncorrected_errors=_uncorrected(data),
        error_log_entries=_error_log_entries(data),
        self_test_failures=failures,
        last_self_test=last_test,
        last_failed_self_test=last_failed,
    )


def _slot_from_output(data: Mapping[str, Any]) -> str:
    """The slot of a document read on its own (diagnose): its device path, with the port type if any.

    When smartctl could not open the device the output has no `device`; its command line names it.
    """
    device = data.get("device", {})
    argv = data.get("smartctl", {}).get("argv") or ["-"]
    name = device.get("name") or (argv[-1] if not str(argv[-1]).startswith("-") else "unknown device")
    return ScannedDevice(str(name), device.get("type"), device.get("protocol")).slot


def parse_xall_text(text: str, slot: str | None = None, exit_status: int | None = None) -> DiskFacts:
    """`parse_xall` on raw command output; output that is not JSON is a disk that could not be read."""
    try:
        data = load_json(text)
    except SmartctlOutputError as exc:
        return DiskFacts(
            device=slot or "unknown device",
            source="smartctl",
            status_read="unknown",
            read_problems=[str(exc)],
            smartctl_exit_status=exit_status,
        )
    return parse_xall(data, slot, exit_status)
