"""The `disk_health` check: SMART facts of every disk (smartctl, or Windows storage WMI) and filesystems."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import ClassVar

from agent.checks import Check, CheckContext
from agent.checks.disk_health.controllers import megaraid_detected, read_megaraid, read_storage_spaces
from agent.checks.disk_health.filesystems import read_filesystems
from agent.checks.disk_health.mdstat import read_arrays
from agent.checks.disk_health.smartctl import (
    ScannedDevice,
    SmartctlOutputError,
    load_json,
    parse_scan,
    parse_xall_text,
    xall_argv,
)
from agent.checks.disk_health.windows import read_windows_disks
from agent.commands import CommandNotFound, command_owner, working_for
from shared.base import Signal
from shared.disk_health import ControllerReading, DiskFacts, DiskHealth

SCAN_ARGV = ("smartctl", "--scan-open", "--json")
# Disks read at once: enough for a small server's bays, few enough not to load a controller.
PARALLEL_READS = 4
INSTALL_HINT = {
    "linux": "install smartmontools (apt install smartmontools)",
    "darwin": "install smartmontools (brew install smartmontools)",
}


def smartctl_missing(platform: str) -> str:
    """The error a device without smartctl reports, saying how to install it there."""
    return f"smartctl not found: {INSTALL_HINT.get(platform, 'install smartmontools')}"


class DiskHealthCheck(Check):
    """Reads every disk with smartctl (on Windows without it: MSFT_PhysicalDisk) and every filesystem."""

    kind: ClassVar[str] = "disk_health"
    default_interval: ClassVar[float] = 3600.0
    timeout: ClassVar[float] = 300.0
    command_timeout: ClassVar[float] = 60.0

    def __init__(self, context: CheckContext | None = None, platform: str | None = None) -> None:
        super().__init__(context)
        self.platform = platform or sys.platform

    def collect(self) -> list[Signal]:
        """One signal: disks (or why they could not be looked at) and filesystems."""
        collected_at = self.context.clock()
        error = None
        try:
            disks = self.smartctl_disks()
        except CommandNotFound:
            if self.platform != "win32":
                disks, error = [], smartctl_missing(self.platform)
            else:
                disks = read_windows_disks(self.context.run, self.command_timeout)
        except SmartctlOutputError as exc:
            disks, error = [], f"smartctl --scan-open gave no device list: {exc}"
        arrays = read_arrays(self.context.root) if self.platform == "linux" else []
        return [
            DiskHealth(collected_at=collected_at, disks=disks, filesystems=read_filesystems(), arrays=arrays,
                       controllers=self.controllers(disks), error=error)
        ]

    def controllers(self, disks: list[DiskFacts]) -> list[ControllerReading]:
        """The MegaRAID controller and (on Windows) Storage Spaces found, with their volumes."""
        found = [read_megaraid(self.context.run, self.command_timeout, megaraid_detected(self.context.root, disks))]
        if self.platform == "win32":
            found.append(read_storage_spaces(self.context.run, self.command_timeout))
        return [reading for reading in found if reading is not None]

    def smartctl_disks(self) -> list[DiskFacts]:
        """Scan for disks, then read them side by side (a hung disk costs its own 60 s, not every disk's);
        a disk that cannot be read is reported as such."""
        scan = self.context.run(SCAN_ARGV, self.command_timeout)
        devices = parse_scan(load_json(scan.stdout))
        if not devices:
            return []
        with ThreadPoolExecutor(min(len(devices), PARALLEL_READS), thread_name_prefix="smartctl") as pool:
            return list(pool.map(working_for(command_owner(), self.read_disk), devices))

    def read_disk(self, device: ScannedDevice) -> DiskFacts:
        """`smartctl --xall --json` of one disk, parsed with its exit status."""
        try:
            result = self.context.run(xall_argv(device), self.command_timeout)
        except subprocess.TimeoutExpired:
            return DiskFacts(
                device=device.slot,
                source="smartctl",
                protocol=device.protocol,
                status_read="unknown",
                read_problems=[f"smartctl did not answer within {self.command_timeout:g} s"],
            )
        return parse_xall_text(result.stdout, device.slot, result.returncode)
