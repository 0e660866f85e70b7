"""The printer_ip_conflict rule: correlates, per (site, segment, IP), which hardware addresses answered.

Pure: `correlate(new, recent, now, settings)` takes the new report and the site's recent reports from every
device (see `SiteReport`) and returns one evaluation per IP address the new report mentions, subject
`ip:<address>`. The evaluation describes the site, not the reporting device (`details["scope"] == "site"`).

Verdicts:

* critical "IP address conflict" when, within `window_minutes` (15), two hardware addresses answered one
  probe, or one device saw an A->B->A flip-flop, or different addresses were seen and this is not a single
  one-way change; or when Windows logged a Tcpip conflict event within `event_window_minutes` (60).
* warning "printer at <ip> changed identity" when a printer queue's address is now answered by a hardware
  address never seen for it before, which replaced the previous one, within `identity_hold_hours` (24).
* ok otherwise: only one hardware address answered during the window.

Not conflicts: VRRP (00:00:5e:00:01:xx, 00:00:5e:00:02:xx) and HSRP (00:00:0c:07:ac:xx, 00:00:0c:9f:fx:xx)
virtual-router addresses (every answer for such an IP is left out), proxy-ARP devices (a MAC answering for
`proxy_arp_min_addresses` (3) or more IPs within the window is left out), 0.0.0.0, and a single one-way change
of a non-printer address (a DHCP lease that moved). Stale neighbour-table entries are leftovers of the past:
they do not count as "still answering" after a change.

`recent` should reach back `identity_hold_hours` so that an identity change can be seen.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import netaddr

from collector.rules import AlertRule, Evaluation, History, RuleSpec, SiteReport, thresholds
from shared.printer_ip_conflict import PrinterIpConflict

RULE = "printer_ip_conflict"
# The site's reports this far back reach an identity change (identity_hold_hours) and every conflict window.
SITE_HOURS = 24.0
VIRTUAL_ROUTER_PREFIXES = ("00:00:5e:00:01:", "00:00:5e:00:02:", "00:00:0c:07:ac:", "00:00:0c:9f:f")
STALE_STATES = {"stale"}

Source = Literal["probe", "neighbour", "event"]


@dataclass(frozen=True)
class Settings:
    """The configurable limits of this rule (see the module docstring)."""

    window_minutes: float = 15.0
    event_window_minutes: float = 60.0
    proxy_arp_min_addresses: int = 3
    identity_hold_hours: float = 24.0


@dataclass(frozen=True)
class Sighting:
    """One hardware address seen claiming one IP address, by one device, at one moment."""

    ip: str
    mac: str
    at: datetime
    hostname: str
    source: Source
    fresh: bool
    probe: tuple[str, datetime] | None = None  # (agent, report time) of the probe that heard it


@lru_cache(maxsize=4096)
def vendor(mac: str) -> str | None:
    """The organisation registered for the MAC's OUI (IEEE list shipped with netaddr), if any."""
    try:
        return str(netaddr.EUI(mac).oui.registration().org)
    except (netaddr.NotRegisteredError, netaddr.AddrFormatError):
        return None


def is_virtual_router(mac: str) -> bool:
    """A VRRP or HSRP virtual-router MAC: several routers share one IP by design."""
    return mac.startswith(VIRTUAL_ROUTER_PREFIXES)


def _gateway_macs(signal: PrinterIpConflict) -> set[str]:
    gateway = signal.segment.gateway_ip
    macs = {a.mac for p in signal.probes if p.ip == gateway for a in p.answers}
    return macs | ({signal.segment.gateway_mac} if signal.segment.gateway_mac else set())


def same_segment(a: PrinterIpConflict, b: PrinterIpConflict) -> bool:
    """Same subnet and gateway, and the gateway MACs overlap where both know any (a VRRP pair has several)."""
    if (a.segment.subnet, a.segment.gateway_ip) != (b.segment.subnet, b.segment.gateway_ip):
        return False
    macs_a, macs_b = _gateway_macs(a), _gateway_macs(b)
    return not macs_a or not macs_b or bool(macs_a & macs_b)


def sightings_of(observation: SiteReport) -> list[Sighting]:
    """Every (IP, MAC) claim in one report; 0.0.0.0 and group (multicast) MACs are no claims."""
    signal, host = observation.signal, observation.hostname
    found = [
        Sighting(p.ip, a.mac, a.last_seen, host, "probe", True, (observation.agent_id, signal.collected_at))
        for p in signal.probes
        for a in p.answers
    ]
    found += [
        Sighting(n.ip, n.mac, signal.collected_at, host, "neighbour", n.state not in STALE_STATES)
        for n in signal.neighbours
    ]
    found += [Sighting(e.ip, e.mac, e.at, host, "event", True) for e in signal.events]
    return [s for s in found if s.ip != "0.0.0.0" and not int(s.mac[:2], 16) & 1]


