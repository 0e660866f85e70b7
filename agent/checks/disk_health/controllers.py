"""Hardware RAID and Storage Spaces: MegaRAID virtual drives (storcli/perccli JSON) and Windows virtual disks
(Get-VirtualDisk), parsed apart from the calls (tests feed recorded outputs).

A controller's tool that is missing is no error where no such controller exists; where one is found (its
driver is bound, or the disks the system sees are its virtual drives) it is "cannot look", said as such.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from agent.checks.disk_health.windows import HEALTH_STATUS, OPERATIONAL_STATUS, enum_name, json_objects
from agent.commands import CommandNotFound, Runner, powershell
from shared.disk_health import ArrayCondition, ArrayMember, ControllerReading, ControllerVolume, DiskFacts

# Broadcom's storcli and Dell's rebranded perccli take the same commands and print the same JSON.
STORCLI_TOOLS = ("storcli64", "storcli", "perccli64", "perccli")
VOLUMES_ARGS = ("/call/vall", "show", "all", "J")
REBUILD_ARGS = ("/call/eall/sall", "show", "rebuild", "J")
# storcli's legend: Optl Optimal, Pdgd Partially Degraded (a RAID6 that lost one disk), Dgrd Degraded, OfLn OffLine.
VD_CONDITION: dict[str, ArrayCondition] = {"Optl": "optimal", "Pdgd": "degraded", "Dgrd": "degraded",
                                           "OfLn": "offline"}
REBUILDING_PD = "Rbld"
# The Linux driver of MegaRAID (and Dell PERC) controllers; each bound controller is a PCI address in its folder.
MEGARAID_DRIVER = "sys/bus/pci/drivers/megaraid_sas"
PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
# Model names the operating system shows for MegaRAID virtual drives (LSI/Avago/Broadcom MR9xxx, Dell PERC).
MEGARAID_MODEL = re.compile(r"\b(PERC|MegaRAID|MR9\d{3}|LSI|AVAGO)\b", re.IGNORECASE)
MEGARAID_INSTALL = ("install storcli (Broadcom) or perccli (Dell) to read its virtual drives")

VIRTUAL_DISKS_SCRIPT = (
    "Get-VirtualDisk | ForEach-Object { [pscustomobject]@{ FriendlyName = $_.FriendlyName; "
    "ResiliencySettingName = $_.ResiliencySettingName; HealthStatus = $_.HealthStatus; "
    "OperationalStatus = $_.OperationalStatus; PhysicalDisks = @($_ | Get-PhysicalDisk | "
    "Select-Object FriendlyName,SerialNumber,HealthStatus,OperationalStatus) } } | ConvertTo-Json -Depth 4"
)
# MSFT_VirtualDisk OperationalStatus beyond the common CIM values: 0xD00D Detached, 0xD00E Incomplete.
VIRTUAL_DISK_STATUS = {**OPERATIONAL_STATUS, 0xD00D: "Detached", 0xD00E: "Incomplete"}
SPACES_OFFLINE = {"Detached", "Error", "Non-Recoverable Error", "No Contact", "Lost Communication", "Stopped"}
SPACES_DEGRADED = {"Degraded", "Incomplete"}
# "In Service": Windows is repairing (regenerating) the virtual disk onto a new or returned disk.
SPACES_REPAIRING = "In Service"


class ControllerOutputError(ValueError):
    """The text is not the tool's JSON output."""


