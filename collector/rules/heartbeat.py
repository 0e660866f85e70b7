"""The heartbeat rule: a device is offline when its heartbeats stop, and online again when one arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.rules import AlertRule, Evaluation, History, RuleSpec
from shared.wire import Heartbeat

RULE = "heartbeat.offline"
SUBJECT = "device"


REFUSED_RULE = "heartbeat.refused"
# Refused reports keep their warning this long after the newest one, then it resolves by itself.
REFUSED_FOR = timedelta(hours=24)


def evaluate(signal: Heartbeat, history: History) -> list[Evaluation]:
    """A heartbeat means the device is online (resolving its offline alert); it also says whether the
    collector refused any of the device's reports lately (a check writing what can never be accepted)."""
    return [Evaluation(RULE, SUBJECT, "ok", f"{signal.hostname} is reporting again"), refused(signal),
            outbox(signal)]


def refused(signal: Heartbeat) -> Evaluation:
    """A warning while the collector refused one of the device's reports within REFUSED_FOR."""
    recent = signal.last_refusal_queued_at is not None and (
        signal.collected_at - signal.last_refusal_queued_at < REFUSED_FOR)
    if not signal.refused_reports or not recent:
        return Evaluation(REFUSED_RULE, "reports", "ok", f"the collector accepts {signal.hostname}'s reports")
    summary = (f"the collector refused {signal.refused_reports} report(s) from {signal.hostname} as never "
               f"acceptable: {signal.last_refusal or 'no reason given'}; update the agent or look at its outbox")
    return Evaluation(REFUSED_RULE, "reports", "warning", summary, {
        "refused_reports": signal.refused_reports, "last_refusal": signal.last_refusal,
    })


OUTBOX_RULE = "heartbeat.outbox"


def outbox(signal: Heartbeat) -> Evaluation:
    """A warning for REFUSED_FOR after the agent found its outbox damaged and started a new one."""
    at = signal.outbox_warning_at
    if not signal.outbox_warning or at is None or signal.collected_at - at >= REFUSED_FOR:
        return Evaluation(OUTBOX_RULE, "outbox", "ok", f"{signal.hostname}'s outbox is sound")
    return Evaluation(OUTBOX_RULE, "outbox", "warning", f"{signal.hostname}: {signal.outbox_warning}",
                      {"outbox_warning": signal.outbox_warning, "at": at.isoformat()})


def evaluate_silence(
    hostname: str,
    last_seen: datetime,
    now: datetime,
    offline_after: timedelta,
    collector_up_since: datetime,
    grace: timedelta,
) -> Evaluation | None:
    """Offline when nothing arrived for `offline_after`; None while the collector itself is in its grace period.

    After the collector was down, agents' outboxes need time to drain, so nobody is declared offline
    until `grace` has passed since the collector came up.
    """
    if now - collector_up_since < grace:
        return None
    silent_for = now - last_seen
    if silent_for < offline_after:
        return Evaluation(RULE, SUBJECT, "ok", f"{hostname} is reporting")
    # The summary names the last heartbeat, not the silence so far, so repeated sweeps do not count as changes.
    return Evaluation(
        RULE, SUBJECT, "critical",
        f"{hostname} is offline: last heartbeat {last_seen.astimezone(UTC):%Y-%m-%d %H:%M} UTC",
        {"last_seen_at": last_seen.isoformat(), "silent_seconds": int(silent_for.total_seconds())},
    )


SITE_RULE = "heartbeat.site_offline"
SITE_SUBJECT = "site"


def evaluate_site(
    site: str, silent: list[tuple[str, datetime]], total: int, window: timedelta, min_devices: int = 3
) -> Evaluation:
    """One site-wide alert when most of a site's devices fell silent together (a power or internet outage).

    `silent` holds (hostname, last heartbeat) of the site's silent devices, `total` how many it has.
    """
    if total >= min_devices and len(silent) * 2 >= total:
        times = [seen for _, seen in silent]
        if max(times) - min(times) <= window:
            since = min(times).astimezone(UTC)
            return Evaluation(
                SITE_RULE, SITE_SUBJECT, "critical",
                f"{site}: {len(silent)} of {total} devices stopped reporting at {since:%H:%M} UTC "
                f"(power or internet outage?)",
                {"silent": sorted(host for host, _ in silent), "total": total}, scope="site",
            )
    return Evaluation(SITE_RULE, SITE_SUBJECT, "ok", f"{site}: devices are reporting", scope="site")


SPEC = RuleSpec(evaluate, alerts=(
    # One heartbeat proves the device is back; while it is offline its other alerts stay quiet.
    AlertRule(RULE, resolve_at_once=True, inhibits="device", subject=SUBJECT),
    # While most of a site is down (power, internet), its devices' own alerts stay quiet.
    AlertRule(SITE_RULE, resolve_at_once=True, inhibits="site", subject=SITE_SUBJECT),
    AlertRule(REFUSED_RULE),
    AlertRule(OUTBOX_RULE),
))
