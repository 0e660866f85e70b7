"""Every check the agent knows, by kind (the same word as the wire `kind` and the collector's rule)."""

from __future__ import annotations

from agent.checks import Check
from agent.checks.backup_results import BackupResultsCheck
from agent.checks.disk_health import DiskHealthCheck
from agent.checks.heartbeat import HeartbeatCheck
from agent.checks.pending_reboot import PendingRebootCheck
from agent.checks.printer_ip_conflict import PrinterIpConflictCheck
from agent.checks.updates import UpdatesCheck


def all_checks() -> dict[str, type[Check]]:
    """The check classes by kind."""
    checks: list[type[Check]] = [
        HeartbeatCheck, DiskHealthCheck, PendingRebootCheck, UpdatesCheck, BackupResultsCheck, PrinterIpConflictCheck,
    ]
    return {check.kind: check for check in checks}
