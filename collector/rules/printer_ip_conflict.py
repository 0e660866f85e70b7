"""The printer_ip_conflict rule: correlates, per (site, segment, IP), which hardware addresses answered.

Pure: `correlate(new, recent, now, settings)` takes the new report and the site's recent reports from every
device (see `SiteReport`) and returns one evaluation per IP address the new report mentions, subject
`ip:<address>`. The evaluation describes the site, not the reporting device (`details["scope"] == "site"`).

A vantage point is one device's interface. Only two hardware addresses seen from ONE vantage point prove a
conflict: PCs that disagree may simply stand on different sides of a Wi-Fi extender doing MAC-NAT.

Verdicts:

* critical "IP address conflict" when one vantage point saw two hardware addresses in one report (a probe that
  heard both, Windows re-resolving the address during one check, a probe and the table disagreeing), within
  `window_minutes` (60, several check intervals); or when one vantage point saw the addresses take turns
  (A, B, A) with the last turn within the window, the earlier ones up to `flip_flop_hours` (24) back for
  probed addresses (printers, gateway, configured ones; other addresses only within the window, because a
  DHCP pool hands them round); or when Windows logged a Tcpip conflict event within `event_window_minutes`.
* warning "one device with two network ports" when those two addresses are siblings: same vendor block and at
  most `adjacent_mac_distance` (8) apart, as the two NICs of a NAS answering for one address (ARP flux).
* warning "PCs disagree about <ip>" when, within the window, different vantage points saw different hardware
  addresses but none saw two; the message names the likely cause (MAC-NAT extender, proxy ARP, two ports).
* warning "printer at <ip> changed identity" when a printer queue's address is now answered by a hardware
  address never seen for it before, which replaced the previous one, within `identity_hold_hours` (24).
* ok otherwise.

Not counted at all: VRRP (00:00:5e:00:01:xx, 00:00:5e:00:02:xx), HSRP (00:00:0c:07:ac:xx, 00:00:0c:9f:fx:xx)
and GLBP (00:07:b4:00:xx:yy) virtual-router addresses (every answer for such an IP is left out), proxy-ARP
devices (a MAC answering for `proxy_arp_min_addresses` (3) or more IPs within the window is left out),
0.0.0.0, and neighbour entries outside the report's own segment: another subnet, another interface, or a
virtual network's bridge (libvirt virbr*, Docker docker0/br-*, VirtualBox vboxnet*, WSL's vEthernet, ...),
whose addresses every PC reuses privately. A single one-way change of an address is no conflict (a DHCP
lease that moved; stale neighbour-table entries are leftovers of the past, not "still answering").

`recent` should reach back `identity_hold_hours` and `flip_flop_hours` (SITE_HOURS).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

import netaddr

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec, SiteReport, thresholds
from shared.printer_ip_conflict import NeighbourEntry, PrinterIpConflict, SegmentKey

RULE = "printer_ip_conflict"
# The site's reports this far back reach an identity change, a flip-flop and every conflict window.
SITE_HOURS = 24.0
# First-hop redundancy: VRRP (IPv4, IPv6), HSRP (v1, v2) and GLBP (0007.b400.xxyy: group xx, forwarder yy).
VIRTUAL_ROUTER_PREFIXES = (
    "00:00:5e:00:01:",
    "00:00:5e:00:02:",
    "00:00:0c:07:ac:",
    "00:00:0c:9f:f",
    "00:07:b4:00:",
)
# Host-internal networks (libvirt, Docker, VirtualBox host-only, VMware, LXC/LXD, Kubernetes, WSL and Hyper-V's
# Default Switch): each PC has its own behind these names, so their entries are never compared across PCs.
# A Hyper-V external switch ("vEthernet (External)") is the real LAN and is not in the list.
VIRTUAL_INTERFACES = (
    "virbr",
    "docker",
    "br-",
    "vboxnet",
    "vmnet",
    "veth",
    "lxcbr",
    "lxdbr",
    "cni",
    "flannel",
    "vEthernet (WSL",
    "vEthernet (Default Switch)",
)
# Entries whose MAC the OS no longer vouches for: stale, or being re-checked (delay, probe) before it is dropped.
UNCONFIRMED_STATES = {"stale", "delay", "probe"}

# "event": the other system named in a Windows conflict event; "own": the MAC of the PC that logged it.
Source = Literal["probe", "neighbour", "event", "own"]
LOOKS = ("probe", "neighbour")  # what the agent saw answering, as against what the OS told it
EXTENDER = (
    "likely a Wi-Fi extender or repeater doing MAC-NAT (PCs behind it see its own hardware address for every "
    "device beyond it) or a proxy-ARP device between them; no single PC saw two addresses"
)
TWO_PORTS = (
    "likely one device with two network ports answering for it (same vendor, adjacent hardware addresses), "
    "such as a NAS with two NICs on one LAN"
)


@dataclass(frozen=True)
class Settings:
    """The configurable limits of this rule (see the module docstring)."""

    window_minutes: float = 60.0
    flip_flop_hours: float = 24.0
    event_window_minutes: float = 60.0
    proxy_arp_min_addresses: int = 3
    identity_hold_hours: float = 24.0
    adjacent_mac_distance: int = 8


@dataclass(frozen=True)
class Sighting:
    """One hardware address seen claiming one IP address, by one device, at one moment."""

    ip: str
    mac: str
    at: datetime
    hostname: str
    source: Source
    fresh: bool
    method: str | None = None  # for a probe answer: how the probe looked (arp-raw, neighbour-table)
    peer: str | None = None  # for an event: the logging PC's own MAC, the other claimant
    report: tuple[str, datetime] | None = None  # (agent, report time) of the report that holds it
    interface: str | None = None

    @property
    def vantage(self) -> str:
        """The device and interface that saw it, as the messages name it."""
        return f"{self.hostname} ({self.interface})" if self.interface else self.hostname


@lru_cache(maxsize=4096)
def vendor(mac: str) -> str | None:
    """The organisation registered for the MAC's OUI (IEEE list shipped with netaddr), if any."""
    try:
        return str(netaddr.EUI(mac).oui.registration().org)
    except (netaddr.NotRegisteredError, netaddr.AddrFormatError):
        return None


