"""The one registry of signals: each signal's name (its wire `kind`), model, label and the alert rules it owns.

The same name is the agent's check (`agent/checks/<name>`), the wire kind, the collector's rule module
(`collector/rules/<name>.py`) and the tests named for it. An alert rule is named `<signal>` or
`<signal>.<aspect>`, so a silence or channel filter naming a signal covers every rule of that signal.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.backup_results import BackupResults
from shared.base import Signal
from shared.disk_health import DiskHealth
from shared.encryption import Encryption
from shared.pending_reboot import PendingReboot
from shared.printer_ip_conflict import PrinterIpConflict
from shared.reachability import Reachability
from shared.security_center import SecurityCenter
from shared.updates import Updates
from shared.wire import Heartbeat, Unknown


@dataclass(frozen=True)
class SignalInfo:
    """One signal: its name, wire model, label for people, and the alert rules it owns."""

    name: str
    model: type[Signal]
    label: str
    rules: tuple[str, ...]
    # A column of its own on the dashboard's device list (heartbeat and unknown are shown otherwise).
    at_a_glance: bool = True
    # Collected by an agent check of the same name; `unknown` is produced by the checks' base class instead.
    own_check: bool = True


SIGNALS: tuple[SignalInfo, ...] = (
    SignalInfo("heartbeat", Heartbeat, "Online", ("heartbeat.offline", "heartbeat.site_offline", "heartbeat.refused",
                                                 "heartbeat.outbox"), at_a_glance=False),
    # A check that could not look: one rule, `unknown`, whose subject names the check (see collector/rules/unknown).
    SignalInfo("unknown", Unknown, "Check failed", ("unknown",), at_a_glance=False, own_check=False),
    SignalInfo("disk_health", DiskHealth, "Disks", ("disk_health",)),
    SignalInfo("pending_reboot", PendingReboot, "Reboot", ("pending_reboot", "pending_reboot.not_cleared")),
    SignalInfo("printer_ip_conflict", PrinterIpConflict, "Printers", ("printer_ip_conflict",)),
    SignalInfo("backup_results", BackupResults, "Backups", ("backup_results",)),
    SignalInfo("updates", Updates, "Updates", ("updates.security", "updates.package_index")),
    SignalInfo("encryption", Encryption, "Encryption", ("encryption", "encryption.recovery", "encryption.escrow")),
    SignalInfo("security_center", SecurityCenter, "Security", ("security_center.protection",
                                                               "security_center.detection",
                                                               "security_center.burst")),
    # Its alerts belong to the site (a device without an agent), so it has no column per PC.
    SignalInfo("reachability", Reachability, "Network devices", ("reachability", "reachability.certificate"),
               at_a_glance=False),
)

BY_NAME: dict[str, SignalInfo] = {signal.name: signal for signal in SIGNALS}


def signal_of(rule: str) -> str:
    """The signal an alert rule belongs to: the part before the first dot."""
    return rule.partition(".")[0]


def rule_matches(wanted: str, rule: str) -> bool:
    """Whether a filter (a signal or a rule name) covers `rule`: `updates` covers `updates.security`."""
    return rule == wanted or rule.startswith(wanted + ".")


def all_rules() -> tuple[str, ...]:
    """Every signal's alert rules, sorted."""
    return tuple(sorted(rule for signal in SIGNALS for rule in signal.rules))
