"""Rules: pure functions from a signal and what was known before to evaluations. No I/O in here."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal, TypeVar

from shared.device_class import DeviceClass
from shared.signals import SIGNALS
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
    # The subject is gone for good (a replaced disk): an `ok` resolves its alert at once, without hysteresis.
    gone: bool = False


@dataclass(frozen=True)
class SiteReport:
    """A signal of one of the site's devices, as stored."""

    agent_id: str
    hostname: str
    at: datetime
    signal: Signal


@dataclass(frozen=True)
class KnownDisk:
    """A disk a device had, as the collector stores it between reports: its identity as last read, where and
    when; whether it is gone from the newest report, and the serial of the disk that replaced it."""

    serial: str
    model: str | None
    device: str
    seen_at: datetime
    missing: bool = False
    replaced_by: str | None = None


@dataclass(frozen=True)
class History:
    """What a rule may know besides the new signal: earlier signals (newest first), time, settings.

    `settings` holds the client's thresholds by signal kind: `settings["disk_health"]["fs_warning_free_percent"]`.
    `site` holds recent signals of the same kind from every device of the site (rules that correlate).
    `known_disks` holds the device's disks as stored after its previous report (rules that keep them,
    `RuleSpec.known_disks`); empty where none are stored yet.
    """

    now: datetime
    hostname: str
    previous: tuple[Signal, ...] = ()
    agent_id: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)
    site: tuple[SiteReport, ...] = ()
    # The class the device is judged by (the technician's override, else its agent's); None: not known yet.
    device_class: DeviceClass | None = None
    known_disks: tuple[KnownDisk, ...] = ()
    # The IANA time zone of the client's own business hours (rules with `RuleSpec.client_zone`); None where it
    # has none, and the rule's own setting applies.
    client_zone: str | None = None


Rule = Callable[[Any, History], list[Evaluation]]


Outcome = Literal["open", "resolved", "replaced"]


@dataclass(frozen=True)
class Caught:
    """An alert as a rule's client sentence sees it. Every text in it is already cleaned (no control
    characters, one line, bounded length, no leading formula sign): the agent wrote most of it."""

    hostname: str
    site: str
    subject: str
    critical: bool
    details: Mapping[str, Any]
    # What came of it: still open, resolved, or its subject replaced (a failing disk swapped out).
    outcome: Outcome = "open"

    @property
    def device(self) -> str:
        """The device's name, or a stand-in when the alert names none."""
        return self.hostname or "a device"

    def text(self, key: str, default: str = "") -> str:
        """A text detail, or `default` when it is missing, empty or not a text."""
        value = self.details.get(key)
        return value if isinstance(value, str) and value else default

    def number(self, key: str) -> int | None:
        """A whole-number detail, or None when it is missing or not a number."""
        value = self.details.get(key)
        return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    def after_subject(self, prefix: str) -> str:
        """The subject's part after `prefix` (`disk:` of `disk:S123`), or "" when it has another prefix."""
        return self.subject.removeprefix(prefix) if self.subject.startswith(prefix) else ""


@dataclass(frozen=True)
class AlertRule:
    """How the alerts of one rule behave after evaluation: data the pipeline reads, never `if rule == ...`."""

    name: str
    # One good verdict is proof on its own (one heartbeat, one good collection): it resolves without hysteresis.
    resolve_at_once: bool = False
    # While an alert of this rule is open, the other alerts of the same device ("device") or of the same
    # site ("site") notify nobody: the device being offline says it all (Alertmanager's inhibition).
    inhibits: Literal["device", "site"] | None = None
    # The subject of this rule's alerts when it has one per owner (how the inhibiting alert is found).
    subject: str = ""
    # What the technician should do about an alert of this rule, shown in its messages ("" where it depends).
    action: str = ""
    # The plain sentence a business owner reads for what an alert of this rule caught (value report, invoice);
    # None: the generic one (`collector.billing.sentences`).
    sentence: Callable[[Caught], str] | None = None


@dataclass(frozen=True)
class RuleSpec:
    """A signal's rule: how many of the device's earlier signals it sees, how many hours (and rows) of the
    site's, and the alert rules its evaluations are named by."""

    evaluate: Rule
    history: int = 0
    site_hours: float = 0
    # The site's history is bounded in rows too, per device and in all, so that its cost does not grow
    # with what one device sends (the defaults hold a day of reports every 15 minutes from 50 devices).
    site_rows_per_device: int = 200
    site_rows: int = 5000
    alerts: tuple[AlertRule, ...] = ()
    # The device's known disks after this signal, stored by the collector and handed back in the next
    # report's History: what the rule remembers beyond its `history` of reports.
    known_disks: Callable[[Any, History], tuple[KnownDisk, ...]] | None = None
    # The rule reads local hours: its History carries the client's own time zone (read only for such rules).
    client_zone: bool = False


def thresholds(cls: type[T], settings: Mapping[str, Any], kind: str) -> T:
    """A rule's limits (a dataclass) from the client's settings for `kind`; defaults for the keys not set."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in (settings.get(kind) or {}).items() if key in known})


def fingerprint(rule: str, owner: str, subject: str) -> str:
    """The identity of an alert: the same rule, owner (device, `site:<id>` or `collector`) and subject give
    the same one. Plain text, so that a migration renaming a rule can recompute it in SQL (see 0007)."""
    return f"{rule}|{owner}|{subject}"


def rules_by_kind() -> dict[str, RuleSpec]:
    """The rule that evaluates each signal kind: `SPEC` of `collector.rules.<signal>`, for every signal."""
    return {signal.name: importlib.import_module(f"collector.rules.{signal.name}").SPEC for signal in SIGNALS}


def alert_rule(name: str) -> AlertRule:
    """The spec of an alert rule by name; a rule no signal owns (the collector's own) has no special behaviour."""
    return _alert_rules().get(name) or AlertRule(name)


@functools.cache
def _alert_rules() -> dict[str, AlertRule]:
    """Every signal's alert rules by name."""
    return {rule.name: rule for spec in rules_by_kind().values() for rule in spec.alerts}


def inhibitors() -> tuple[AlertRule, ...]:
    """The alert rules whose open alerts keep others quiet."""
    return tuple(rule for rule in _alert_rules().values() if rule.inhibits)


def evaluate(spec: RuleSpec, signal: Signal, history: History) -> list[Evaluation]:
    """Run the signal's rule; a signal of a kind that was `unknown` before also clears that alert."""
    from collector.rules import unknown

    evaluations = spec.evaluate(signal, history)
    if signal.kind != "unknown":
        evaluations.append(Evaluation(unknown.RULE, signal.kind, "ok", f"{signal.kind} is collecting again"))
    return evaluations