def is_virtual_router(mac: str) -> bool:
    """A VRRP, HSRP or GLBP virtual-router MAC: several routers share one IP by design."""
    return mac.startswith(VIRTUAL_ROUTER_PREFIXES)


def siblings(macs: Iterable[str], distance: int) -> bool:
    """Two or more MACs of one vendor block lying within `distance` of each other: one device's ports."""
    found = sorted(set(macs))
    if len(found) < 2 or len({m[:8] for m in found}) != 1:
        return False
    values = [int(m.replace(":", ""), 16) for m in found]
    return values[-1] - values[0] <= distance


def on_segment(interface: str | None, segment: SegmentKey) -> bool:
    """Whether what was seen on `interface` was seen on the report's segment (and not on a virtual network)."""
    if segment.interface and interface:
        return interface == segment.interface
    return not (interface or "").startswith(VIRTUAL_INTERFACES)


def counted(entry: NeighbourEntry, segment: SegmentKey) -> bool:
    """Whether a neighbour entry belongs to the report's segment: its subnet and its interface."""
    if segment.subnet and ipaddress.IPv4Address(entry.ip) not in ipaddress.IPv4Network(segment.subnet):
        return False
    return on_segment(entry.interface, segment)


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
    """Every (IP, MAC) claim in one report that counts; 0.0.0.0 and group (multicast) MACs are no claims."""
    signal, host = observation.signal, observation.hostname
    report, interface = (observation.agent_id, signal.collected_at), signal.segment.interface
    found = [
        Sighting(p.ip, a.mac, a.last_seen, host, "probe", True, method=p.method, report=report, interface=interface)
        for p in signal.probes
        if on_segment(p.interface, signal.segment)
        for a in p.answers
    ]
    found += [
        Sighting(
            n.ip, n.mac, signal.collected_at, host, "neighbour", n.state not in UNCONFIRMED_STATES, report=report,
            interface=interface,
        )
        for n in signal.neighbours
        if counted(n, signal.segment)
    ]
    found += [
        Sighting(e.ip, e.mac, e.at, host, "event", True, peer=e.own_mac, interface=interface) for e in signal.events
    ]
    # The PC that logged the conflict is the other claimant.
    found += [
        Sighting(e.ip, e.own_mac, e.at, host, "own", True, interface=interface) for e in signal.events if e.own_mac
    ]
    return [s for s in found if s.ip != "0.0.0.0" and not int(s.mac[:2], 16) & 1]


def _looks(sightings: Iterable[Sighting]) -> list[Sighting]:
    """The fresh sightings of something answering (not OS events, not stale entries), oldest first."""
    return sorted((s for s in sightings if s.fresh and s.source in LOOKS), key=lambda s: s.at)


