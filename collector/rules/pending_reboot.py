"""The pending_reboot rule: alert when a high-confidence reboot waited too long, saying who is logged on."""

from __future__ import annotations

from datetime import datetime, timedelta

from collector.rules import AlertRule, Evaluation, History, RuleSpec
from shared.pending_reboot import InteractiveSession, PendingReboot

RULE = "pending_reboot"
SUBJECT = "reboot"
WARNING_DAYS = "reboot_warning_days"
CRITICAL_DAYS = "reboot_critical_days"
DEFAULT_WARNING_DAYS = 3
DEFAULT_CRITICAL_DAYS = 14
# Earlier signals the rule needs to date a reason the OS does not date (hourly checks: 14 days and some).
HISTORY = 400


def same_boot(signal: PendingReboot, other: PendingReboot) -> bool:
    """Whether two signals come from the same boot (boot id, else boot time)."""
    if signal.boot_id and other.boot_id:
        return signal.boot_id == other.boot_id
    return signal.boot_time == other.boot_time


def first_seen(signal: PendingReboot, history: History) -> datetime:
    """When this boot's pending state began: the OS's own date, else the oldest unbroken pending signal.

    Never before boot: a reboot restarts the clock (and so resolves the alert), even if the reason stays.
    """
    if signal.pending_since:
        return max(signal.pending_since, signal.boot_time) if signal.boot_time else signal.pending_since
    since = signal.collected_at
    for earlier in history.previous:
        if not (isinstance(earlier, PendingReboot) and earlier.pending and same_boot(signal, earlier)):
            break
        since = earlier.pending_since or earlier.collected_at
    return since


def span(delta: timedelta) -> str:
    """A duration in the largest whole unit (days, h, min)."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400:
        days = seconds // 86400
        return f"{days} day" if days == 1 else f"{days} days"
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def who(sessions: list[InteractiveSession]) -> str:
    """Who is logged on and how recently each was active (as of collection)."""
    if not sessions:
        return "nobody logged on"
    parts = []
    for session in sessions:
        if session.idle_seconds is None:
            parts.append(f"{session.user} logged on")
        elif session.idle_seconds < 60:
            parts.append(f"{session.user} logged on, active now")
        else:
            parts.append(
                f"{session.user} logged on, active {span(timedelta(seconds=session.idle_seconds))} ago"
            )
    return "; ".join(parts)


def evaluate(signal: PendingReboot, history: History) -> list[Evaluation]:
    """Warning after N days pending (high confidence only), critical after M; ok once cleared or rebooted."""
    high = [reason for reason in signal.reasons if reason.confidence == "high"]
    if not high:
        return [Evaluation(RULE, SUBJECT, "ok", f"no reboot pending on {history.hostname}")]
    settings = history.settings.get(RULE, {})
    warning_after = timedelta(days=settings.get(WARNING_DAYS, DEFAULT_WARNING_DAYS))
    critical_after = timedelta(days=settings.get(CRITICAL_DAYS, DEFAULT_CRITICAL_DAYS))
    since = first_seen(signal, history)
    age = history.now - since
    status = "critical" if age >= critical_after else "warning" if age >= warning_after else "ok"
    why = "; ".join(reason.detail for reason in high)
    summary = f"reboot pending for {span(age)} ({why}); {who(signal.sessions)}"
    details = {
        "pending_since": since.isoformat(),
        "pending_seconds": int(age.total_seconds()),
        "reasons": [reason.model_dump() for reason in signal.reasons],
        "boot_id": signal.boot_id,
        "sessions": [session.model_dump(mode="json") for session in signal.sessions],
        "last_action": signal.last_action.model_dump(mode="json") if signal.last_action else None,
    }
    return [Evaluation(RULE, SUBJECT, status, summary, details)]


SPEC = RuleSpec(evaluate, history=HISTORY, alerts=(AlertRule(RULE),))
