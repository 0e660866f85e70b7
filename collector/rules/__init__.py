"""Rules: pure functions from a signal and what was known before to evaluations. No I/O in here."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

from shared.wire import Signal

T = TypeVar("T")
Status = Literal["ok", "warning", "critical", "unknown"]


@dataclass(frozen=True)
class Evaluation:
    """A rule's verdict on one subject of one device, or of its whole site (`scope="site"`).

    `ok` resolves an open alert with the same subject; a site-scoped subject is one alert for the site,
    whichever of its devices reports it.
    """

    rule: str
    subject: str
    status: Status
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    scope: Literal["device", "site"] = "device"


@dataclass(frozen=True)
class SiteReport:
    """A signal of one of the site's devices, as stored."""

    agent_id: str
    hostname: str
    at: datetime
    signal: Signal


@dataclass(frozen=True)
class History:
    """What a rule may know besides the new signal: earlier signals (newest first), time, settings.

    `settings` holds the client's thresholds by signal kind: `settings["disk_health"]["fs_warning_free_percent"]`.
    `site` holds recent signals of the same kind from every device of the site (rules that correlate).
    """

    now: datetime
    hostname: str
    previous: tuple[Signal, ...] = ()
    agent_id: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    site: tuple[SiteReport, ...] = ()


Rule = Callable[[Any, History], list[Evaluation]]


@dataclass(frozen=True)
class RuleSpec:
    """A signal kind's rule, how many of the device's earlier signals it sees, and how many hours of the site's."""

    evaluate: Rule
    history: int = 0
    site_hours: float = 0


def thresholds(cls: type[T], settings: Mapping[str, Any], kind: str) -> T:
    """A rule's limits (a dataclass) from the client's settings for `kind`; defaults for the keys not set."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in (settings.get(kind) or {}).items() if key in known})


def fingerprint(rule: str, owner: str, subject: str) -> str:
    """The identity of an alert: the same rule, owner (device, or `site:<id>`) and subject give the same one."""
    return hashlib.sha256(f"{rule}\x00{owner}\x00{subject}".encode()).hexdigest()[:32]


def rules_by_kind() -> dict[str, RuleSpec]:
    """The rule that evaluates each signal kind."""
    from collector.rules import (
        backup_results,
        disk_health,
        heartbeat,
        pending_reboot,
        printer_ip_conflict,
        unknown,
        updates,
    )

    return {
        "heartbeat": RuleSpec(heartbeat.evaluate),
        "unknown": RuleSpec(unknown.evaluate),
        # Hourly reports: a week of history for growth of bad sectors and the fill forecast.
        "disk_health": RuleSpec(disk_health.evaluate, history=24 * 8),
        "pending_reboot": RuleSpec(pending_reboot.evaluate, history=pending_reboot.HISTORY),
        "updates": RuleSpec(updates.evaluate, history=updates.HISTORY),
        "backup_results": RuleSpec(backup_results.evaluate, history=backup_results.HISTORY),
        "printer_ip_conflict": RuleSpec(printer_ip_conflict.evaluate, site_hours=printer_ip_conflict.SITE_HOURS),
    }


def evaluate(spec: RuleSpec, signal: Signal, history: History) -> list[Evaluation]:
    """Run the signal's rule; a signal of a kind that was `unknown` before also clears that alert."""
    from collector.rules import unknown

    evaluations = spec.evaluate(signal, history)
    if signal.kind != "unknown":
        evaluations.append(Evaluation(unknown.RULE, signal.kind, "ok", f"{signal.kind} is collecting again"))
    return evaluations