def _flip_flop(sightings: list[Sighting]) -> str | None:
    """'A and B took turns, seen by HOST' when one device's own sightings went back to an earlier MAC.

    Answers heard together in one probe are a conflict of their own, not a sequence, so they are left out.
    """
    crowded = _crowded_probes(sightings)
    by_host: dict[str, list[str]] = {}
    for s in sorted(sightings, key=lambda s: s.at):
        if s.fresh and s.source != "event" and s.probe not in crowded:
            macs = by_host.setdefault(s.hostname, [])
            if not macs or macs[-1] != s.mac:
                macs.append(s.mac)
    for host, runs in by_host.items():
        for i, mac in enumerate(runs):
            if mac in runs[:i]:
                return f"{mac} and {runs[i - 1]} took turns answering, seen by {host}"
    return None


def _crowded_probes(sightings: list[Sighting]) -> dict[tuple[str, datetime], set[str]]:
    """The probes that heard more than one MAC, with those MACs."""
    probes: dict[tuple[str, datetime], set[str]] = {}
    for s in sightings:
        if s.probe:
            probes.setdefault(s.probe, set()).add(s.mac)
    return {key: macs for key, macs in probes.items() if len(macs) > 1}


def _one_way(sightings: list[Sighting]) -> bool:
    """Two MACs where the older one was no longer seen fresh once the newer one appeared (a lease moved)."""
    macs = {s.mac for s in sightings}
    if len(macs) != 2:
        return False
    fresh = [s for s in sightings if s.fresh] or sightings
    newest = max(fresh, key=lambda s: s.at).mac
    first_new = min(s.at for s in sightings if s.mac == newest)
    return not any(s.mac != newest and s.at > first_new for s in fresh)


def conflict_reasons(ip_sightings: list[Sighting], now: datetime, limits: Settings) -> list[str]:
    """Why this IP is in conflict now; empty when it is not."""
    window = now - timedelta(minutes=limits.window_minutes)
    recent = [s for s in ip_sightings if s.source != "event" and s.at >= window]
    reasons = []
    crowded = _crowded_probes(recent)
    if crowded:
        key, macs = max(crowded.items(), key=lambda item: item[0][1])
        host = next(s.hostname for s in recent if s.probe == key)
        reasons.append(f"{len(macs)} hardware addresses answered one ARP probe from {host}")
    if flip := _flip_flop(recent):
        reasons.append(flip)
    macs = {s.mac for s in recent}
    if not reasons and len(macs) > 1 and not _one_way(recent):
        reasons.append(f"{len(macs)} hardware addresses answered within {limits.window_minutes:g} minutes")
    event_window = now - timedelta(minutes=limits.event_window_minutes)
    reasons += sorted(
        {
            f"Windows on {s.hostname} logged an address conflict with {s.mac}"
            for s in ip_sightings
            if s.source == "event" and s.at >= event_window
        }
    )
    return reasons


def identity_change(ip_sightings: list[Sighting], now: datetime, limits: Settings) -> tuple[str, str] | None:
    """(old MAC, new MAC) when a never-seen MAC took over from the previous one within the hold time."""
    fresh = sorted((s for s in ip_sightings if s.fresh and s.source != "event"), key=lambda s: s.at)
    if not fresh:
        return None
    new = fresh[-1].mac
    first_new = min(s.at for s in fresh if s.mac == new)
    before = [s for s in fresh if s.at < first_new]
    if not before or now - first_new > timedelta(hours=limits.identity_hold_hours):
        return None
    if _crowded_probes(fresh) or any(s.mac != new and s.at >= first_new for s in fresh):
        return None  # answers overlapped: a conflict (now or earlier), not a replacement
    return before[-1].mac, new


def _label(mac: str) -> str:
    name = vendor(mac)
    return f"{mac} ({name})" if name else mac


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _printer_queues(ip: str, observations: Iterable[SiteReport]) -> list[dict[str, str]]:
    """Each (device, queue) that prints to `ip`, newest report per device."""
    newest: dict[str, SiteReport] = {}
    for obs in observations:
        if obs.agent_id not in newest or obs.at > newest[obs.agent_id].at:
            newest[obs.agent_id] = obs
    return [
        {"hostname": obs.hostname, "queue": q.name}
        for obs in sorted(newest.values(), key=lambda o: o.hostname)
        for q in obs.signal.queues
        if ip in q.addresses
    ]


