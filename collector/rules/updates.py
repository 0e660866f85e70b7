"""The updates rule: security updates left uninstalled too long; a package index that stopped refreshing."""

from __future__ import annotations

from datetime import datetime, timedelta

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec
from collector.rules.pending_reboot import span
from shared.updates import Updates

SECURITY_RULE = "updates.security"
SECURITY_SUBJECT = "security-updates"
INDEX_RULE = "updates.package_index"
INDEX_SUBJECT = "package-index"
SECURITY_DAYS = "security_updates_warning_days"
INDEX_DAYS = "package_index_warning_days"
DEFAULT_SECURITY_DAYS = 7
DEFAULT_INDEX_DAYS = 7
# Earlier signals needed to date the oldest security update (6-hourly checks: two weeks).
HISTORY = 60
NAMES_SHOWN = 5


def security_names(signal: Updates) -> set[str]:
    """Names of the security updates a signal lists."""
    return {item.name for item in signal.items if item.security}


def oldest_security_update(signal: Updates, history: History) -> datetime:
    """When the longest-waiting of today's security updates was first seen, walking back unbroken signals."""
    waiting = security_names(signal)
    since = signal.collected_at
    for earlier in history.previous:
        still = waiting & security_names(earlier) if isinstance(earlier, Updates) else set()
        if not still:
            break
        waiting, since = still, earlier.collected_at
    return since


def evaluate_security(signal: Updates, history: History) -> Evaluation:
    """Warning when security updates have been available longer than the allowed days."""
    if not signal.security_count:
        return Evaluation(
            SECURITY_RULE, SECURITY_SUBJECT, "ok", f"no security updates pending ({signal.manager})"
        )
    since = oldest_security_update(signal, history)
    age = history.now - since
    allowed = timedelta(days=history.settings.get("updates", {}).get(SECURITY_DAYS, DEFAULT_SECURITY_DAYS))
    names = sorted(security_names(signal))
    shown = ", ".join(names[:NAMES_SHOWN]) + (
        f" and {len(names) - NAMES_SHOWN} more" if len(names) > NAMES_SHOWN else ""
    )
    summary = f"{signal.security_count} security updates available for {span(age)} ({shown})"
    details = {
        "manager": signal.manager,
        "security_count": signal.security_count,
        "other_count": signal.other_count,
        "first_seen": since.isoformat(),
        "packages": names,
    }
    return Evaluation(SECURITY_RULE, SECURITY_SUBJECT, "warning" if age > allowed else "ok", summary, details)


def evaluate_index(signal: Updates, history: History) -> list[Evaluation]:
    """Warning when the package index has not refreshed for the allowed days: updates cannot even be seen."""
    if signal.index_refreshed_at is None:
        return []  # the OS does not record it: nothing to say either way
    age = history.now - signal.index_refreshed_at
    allowed = timedelta(days=history.settings.get("updates", {}).get(INDEX_DAYS, DEFAULT_INDEX_DAYS))
    if age <= allowed:
        return [
            Evaluation(INDEX_RULE, INDEX_SUBJECT, "ok", f"{signal.manager} index refreshed {span(age)} ago")
        ]
    summary = (
        f"{signal.manager} package index last refreshed {span(age)} ago: "
        "the update mechanism itself looks broken"
    )
    return [
        Evaluation(
            INDEX_RULE,
            INDEX_SUBJECT,
            "warning",
            summary,
            {"manager": signal.manager, "index_refreshed_at": signal.index_refreshed_at.isoformat()},
        )
    ]


def evaluate(signal: Updates, history: History) -> list[Evaluation]:
    """Security-update age and package-index freshness, each its own alert subject."""
    return [evaluate_security(signal, history), *evaluate_index(signal, history)]


def security_sentence(c: Caught) -> str:
    """What a business owner reads for security updates left waiting."""
    count = c.number("security_count")
    updates = f"{count} security update{'s' if count != 1 else ''}" if count else "Security updates"
    if c.outcome != "open":
        return f"{updates} that had been waiting on {c.device} were installed."
    return f"{updates} are waiting to be installed on {c.device}."


def index_sentence(c: Caught) -> str:
    """What a business owner reads for a device that stopped looking for updates."""
    fixed = "; it does again" if c.outcome != "open" else ""
    return f"{c.device} had stopped checking for new updates{fixed}."


SPEC = RuleSpec(evaluate, history=HISTORY, alerts=(
    AlertRule(SECURITY_RULE, action="install the pending security updates", sentence=security_sentence),
    AlertRule(INDEX_RULE, action="refresh the package index (apt update) and look at why it fails",
              sentence=index_sentence),
))
