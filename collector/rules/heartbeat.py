"""The heartbeat rule: a device is offline when its heartbeats stop, and online again when one arrives."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec
from collector.rules.expectations import Expectation
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
    expect: Expectation | None = None,
) -> Evaluation | None:
    """What a device's silence means for what it is; None while the collector itself is in its grace period.

    A server (or a device of no known class: `expect` None) silent for `offline_after` is critical at once.
    A workstation or laptop being off is normal: it is a warning only when it stayed off through the start
    of its client's latest business day, or for `expect.off_days` days.

    After the collector was down, agents' outboxes need time to drain, so nobody is declared offline
    until `grace` has passed since the collector came up.
    """
    if now - collector_up_since < grace:
        return None
    silent_for = now - last_seen
    if silent_for < offline_after:
        return Evaluation(RULE, SUBJECT, "ok", f"{hostname} is reporting")
    details = {"last_seen_at": last_seen.isoformat(), "silent_seconds": int(silent_for.total_seconds())}
    # Summaries name the last heartbeat, not the silence so far, so repeated sweeps do not count as changes.
    last = f"last heartbeat {last_seen.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    if expect is None or expect.always_on():
        return Evaluation(RULE, SUBJECT, "critical", f"{hostname} is offline: {last}", details)
    what = expect.device_class
    if silent_for >= timedelta(days=expect.off_days):
        return Evaluation(RULE, SUBJECT, "warning",
                          f"{hostname} ({what}) has been off for more than {expect.off_days} days: {last}",
                          {**details, "device_class": what})
    began = expect.hours.latest_start(now)
    # Missed only once the day's start is `offline_after` behind us: a PC switched on at 08:01 is not late.
    if began is not None and last_seen < began and now - began >= offline_after:
        return Evaluation(RULE, SUBJECT, "warning",
                          f"{hostname} ({what}) did not come on for business hours: {last}; check it is "
                          f"switched on and connected", {**details, "device_class": what,
                                                         "business_day_began": began.isoformat()})
    return Evaluation(RULE, SUBJECT, "ok", f"{hostname} ({what}) is switched off, which is normal for a {what}")


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


def offline_sentence(c: Caught) -> str:
    """What a business owner reads for a device that stopped reporting."""
    back = "; it is back online" if c.outcome != "open" else ""
    if c.critical:
        return f"{c.device} went offline (switched off or cut off from the network){back}."
    return f"{c.device} was not on during business hours{back}."


def site_sentence(c: Caught) -> str:
    """What a business owner reads for most of a site going silent at once."""
    silent, total = c.details.get("silent"), c.number("total")
    count = f"{len(silent)} of {total} devices" if isinstance(silent, list) and total else "Most devices"
    at = f" at {c.site}" if c.site else ""
    back = "; they are back online" if c.outcome != "open" else ""
    return f"{count}{at} went offline at once, most likely a power cut or an internet outage{back}."


def agent_sentence(c: Caught) -> str:
    """What a business owner reads for monitoring on a device that needed a repair (refused reports, outbox)."""
    fixed = "; it was repaired" if c.outcome != "open" else ""
    return f"The monitoring on {c.device} needed a repair to keep reporting{fixed}."


SPEC = RuleSpec(evaluate, alerts=(
    # One heartbeat proves the device is back; while it is offline its other alerts stay quiet.
    AlertRule(RULE, resolve_at_once=True, inhibits="device", subject=SUBJECT,
              action="check the device has power and network, then that the fieldpost agent service runs",
              sentence=offline_sentence),
    # While most of a site is down (power, internet), its devices' own alerts stay quiet.
    AlertRule(SITE_RULE, resolve_at_once=True, inhibits="site", subject=SITE_SUBJECT,
              action="call the site: power cut or internet outage?", sentence=site_sentence),
    AlertRule(REFUSED_RULE, action="update the agent, or look at its outbox", sentence=agent_sentence),
    AlertRule(OUTBOX_RULE, action="look at the agent's log and state directory (a damaged outbox was moved aside)",
              sentence=agent_sentence),
))