def _crowded_reports(sightings: Iterable[Sighting]) -> dict[tuple[str, datetime], list[Sighting]]:
    """The reports in which one vantage point saw more than one MAC at once, with those sightings."""
    reports: dict[tuple[str, datetime], list[Sighting]] = {}
    for s in _looks(sightings):
        if s.report:
            reports.setdefault(s.report, []).append(s)
    return {key: seen for key, seen in reports.items() if len({s.mac for s in seen}) > 1}


def _at_once(seen: list[Sighting]) -> str:
    """Why one report's sightings are two addresses at once, in the words of how they were seen."""
    macs, where = len({s.mac for s in seen}), seen[0].vantage
    methods = {s.method for s in seen}
    if methods == {"arp-raw"}:
        return f"{macs} hardware addresses answered one ARP probe from {where}"
    if methods == {"neighbour-table"}:
        return f"{macs} hardware addresses answered while {where} re-resolved the address during one check"
    return f"{where} saw {macs} hardware addresses in one check (its probe and its neighbour table differ)"


def _flip_flop(sightings: list[Sighting], since: datetime) -> tuple[str, set[str]] | None:
    """('A and B took turns, seen by X', {A, B}) when one vantage point went back to an earlier MAC at or
    after `since`. Answers seen together in one report are a conflict of their own, not a sequence."""
    crowded = _crowded_reports(sightings)
    runs: dict[str, list[tuple[str, datetime]]] = {}
    for s in _looks(sightings):
        if s.report not in crowded:
            turns = runs.setdefault(s.vantage, [])
            if not turns or turns[-1][0] != s.mac:
                turns.append((s.mac, s.at))
    for vantage, turns in runs.items():
        for i, (mac, at) in enumerate(turns):
            if at >= since and mac in {m for m, _ in turns[:i]}:
                previous = turns[i - 1][0]
                return f"{mac} and {previous} took turns answering, seen by {vantage}", {mac, previous}
    return None


def _one_way(sightings: list[Sighting]) -> bool:
    """Two MACs where the older one was no longer seen fresh once the newer one appeared (a lease moved)."""
    macs = {s.mac for s in sightings}
    if len(macs) != 2:
        return False
    fresh = [s for s in sightings if s.fresh] or sightings
    newest = max(fresh, key=lambda s: s.at).mac
    first_new = min(s.at for s in sightings if s.mac == newest)
    return not any(s.mac != newest and s.at > first_new for s in fresh)


@dataclass(frozen=True)
class Finding:
    """What the sightings of one IP show: a status with its reasons, and for a warning the likely cause."""

    status: Literal["ok", "warning", "critical"]
    reasons: tuple[str, ...] = ()
    cause: str | None = None
    views: tuple[tuple[str, str], ...] = ()  # (vantage point, MAC it sees) where PCs disagree
    macs: frozenset[str] = frozenset()  # the MACs one vantage point saw, however long ago


def judge(ip_sightings: list[Sighting], now: datetime, limits: Settings, probed: bool) -> Finding:
    """Whether this IP is in conflict now: critical needs two MACs from one vantage point (or the OS's word)."""
    window = now - timedelta(minutes=limits.window_minutes)
    lookback = now - timedelta(hours=limits.flip_flop_hours) if probed else window
    recent = [s for s in ip_sightings if s.source in LOOKS and s.at >= window]
    one_vantage: list[tuple[str, set[str]]] = []
    crowded = _crowded_reports(recent)
    if crowded:
        key = max(crowded, key=lambda k: k[1])
        one_vantage.append((_at_once(crowded[key]), {s.mac for s in crowded[key]}))
    flip = _flip_flop([s for s in ip_sightings if s.source in LOOKS and s.at >= lookback], window)
    if flip:
        one_vantage.append(flip)
    event_window = now - timedelta(minutes=limits.event_window_minutes)
    events = sorted(
        {
            f"Windows on {e.hostname} logged an address conflict {_between(e)}"
            for e in ip_sightings
            if e.source == "event" and e.at >= event_window
        }
    )
    ports = [reason for reason, macs in one_vantage if siblings(macs, limits.adjacent_mac_distance)]
    conflicts = [reason for reason, macs in one_vantage if reason not in ports]
    seen = frozenset(mac for _, macs in one_vantage for mac in macs)
    if conflicts or events:
        return Finding("critical", tuple(conflicts + events), macs=seen)
    if ports:
        return Finding("warning", tuple(ports), TWO_PORTS, macs=seen)
    fresh = _looks(recent)
    macs = {s.mac for s in fresh}
    if len(macs) > 1 and not _one_way(recent):
        latest = {s.vantage: s.mac for s in fresh}  # oldest first, so the newest wins
        cause = TWO_PORTS if siblings(macs, limits.adjacent_mac_distance) else EXTENDER
        reason = f"{len(macs)} hardware addresses answered within {limits.window_minutes:g} minutes, each PC saw one"
        return Finding("warning", (reason,), cause, tuple(sorted(latest.items())))
    return Finding("ok")


