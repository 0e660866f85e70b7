"""The security_center rule: protection off or stale, detections not remediated, blocked ones recorded, and a
burst of detections on one site as one site alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec, Status, thresholds
from collector.rules.pending_reboot import span
from shared.security_center import AntivirusProduct, Detection, SecurityCenter

KIND = "security_center"
PROTECTION_RULE = "security_center.protection"
DETECTION_RULE = "security_center.detection"
BURST_RULE = "security_center.burst"
BURST_SUBJECT = "detections-burst"
BLOCKED_EVENT = "malware_blocked"
BURST_WINDOW = timedelta(hours=1)
# A detection not seen in the device's recent reports is told as blocked only when this recent: an agent installed
# today must not fill this month's value report with last year's quarantine, nor a report after one that could
# not read detections tell old ones again.
NEW_DETECTION_AGE = timedelta(days=7)
# Earlier reports whose detections count as already told.
HISTORY = 4
THREATS_SHOWN = 3


@dataclass(frozen=True)
class Limits:
    """The client's `[rules.security_center]` settings."""

    # Signatures older than this many days are stale (Defender and ClamAV update several times a day).
    signature_warning_days: float = 3
    # This many detections on one site within an hour are one site alert.
    burst_detections: int = 3
    # A firewall that is off is a warning; false: it is not judged (a client whose router does the filtering).
    firewall_required: bool = True


def product_problems(product: AntivirusProduct, now: datetime, limits: Limits) -> list[str]:
    """What is wrong with one antivirus product, in words (empty: nothing)."""
    problems = []
    if product.enabled is False:
        problems.append(f"{product.name} is switched off")
    if product.real_time is False:
        problems.append(f"real-time protection of {product.name} is off")
    if product.up_to_date is False:
        problems.append(f"{product.name} says its signatures are out of date")
    if product.signatures_updated_at is not None:
        age = now - product.signatures_updated_at
        if age > timedelta(days=limits.signature_warning_days):
            problems.append(f"{product.name} signatures are {span(age)} old")
    return problems


def antivirus_evaluations(signal: SecurityCenter, now: datetime, limits: Limits) -> list[Evaluation]:
    """Each product's verdict; a product that is off while another one protects the device is fine (Windows
    turns Defender off when a third-party antivirus registers)."""
    healthy = [p for p in signal.antivirus if p.enabled and not product_problems(p, now, limits)]
    evaluations = []
    for product in signal.antivirus:
        subject = f"antivirus:{product.name}"
        details = product.model_dump(mode="json")
        problems = product_problems(product, now, limits)
        if product.enabled is None:
            why = f": {product.error}" if product.error else ""
            evaluations.append(Evaluation(PROTECTION_RULE, subject, "unknown",
                                          f"could not tell whether {product.name} is on{why}", details))
        elif problems and not (product.enabled is False and healthy):
            evaluations.append(Evaluation(PROTECTION_RULE, subject, "warning", "; ".join(problems), details))
        else:
            others = f" ({', '.join(p.name for p in healthy)} protects)" if problems else ""
            evaluations.append(Evaluation(PROTECTION_RULE, subject, "ok", f"{product.name} is fine{others}", details))
    if signal.platform == "windows":
        status: Status = "ok" if signal.antivirus else "warning"
        summary = "antivirus registered" if signal.antivirus else "no antivirus product is registered or running"
        evaluations.append(Evaluation(PROTECTION_RULE, "antivirus", status, summary))
    return evaluations


def switch_evaluations(signal: SecurityCenter, limits: Limits) -> list[Evaluation]:
    """Firewalls and OS protections: off is a warning, not known is unknown."""
    evaluations = []
    switches = [("firewall", f, limits.firewall_required) for f in signal.firewalls]
    switches += [("protection", p, True) for p in signal.protections]
    for what, item, judged in switches:
        subject = f"firewall:{item.name}" if what == "firewall" else item.name
        said = f" ({item.detail})" if item.detail else ""
        label = f"firewall {item.name}" if what == "firewall" else item.name
        details = item.model_dump(mode="json")
        if item.enabled is None:
            evaluations.append(Evaluation(PROTECTION_RULE, subject, "unknown", f"could not tell whether {label} "
                                          f"is on{said}", details))
        elif item.enabled or not judged:
            evaluations.append(Evaluation(PROTECTION_RULE, subject, "ok", f"{label} is on" if item.enabled
                                          else f"{label} is off (not required)", details))
        else:
            evaluations.append(Evaluation(PROTECTION_RULE, subject, "warning", f"{label} is off{said}", details))
    return evaluations


def protection_evaluations(signal: SecurityCenter, history: History, limits: Limits) -> list[Evaluation]:
    """Antivirus, firewalls and OS protections; a subject the device no longer has resolves as gone."""
    evaluations = antivirus_evaluations(signal, history.now, limits) + switch_evaluations(signal, limits)
    subjects = {e.subject for e in evaluations}
    previous = _previous(history)
    if previous is not None:
        before = antivirus_evaluations(previous, history.now, limits) + switch_evaluations(previous, limits)
        evaluations += [Evaluation(PROTECTION_RULE, e.subject, "ok", f"{e.subject} is no longer on the device",
                                   gone=True) for e in before if e.subject not in subjects]
    return evaluations


def describe(detection: Detection, hostname: str) -> str:
    """A detection in words: threat, where, on which device, under which user."""
    where = f" in {detection.path}" if detection.path else ""
    user = f" (user {detection.user})" if detection.user else ""
    return f"{detection.threat}{where} on {hostname}{user}"


