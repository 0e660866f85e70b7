"""The reachability rule: a device without an agent is judged from every vantage point of its site.

Unreachable from every agent that probed it recently → one site alert, its severity by the device's kind.
Unreachable from some agents while another reaches it → their network, not the device: no alert. An agent that
could not look (no ICMP socket, no route) is no vantage point. A site whose agents are all silent sends no
reports, so nothing is judged here: the site-offline alert (heartbeat) speaks for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec, Status, thresholds
from shared.reachability import ProbeResult, Reachability

KIND = "reachability"
RULE = "reachability"
CERTIFICATE_RULE = "reachability.certificate"
# A vantage point's report counts this long: a few of its runs (every five minutes by default).
WINDOW = timedelta(minutes=30)
# Losing one of these cuts the site off or loses its data; the others are one device among several.
CRITICAL_KINDS = frozenset({"camera_recorder", "nas", "router"})
KIND_WORDS = {"camera_recorder": "camera recorder", "camera": "camera", "nas": "NAS", "switch": "switch",
              "access_point": "access point", "printer": "printer", "ups": "UPS", "router": "router"}


@dataclass(frozen=True)
class Limits:
    """The client's `[rules.reachability]` settings."""

    # The time zone a device's expected hours are read in where the client has no time zone of its own.
    timezone: str = "UTC"


def severity(kind: str) -> Status:
    """How bad it is that a device of this kind answers nobody."""
    return "critical" if kind in CRITICAL_KINDS else "warning"


def subject(name: str) -> str:
    """The alert's subject for a declared device."""
    return f"device:{name}"


def within_hours(hours: str | None, now: datetime, timezone: str) -> bool:
    """Whether `now` falls in the device's expected hours (HH:MM-HH:MM, local to `timezone`; None: always)."""
    if hours is None:
        return True
    start, end = (time.fromisoformat(part) for part in hours.split("-"))
    local = now.astimezone(ZoneInfo(timezone)).time()
    return start <= local < end if start <= end else local >= start or local < end


def vantage_points(signal: Reachability, history: History) -> dict[str, tuple[str, Reachability]]:
    """Each agent's newest report of the window the site's history holds (this agent's is `signal`), by agent
    id, with its hostname."""
    newest: dict[str, tuple[datetime, str, Reachability]] = {}
    for report in history.site:
        kept = newest.get(report.agent_id)
        if isinstance(report.signal, Reachability) and (kept is None or report.at > kept[0]):
            newest[report.agent_id] = (report.at, report.hostname, report.signal)
    points = {agent_id: (hostname, found) for agent_id, (_, hostname, found) in newest.items()}
    points[history.agent_id] = (history.hostname, signal)
    return points


def judge(result: ProbeResult, points: dict[str, tuple[str, Reachability]], history: History,
          limits: Limits) -> Evaluation:
    """One declared device, from every vantage point that looked at it."""
    seen: dict[str, ProbeResult] = {}
    for hostname, report in points.values():
        found = next((r for r in report.results if r.target.name == result.target.name), None)
        if found is not None and found.state != "could_not_look":
            seen[hostname] = found
    up = sorted(host for host, r in seen.items() if r.state == "up")
    down = sorted(host for host, r in seen.items() if r.state == "down")
    target = result.target
    what = f"{target.name} ({KIND_WORDS[target.kind]}, {target.address})"
    details = {"name": target.name, "address": target.address, "kind": target.kind, "how": result.how,
               "reached_from": up, "unreachable_from": down}
    if not seen:
        return Evaluation(RULE, subject(target.name), "unknown",
                          f"{what}: no device of the site could probe it ({result.error or 'could not look'})",
                          details, scope="site")
    if up:
        theirs = f"; not from {', '.join(down)} (their network, not the device)" if down else ""
        return Evaluation(RULE, subject(target.name), "ok", f"{what} answers {', '.join(up)}{theirs}", details,
                          scope="site")
    if not within_hours(target.hours, history.now, history.client_zone or limits.timezone):
        return Evaluation(RULE, subject(target.name), "ok", f"{what} does not answer, outside its hours "
                          f"({target.hours})",
                          details, scope="site")
    errors = sorted({r.error for r in seen.values() if r.error})
    why = f": {errors[0]}" if errors else ""
    return Evaluation(RULE, subject(target.name), severity(target.kind),
                      f"{what} answers none of the {len(down)} devices that probed it{why}",
                      {**details, "error": errors[0] if errors else None}, scope="site")


def certificate(result: ProbeResult) -> Evaluation | None:
    """A TLS certificate expiring within the declared days: a warning (expired: critical)."""
    target = result.target
    if target.tls_days is None or result.tls_days_left is None:
        return None
    status: Status = "ok"
    if result.tls_days_left <= 0:
        status = "critical"
    elif result.tls_days_left < target.tls_days:
        status = "warning"
    return Evaluation(CERTIFICATE_RULE, f"certificate:{target.name}", status,
                      f"the certificate of {target.name} ({target.address}) expires in "
                      f"{result.tls_days_left:.0f} days", {"name": target.name, "address": target.address,
                                                            "days_left": result.tls_days_left}, scope="site")


def evaluate(signal: Reachability, history: History) -> list[Evaluation]:
    """Each declared device as the site sees it; a device no longer declared resolves as gone."""
    limits = thresholds(Limits, history.settings, KIND)
    points = vantage_points(signal, history)
    evaluations = []
    for result in signal.results:
        evaluations.append(judge(result, points, history, limits))
        if (checked := certificate(result)) is not None:
            evaluations.append(checked)
    names = {r.target.name for r in signal.results}
    previous = next((s for s in history.previous if isinstance(s, Reachability)), None)
    if previous is not None and previous.config_version < signal.config_version:
        for gone in (r.target.name for r in previous.results if r.target.name not in names):
            evaluations += [Evaluation(rule, f"{prefix}{gone}", "ok", f"{gone} is no longer watched",
                                       scope="site", gone=True)
                            for rule, prefix in ((RULE, "device:"), (CERTIFICATE_RULE, "certificate:"))]
    return evaluations


def device_sentence(c: Caught) -> str:
    """What a business owner reads for a device on the network that stopped answering."""
    name = c.text("name", "a network device")
    kind = KIND_WORDS.get(c.text("kind"), "device")
    if c.outcome != "open":
        return f"The {kind} \u201c{name}\u201d at {c.site} stopped answering on the network; it is back."
    return f"The {kind} \u201c{name}\u201d at {c.site} stopped answering on the network."


def certificate_sentence(c: Caught) -> str:
    """What a business owner reads for a certificate about to expire."""
    done = "; it was renewed" if c.outcome != "open" else ""
    return (f"The security certificate of \u201c{c.text('name', 'a network device')}\u201d at {c.site} was about "
            f"to expire{done}.")


SPEC = RuleSpec(evaluate, history=1, site_hours=WINDOW.total_seconds() / 3600, client_zone=True, alerts=(
    AlertRule(RULE, action="check the device's power and network cable, then the switch port it hangs on",
              sentence=device_sentence),
    AlertRule(CERTIFICATE_RULE, action="renew the device's certificate", sentence=certificate_sentence),
))