def _between(event: Sighting) -> str:
    """The two claimants of a Windows conflict event, the PC's own MAC first where it is known."""
    return f"between its own {event.peer} and {event.mac}" if event.peer else f"with {event.mac}"


def identity_change(ip_sightings: list[Sighting], now: datetime, limits: Settings) -> tuple[str, str] | None:
    """(old MAC, new MAC) when a never-seen MAC took over from the previous one within the hold time."""
    fresh = _looks(ip_sightings)
    if not fresh:
        return None
    new = fresh[-1].mac
    first_new = min(s.at for s in fresh if s.mac == new)
    before = [s for s in fresh if s.at < first_new]
    if not before or now - first_new > timedelta(hours=limits.identity_hold_hours):
        return None
    if _crowded_reports(fresh) or any(s.mac != new and s.at >= first_new for s in fresh):
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
    ips = {p.ip for p in signal.probes if on_segment(p.interface, signal.segment)} | {e.ip for e in signal.events}
    ips |= {n.ip for n in signal.neighbours if counted(n, signal.segment)}
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
    probed = {p.ip for o in observations for p in o.signal.probes}
    by_ip: dict[str, list[Sighting]] = {}
    for s in sightings:
        by_ip.setdefault(s.ip, []).append(s)
    evaluations = []
    for ip in sorted(_ips_of(new.signal), key=ipaddress.IPv4Address):
        finding = judge(by_ip.get(ip, []), now, limits, ip in probed)
        evaluations.append(
            _evaluate_ip(ip, finding, by_ip.get(ip, []), observations, now, limits, new.signal.segment.key)
        )
    return evaluations


def _evaluate_ip(
    ip: str,
    finding: Finding,
    sightings: list[Sighting],
    observations: list[SiteReport],
    now: datetime,
    limits: Settings,
    segment: str,
) -> Evaluation:
    subject = f"ip:{ip}"
    queues = _printer_queues(ip, observations)
    where = "; queues: " + _join([f"{q['queue']} on {q['hostname']}" for q in queues]) if queues else ""
    reasons = "; ".join(finding.reasons)
    if finding.status != "ok":
        window = now - timedelta(minutes=max(limits.window_minutes, limits.event_window_minutes))
        involved = [s for s in sightings if s.at >= window or s.mac in finding.macs]
        labels = [_label(m) for m in sorted({s.mac for s in involved})]
        details = {**_details(ip, involved, queues, segment), "reasons": list(finding.reasons)}
        if finding.status == "critical":
            answer = "both answer" if len(labels) == 2 else "answer" if len(labels) > 2 else "claims it"
            summary = f"IP address conflict at {ip}: {_join(labels)} {answer}{where} ({reasons})"
        elif finding.views:
            views = ", ".join(f"{vantage} sees {_label(mac)}" for vantage, mac in finding.views)
            summary = f"PCs disagree about {ip}: {views}; {finding.cause}{where}"
        else:
            summary = f"{_join(labels)} both answer for {ip}: {finding.cause}{where} ({reasons})"
        details["likely_cause"] = finding.cause
        return Evaluation(RULE, subject, finding.status, summary, details)
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


def client_sentence(c: Caught) -> str:
    """What a business owner reads for two devices claiming one network address (a printer's, mostly)."""
    queues = c.details.get("queues")
    names = sorted({q["queue"] for q in queues if isinstance(q, dict) and isinstance(q.get("queue"), str)}
                   if isinstance(queues, list) else set())
    at = f" at {c.site}" if c.site else ""
    fixed = "; we gave it an address of its own" if c.outcome != "open" else ""
    if names:
        return f"Another device was using the network address of the printer \u201c{names[0]}\u201d{at}, " \
               f"so printing could fail{fixed}."
    return f"Two devices{at} were using the same network address, so one of them could drop off the network{fixed}."


SPEC = RuleSpec(evaluate, site_hours=SITE_HOURS, alerts=(
    AlertRule(RULE, action="give one of the devices another address (a DHCP reservation)", sentence=client_sentence),
))
