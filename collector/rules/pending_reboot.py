"""The pending_reboot rule: alert when a high-confidence reboot waited too long, saying who is logged on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec
from shared.pending_reboot import InteractiveSession, PendingReboot

RULE = "pending_reboot"
SUBJECT = "reboot"
# The policy rebooted and a reason survived: it will not reboot for it again, a technician must look.
NOT_CLEARED_RULE = "pending_reboot.not_cleared"
NOT_CLEARED_SUBJECT = "reboot-not-cleared"
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
    """When this boot's pending state began: the earliest date of the unbroken pending signals of this boot.

    The earliest, because a later install rewrites the OS's flag (and its date). Never before boot: a
    reboot restarts the clock (and so resolves the alert), even if the reason stays.
    """
    since = signal.pending_since or signal.collected_at
    for earlier in history.previous:
        if not (isinstance(earlier, PendingReboot) and earlier.pending and same_boot(signal, earlier)):
            break
        since = min(since, earlier.pending_since or earlier.collected_at)
    return max(since, signal.boot_time) if signal.boot_time else since


def span(delta: timedelta) -> str:
    """A duration in the largest whole unit (days, h, min)."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds >= 86400:
        days = seconds // 86400
        return f"{days} day" if days == 1 else f"{days} days"
    if seconds >= 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def unread(signal: PendingReboot) -> str:
    """What the agent could not read (a blocked PowerShell), said beside what it did read."""
    return f"; could not read: {'; '.join(signal.errors)}" if signal.errors else ""


def who(sessions: list[InteractiveSession]) -> str:
    """Who is logged on; how recently each typed is left to the details, or the summary would change hourly."""
    if not sessions:
        return "nobody logged on"
    return ", ".join(sorted({session.user for session in sessions})) + " logged on"


def evaluate(signal: PendingReboot, history: History) -> list[Evaluation]:
    """The pending reboot's age, and a reboot by the policy that did not clear its reason."""
    return [evaluate_pending(signal, history), evaluate_not_cleared(signal, history)]


def evaluate_not_cleared(signal: PendingReboot, history: History) -> Evaluation:
    """Warning while a reason survives the policy's reboot (the agent stops rebooting for it)."""
    survived = signal.policy_reboot.not_cleared if signal.policy_reboot else []
    if not signal.policy_reboot or not survived:
        return Evaluation(
            NOT_CLEARED_RULE, NOT_CLEARED_SUBJECT, "ok", f"no stuck reboot reason on {history.hostname}"
        )
    what = "; ".join(reason.detail for reason in survived)
    when = signal.policy_reboot.rebooted_at.astimezone(UTC)
    summary = (
        f"reboot did not clear {what} (rebooted by the policy {when:%Y-%m-%d %H:%M} UTC); "
        "not rebooting again until a technician looks"
    )
    details = {
        "rebooted_at": signal.policy_reboot.rebooted_at.isoformat(),
        "not_cleared": [reason.model_dump() for reason in survived],
        "boot_id": signal.boot_id,
    }
    return Evaluation(NOT_CLEARED_RULE, NOT_CLEARED_SUBJECT, "warning", summary, details)


def evaluate_pending(signal: PendingReboot, history: History) -> Evaluation:
    """Warning after N days pending (high confidence only), critical after M; ok once cleared or rebooted."""
    high = [reason for reason in signal.reasons if reason.confidence == "high"]
    if not high:
        return Evaluation(RULE, SUBJECT, "ok", f"no reboot pending on {history.hostname}{unread(signal)}")
    settings = history.settings.get(RULE, {})
    warning_after = timedelta(days=settings.get(WARNING_DAYS, DEFAULT_WARNING_DAYS))
    critical_after = timedelta(days=settings.get(CRITICAL_DAYS, DEFAULT_CRITICAL_DAYS))
    since = first_seen(signal, history)
    age = history.now - since
    status = "critical" if age >= critical_after else "warning" if age >= warning_after else "ok"
    why = "; ".join(reason.detail for reason in high)
    # Only stable words: a summary that changes is a new message to the technician.
    summary = f"reboot pending since {since.astimezone(UTC):%Y-%m-%d} ({why}); {who(signal.sessions)}{unread(signal)}"
    details = {
        "pending_since": since.isoformat(),
        "pending_seconds": int(age.total_seconds()),
        "reasons": [reason.model_dump() for reason in signal.reasons],
        "boot_id": signal.boot_id,
        "sessions": [session.model_dump(mode="json") for session in signal.sessions],
        "last_action": signal.last_action.model_dump(mode="json") if signal.last_action else None,
        "errors": signal.errors,
    }
    return Evaluation(RULE, SUBJECT, status, summary, details)


def reboot_sentence(c: Caught) -> str:
    """What a business owner reads for updates waiting on a restart."""
    if c.outcome != "open":
        return f"Updates on {c.device} finished after a restart we scheduled."
    return f"Updates on {c.device} are waiting for a restart, which we are arranging with you."


def not_cleared_sentence(c: Caught) -> str:
    """What a business owner reads for updates a restart did not finish."""
    fixed = "; we completed them" if c.outcome != "open" else ""
    return f"Updates on {c.device} did not finish after a restart{fixed}."


SPEC = RuleSpec(evaluate, history=HISTORY, alerts=(
    AlertRule(RULE, action="schedule a reboot with the user", sentence=reboot_sentence),
    AlertRule(NOT_CLEARED_RULE, action="reboot did not finish the updates: look at the update log",
              sentence=not_cleared_sentence),
))