def _percent(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _controllers(text: str) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ControllerOutputError(f"not storcli JSON output ({exc.msg} at line {exc.lineno})") from exc
    controllers = data.get("Controllers") if isinstance(data, dict) else None
    if not isinstance(controllers, list):
        raise ControllerOutputError("not storcli JSON output (no Controllers list)")
    return [c for c in controllers if isinstance(c, dict)]


def parse_rebuild(text: str) -> dict[str, float]:
    """Rebuild progress by drive (`/c0/e252/s1`) from `storcli /call/eall/sall show rebuild J`."""
    progress = {}
    for controller in _controllers(text):
        rows = controller.get("Response Data")
        for row in rows if isinstance(rows, list) else []:
            percent = _percent(row.get("Progress%")) if isinstance(row, dict) else None
            if percent is not None and "progress" in str(row.get("Status", "")).lower():
                progress[str(row.get("Drive-ID"))] = percent
    return progress


def _drive_id(controller: int, slot: str) -> str:
    """storcli's name of a drive from its controller and `EID:Slt` (no enclosure: `/c0/s3`)."""
    enclosure, _, number = slot.partition(":")
    enclosure = enclosure.strip()
    return f"/c{controller}/e{enclosure}/s{number}" if enclosure else f"/c{controller}/s{number}"


def _volume(
    key: str, row: Mapping[str, Any], data: Mapping[str, Any], rebuild: Mapping[str, float]
) -> ControllerVolume:
    controller, number = (int(n) for n in re.findall(r"\d+", key)[:2])
    members = [
        ArrayMember(slot=str(pd.get("EID:Slt", "")).strip(), state=str(pd.get("State", "")),
                    model=str(pd.get("Model") or "").strip() or None,
                    rebuild_percent=rebuild.get(_drive_id(controller, str(pd.get("EID:Slt", "")))))
        for pd in data.get(f"PDs for VD {number}", []) if isinstance(pd, dict)
    ]
    state = str(row.get("State", ""))
    condition = VD_CONDITION.get(state, "other")
    rebuilding = [m for m in members if m.state == REBUILDING_PD]
    if rebuilding and condition == "degraded":
        condition = "rebuilding"
    progress = [m.rebuild_percent for m in rebuilding if m.rebuild_percent is not None]
    label = str(row.get("Name") or "").strip()
    properties = data.get(f"VD{number} Properties")
    os_device = properties.get("OS Drive Name") if isinstance(properties, dict) else None
    return ControllerVolume(
        name=f"{key} {label}" if label else key, level=row.get("TYPE"), state=state, condition=condition,
        os_device=os_device or None, members=members, rebuild_percent=min(progress) if progress else None,
    )


def parse_megaraid(volumes_text: str, rebuild: Mapping[str, float] | None = None) -> list[ControllerVolume]:
    """The virtual drives in `storcli /call/vall show all J` output, with rebuild progress by drive."""
    volumes = []
    for controller in _controllers(volumes_text):
        status = controller.get("Command Status") or {}
        data = controller.get("Response Data")
        if "no vd" in str(status.get("Description", "")).lower():
            continue  # a controller without virtual drives (all disks JBOD): nothing to judge
        if str(status.get("Status", "")).lower() != "success":
            raise ControllerOutputError(f"storcli failed: {status.get('Description') or 'no description'}")
        if not isinstance(data, dict):
            continue
        volumes += [
            _volume(key, rows[0], data, rebuild or {})
            for key, rows in data.items()
            if re.fullmatch(r"/c\d+/v\d+", key) and isinstance(rows, list) and rows and isinstance(rows[0], dict)
        ]
    return volumes


def megaraid_detected(root: Path, disks: Iterable[DiskFacts]) -> str | None:
    """Why this machine has a MegaRAID controller (its Linux driver is bound, or a disk is its virtual
    drive), or None."""
    driver = root / MEGARAID_DRIVER
    bound = sorted(p.name for p in driver.iterdir() if PCI_ADDRESS.match(p.name)) if driver.is_dir() else []
    if bound:
        return f"megaraid_sas driver bound to {', '.join(bound)}"
    for disk in disks:
        if "[megaraid," in disk.device:
            return f"smartctl reads {disk.device} through a MegaRAID controller"
        if disk.model and MEGARAID_MODEL.search(disk.model):
            return f"{disk.device} is a MegaRAID virtual drive ({disk.model})"
    return None


def read_megaraid(run: Runner, timeout: float, detected: str | None) -> ControllerReading | None:
    """Ask storcli (or perccli) for the virtual drives; None where there is neither tool nor controller."""
    for tool in STORCLI_TOOLS:
        try:
            answer = run([tool, *VOLUMES_ARGS], timeout)
        except CommandNotFound:
            continue
        except subprocess.TimeoutExpired:
            return ControllerReading(source="megaraid", detected=detected or tool, tool=tool,
                                     error=f"{tool} did not answer within {timeout:g} s")
        try:
            volumes = parse_megaraid(answer.stdout, _rebuild_progress(run, tool, timeout))
        except ControllerOutputError as exc:
            if detected is None:
                return None  # installed, and says there is no controller ("Controller 0 not found")
            return ControllerReading(source="megaraid", detected=detected or tool, tool=tool,
                                     error=f"{tool} /call/vall show all J (exit {answer.returncode}): {exc}")
        if detected is None and not volumes:
            return None  # installed, but no controller with virtual drives here
        return ControllerReading(source="megaraid", detected=detected or f"{tool} lists virtual drives", tool=tool,
                                 volumes=volumes)
    if detected is None:
        return None
    return ControllerReading(source="megaraid", detected=detected,
                             error=f"cannot look: neither storcli nor perccli is installed; {MEGARAID_INSTALL}")


def _rebuild_progress(run: Runner, tool: str, timeout: float) -> dict[str, float]:
    """Rebuild progress by drive; the volumes are still worth reporting without it."""
    try:
        return parse_rebuild(run([tool, *REBUILD_ARGS], timeout).stdout)
    except (subprocess.TimeoutExpired, ControllerOutputError):
        return {}


def _spaces_condition(health: str | None, statuses: list[str]) -> ArrayCondition:
    if health == "Unhealthy" or SPACES_OFFLINE & set(statuses):
        return "offline"
    if SPACES_REPAIRING in statuses:
        return "rebuilding"
    if health == "Warning" or SPACES_DEGRADED & set(statuses):
        return "degraded"
    return "optimal" if health == "Healthy" and statuses == ["OK"] else "other"


def _statuses(value: Any) -> list[str]:
    values = value if isinstance(value, list) else [] if value is None else [value]
    return [name for name in (enum_name(v, VIRTUAL_DISK_STATUS) for v in values) if name]


def _objects(value: Any) -> list[Mapping[str, Any]]:
    """A nested ConvertTo-Json value as a list of objects (one object alone is not wrapped in an array)."""
    values = value if isinstance(value, list) else [] if value is None else [value]
    return [v for v in values if isinstance(v, dict)]


def _state(health: str | None, statuses: list[str]) -> str:
    return ", ".join([health or "no health status", *statuses])


def parse_virtual_disks(text: str) -> list[ControllerVolume]:
    """Storage Spaces virtual disks, with their physical disks, from VIRTUAL_DISKS_SCRIPT's output."""
    volumes = []
    for disk in json_objects(text):
        health = enum_name(disk.get("HealthStatus"), HEALTH_STATUS)
        statuses = _statuses(disk.get("OperationalStatus"))
        members = [
            ArrayMember(
                slot=str(pd.get("FriendlyName") or pd.get("SerialNumber") or "disk"),
                state=_state(enum_name(pd.get("HealthStatus"), HEALTH_STATUS), _statuses(pd.get("OperationalStatus"))),
            )
            for pd in _objects(disk.get("PhysicalDisks"))
        ]
        volumes.append(ControllerVolume(
            name=str(disk.get("FriendlyName") or "virtual disk"), level=disk.get("ResiliencySettingName"),
            state=_state(health, statuses), condition=_spaces_condition(health, statuses), members=members,
        ))
    return volumes


def read_storage_spaces(run: Runner, timeout: float) -> ControllerReading | None:
    """Ask Windows for its Storage Spaces virtual disks; None where it has none (or no Storage Spaces at all)."""
    tool = "Get-VirtualDisk"
    try:
        answer = run(powershell(VIRTUAL_DISKS_SCRIPT), timeout)
    except subprocess.TimeoutExpired:
        return ControllerReading(source="storage_spaces", detected=tool, tool=tool,
                                 error=f"Get-VirtualDisk did not answer within {timeout:g} s")
    if answer.returncode != 0:
        if "is not recognized" in answer.stderr:
            return None  # Windows before 8 / Server 2012: no Storage Spaces to have
        return ControllerReading(source="storage_spaces", detected=tool, tool=tool,
                                 error=f"Get-VirtualDisk failed (exit {answer.returncode}): {answer.stderr.strip()}")
    try:
        volumes = parse_virtual_disks(answer.stdout)
    except json.JSONDecodeError as exc:
        return ControllerReading(source="storage_spaces", detected=tool, tool=tool,
                                 error=f"Get-VirtualDisk gave no JSON ({exc.msg})")
    if not volumes:
        return None
    return ControllerReading(source="storage_spaces", detected="Get-VirtualDisk lists virtual disks", tool=tool,
                             volumes=volumes)