def _details(
    ip: str, sightings: list[Sighting], queues: list[dict[str, str]], segment: str
) -> dict[str, Any]:
    macs: dict[str, list[Sighting]] = {}
    for s in sightings:
        macs.setdefault(s.mac, []).append(s)
    return {
        "scope": "site",
        "ip": ip,
        "segment": segment,
        "macs": [
            {
                "mac": mac,
                "vendor": vendor(mac),
                "seen_by": sorted({s.hostname for s in seen}),
                "first_seen": min(s.at for s in seen).isoformat(),
                "last_seen": max(s.at for s in seen).isoformat(),
            }
            for mac, seen in sorted(macs.items())
        ],
        "queues": queues,
        "pcs": sorted({q["hostname"] for q in queues}),
    }


def _suppressed(sightings: list[Sighting], now: datetime, limits: Settings) -> list[Sighting]:
    """The sightings that remain once virtual-router IPs and proxy-ARP MACs are left out."""
    virtual_ips = {s.ip for s in sightings if is_virtual_router(s.mac)}
    window = now - timedelta(minutes=limits.window_minutes)
    ips_per_mac: dict[str, set[str]] = {}
    for s in sightings:
        if s.at >= window:
            ips_per_mac.setdefault(s.mac, set()).add(s.ip)
    proxies = {mac for mac, ips in ips_per_mac.items() if len(ips) >= limits.proxy_arp_min_addresses}
    return [s for s in sightings if s.ip not in virtual_ips and s.mac not in proxies]


def _ips_of(signal: PrinterIpConflict) -> set[str]:
    ips = {p.ip for p in signal.probes} | {n.ip for n in signal.neighbours} | {e.ip for e in signal.events}
    ips |= {a for q in signal.queues for a in q.addresses}
    return {ip for ip in ips if ip != "0.0.0.0"}


def correlate(
    new: SiteReport,
    recent: Sequence[SiteReport],
    now: datetime,
    settings: Mapping[str, Any] | None = None,
) -> list[Evaluation]:
    """Evaluations for every IP the new report mentions, judged on all the site's reports of its segment.

    `recent` holds the site's `printer_ip_conflict` reports from all devices (it may include `new`);
    `settings` is the client's rule settings (the `printer_ip_conflict` section is read).
    """
    limits = thresholds(Settings, settings or {}, RULE)
    unique = {(o.agent_id, o.signal.collected_at): o for o in [*recent, new]}
    observations = [o for o in unique.values() if same_segment(o.signal, new.signal)]
    sightings = _suppressed([s for o in observations for s in sightings_of(o)], now, limits)
    by_ip: dict[str, list[Sighting]] = {}
    for s in sightings:
        by_ip.setdefault(s.ip, []).append(s)
    evaluations = []
    for ip in sorted(_ips_of(new.signal), key=ipaddress.IPv4Address):
        evaluations.append(
            _evaluate_ip(ip, by_ip.get(ip, []), observations, now, limits, new.signal.segment.key)
        )
    return evaluations


def _evaluate_ip(
    ip: str,
    sightings: list[Sighting],
    observations: list[SiteReport],
    now: datetime,
    limits: Settings,
    segment: str,
) -> Evaluation:
    subject = f"ip:{ip}"
    queues = _printer_queues(ip, observations)
    where = "; queues: " + _join([f"{q['queue']} on {q['hostname']}" for q in queues]) if queues else ""
    reasons = conflict_reasons(sightings, now, limits)
    if reasons:
        window = now - timedelta(minutes=max(limits.window_minutes, limits.event_window_minutes))
        involved = [s for s in sightings if s.at >= window]
        labels = [_label(m) for m in sorted({s.mac for s in involved})]
        details = {**_details(ip, involved, queues, segment), "reasons": reasons}
        answer = "both answer" if len(labels) == 2 else "answer" if len(labels) > 2 else "claims it"
        summary = f"IP address conflict at {ip}: {_join(labels)} {answer}{where} ({'; '.join(reasons)})"
        return Evaluation(RULE, subject, "critical", summary, details)
    changed = identity_change(sightings, now, limits) if queues else None
    if changed:
        old, new = changed
        details = {**_details(ip, sightings, queues, segment), "previous_mac": old, "current_mac": new}
        summary = f"printer at {ip} changed identity: was {_label(old)}, now {_label(new)}{where}"
        return Evaluation(RULE, subject, "warning", summary, details)
    return Evaluation(
        RULE,
        subject,
        "ok",
        f"one hardware address answers for {ip}",
        _details(ip, sightings, queues, segment),
    )


def evaluate(signal: PrinterIpConflict, history: History) -> list[Evaluation]:
    """Correlate the new report with the site's recent reports from every device; one alert per IP and site."""
    new = SiteReport(history.agent_id, history.hostname, signal.collected_at, signal)
    return [replace(e, scope="site") for e in correlate(new, history.site, history.now, history.settings)]


SPEC = RuleSpec(evaluate, site_hours=SITE_HOURS, alerts=(AlertRule(RULE),))