def detection_evaluations(signal: SecurityCenter, history: History) -> list[Evaluation]:
    """A detection not remediated is critical until it is; a new blocked one is an event in the feed."""
    if signal.detections_error is not None:
        return [Evaluation(DETECTION_RULE, "detections", "unknown",
                           f"could not read the antivirus detections: {signal.detections_error}")]
    evaluations = [Evaluation(DETECTION_RULE, "detections", "ok", "detections read")]
    known = {d.id for s in history.previous if isinstance(s, SecurityCenter) for d in s.detections}
    for detection in signal.detections:
        subject = f"detection:{detection.id}"
        details = detection.model_dump(mode="json")
        if not detection.remediated:
            evaluations.append(Evaluation(DETECTION_RULE, subject, "critical",
                                          f"malware not remediated ({detection.action}): "
                                          f"{describe(detection, history.hostname)}", details))
            continue
        if detection.id not in known and (
            detection.detected_at is None or history.now - detection.detected_at <= NEW_DETECTION_AGE
        ):
            details = {**details, "event": BLOCKED_EVENT}
        evaluations.append(Evaluation(DETECTION_RULE, subject, "ok", f"blocked malware ({detection.action}): "
                                      f"{describe(detection, history.hostname)}", details, gone=True))
    previous = _previous(history)
    if previous is not None and previous.detections_error is None:
        current = {d.id for d in signal.detections}
        evaluations += [Evaluation(DETECTION_RULE, f"detection:{d.id}", "ok", "detection no longer listed",
                                   gone=True) for d in previous.detections if d.id not in current]
    return evaluations


def burst_evaluation(signal: SecurityCenter, history: History, limits: Limits) -> Evaluation:
    """The site's detections of the last hour, counted once each across its devices' reports."""
    since = history.now - BURST_WINDOW
    seen: dict[tuple[str, str], tuple[str, Detection]] = {}
    reports = [(history.agent_id, history.hostname, signal)]
    reports += [(r.agent_id, r.hostname, r.signal) for r in history.site if isinstance(r.signal, SecurityCenter)]
    for agent_id, hostname, report in reports:
        for detection in report.detections:
            if detection.detected_at is not None and since <= detection.detected_at <= history.now:
                seen.setdefault((agent_id, detection.id), (hostname, detection))
    hosts = sorted({hostname for hostname, _ in seen.values()})
    if len(seen) < limits.burst_detections:
        return Evaluation(BURST_RULE, BURST_SUBJECT, "ok", f"{len(seen)} detections on the site in the last hour",
                          scope="site")
    threats = sorted({d.threat for _, d in seen.values()})
    shown = ", ".join(threats[:THREATS_SHOWN]) + (f" and {len(threats) - THREATS_SHOWN} more"
                                                  if len(threats) > THREATS_SHOWN else "")
    active = any(not d.remediated for _, d in seen.values())
    summary = f"{len(seen)} malware detections on {len(hosts)} devices within an hour ({shown})"
    return Evaluation(BURST_RULE, BURST_SUBJECT, "critical" if active else "warning", summary,
                      {"detections": len(seen), "devices": hosts, "threats": threats}, scope="site")


def _previous(history: History) -> SecurityCenter | None:
    """The device's previous security_center report, if any."""
    return next((s for s in history.previous if isinstance(s, SecurityCenter)), None)


def evaluate(signal: SecurityCenter, history: History) -> list[Evaluation]:
    """Protection state, detections, and the site's burst of detections."""
    limits = thresholds(Limits, history.settings, KIND)
    return [
        *protection_evaluations(signal, history, limits),
        *detection_evaluations(signal, history),
        burst_evaluation(signal, history, limits),
    ]


def protection_sentence(c: Caught) -> str:
    """What a business owner reads for protection that was off or out of date."""
    done = "; it is back on" if c.outcome != "open" else ""
    if product := c.after_subject("antivirus:"):
        return f"The antivirus ({product}) on {c.device} was off or out of date{done}."
    if c.subject == "antivirus":
        return f"{c.device} had no antivirus running{'; it has one now' if done else ''}."
    if c.after_subject("firewall:"):
        return f"The firewall on {c.device} was switched off{done}."
    return f"A built-in security protection of {c.device} was switched off{done}."


def detection_sentence(c: Caught) -> str:
    """What a business owner reads for malware the antivirus found but did not remove."""
    threat = c.text("threat", "malware")
    if c.outcome != "open":
        return f"Malware ({threat}) found on {c.device} was removed."
    return f"Malware ({threat}) was found on {c.device} and had not been removed yet."


def burst_sentence(c: Caught) -> str:
    """What a business owner reads for many detections on one site at once."""
    done = "; the source was found and dealt with" if c.outcome != "open" else ""
    return f"Several devices at {c.site} detected malware within an hour{done}."


SPEC = RuleSpec(evaluate, history=HISTORY, site_hours=BURST_WINDOW.total_seconds() / 3600, alerts=(
    AlertRule(PROTECTION_RULE, action="turn the protection back on and look at why it went off",
              sentence=protection_sentence),
    AlertRule(DETECTION_RULE, action="remove the threat (full scan, quarantine) and find how it came in",
              sentence=detection_sentence),
    AlertRule(BURST_RULE, action="look for the common source (a shared drive, a USB stick, a mail) on the site",
              sentence=burst_sentence),
))
