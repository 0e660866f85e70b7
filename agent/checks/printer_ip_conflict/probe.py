"""Who answers for an IP address: ARP requests on a raw socket (every reply counted, in the spirit of
RFC 5227), or, without that privilege, a connection attempt followed by a look at the neighbour table; on
Windows the address is resolved afresh several times per check, so that two devices taking turns show."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import select
import socket
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from agent.checks.printer_ip_conflict.neighbours import load_json_list, netneighbor_entry, powershell
from agent.commands import CommandNotFound, Runner
from shared.clock import Clock, system_clock
from shared.printer_ip_conflict import NeighbourEntry, Probe, ProbeAnswer

ETH_P_ARP = 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2
BROADCAST = b"\xff" * 6
DEFAULT_WINDOW = 2.0
REQUESTS_PER_PROBE = 3  # RFC 5227 sends PROBE_NUM = 3 probes; a lost frame then does not hide an answer
CONNECT_PORT = 9100  # any port will do: resolving the address happens before the first packet
# A TCP connection's SYN needs the neighbour's address first, so the attempt fills the OS table.
CONNECT_TIMEOUT = 1.0
# Linux re-checks a cached entry before it lets go of it (STALE -> DELAY 5 s -> 3 unicast PROBEs 1 s apart ->
# FAILED); until then the table still shows the old MAC. Keep knocking until every entry is confirmed.
SETTLE_SECONDS = 12.0
UNCONFIRMED_STATES = {"stale", "delay", "probe"}

RESOLVE_ROUNDS = 4  # Windows: how often one check resolves each address afresh
RESOLVE_PAUSE = 2.0  # seconds between rounds: a device that lost the race answers first next time
# Each round forgets the cached entry (the service runs as LocalSystem, which may; an administrator's static
# entry is left alone), pings every address at once (the ping needs the neighbour's MAC first, so Windows sends
# an ARP request even when ICMP is blocked), then reads what the table holds now.
RESOLVE_SCRIPT = """
$ips = @({ips}); $rounds = {rounds}
$seen = foreach ($round in 1..$rounds) {{
  Get-NetNeighbor -AddressFamily IPv4 -IPAddress $ips -ErrorAction SilentlyContinue |
    Where-Object {{ "$($_.State)" -ne 'Permanent' }} | Remove-NetNeighbor -Confirm:$false -ErrorAction SilentlyContinue
  $pings = foreach ($ip in $ips) {{ (New-Object System.Net.NetworkInformation.Ping).SendPingAsync($ip, 1000) }}
  try {{ [void][System.Threading.Tasks.Task]::WaitAll([System.Threading.Tasks.Task[]]@($pings)) }} catch {{ }}
  Get-NetNeighbor -AddressFamily IPv4 -IPAddress $ips -ErrorAction SilentlyContinue |
    Select-Object @{{n='Round';e={{$round}}}},IPAddress,LinkLayerAddress,State,InterfaceAlias
  if ($round -lt $rounds) {{ Start-Sleep -Milliseconds {pause_ms} }}
}}
@($seen) | ConvertTo-Json -Compress
""".strip()

NeighbourReader = Callable[[], list[NeighbourEntry]]


@dataclass(frozen=True)
class Route:
    """How this device reaches an address: interface and source address, or why it cannot probe it."""

    interface: str | None = None
    source_ip: str | None = None
    error: str | None = None


@dataclass
class Sightings:
    """Distinct hardware addresses heard claiming one IP address."""

    answers: dict[str, list[datetime]] = field(default_factory=dict)

    def add(self, mac: str, at: datetime) -> None:
        """Record one answer from `mac`."""
        self.answers.setdefault(mac, []).append(at)

    def as_answers(self) -> list[ProbeAnswer]:
        """The wire answers, first heard first."""
        return sorted(
            (
                ProbeAnswer(mac=mac, first_seen=min(times), last_seen=max(times), replies=len(times))
                for mac, times in self.answers.items()
            ),
            key=lambda a: (a.first_seen, a.mac),
        )


def parse_route_get(text: str) -> Route:
    """The route from `ip -j route get ADDRESS`; a route via a gateway means the address is not on-link."""
    routes = json.loads(text or "[]")
    if not routes:
        return Route(error="no route to the address")
    route = routes[0]
    if route.get("gateway"):
        return Route(error=f"not on a local segment (routed via {route['gateway']}); ARP cannot reach it")
    if route.get("type") in ("local", "broadcast", "multicast"):
        return Route(error=f"a {route['type']} address of this device, not a neighbour")
    if not route.get("dev") or not route.get("prefsrc"):
        return Route(error="no interface with an IPv4 address reaches it")
    return Route(interface=route["dev"], source_ip=route["prefsrc"])


def linux_route(ip: str, run: Runner) -> Route:
    """The Linux kernel's own route decision for `ip`."""
    try:
        result = run(["ip", "-j", "route", "get", ip], 10)
    except CommandNotFound:
        return Route(error="ip (iproute2) is not installed")
    if result.returncode != 0:
        return Route(error=result.stderr.strip() or "no route to the address")
    return parse_route_get(result.stdout)


def arp_request(sender_mac: bytes, sender_ip: str, target_ip: str) -> bytes:
    """A broadcast Ethernet frame carrying an ARP request for `target_ip`."""
    arp = struct.pack(
        "!HHBBH6s4s6s4s",
        1,
        0x0800,
        6,
        4,
        ARP_REQUEST,
        sender_mac,
        socket.inet_aton(sender_ip),
        b"\x00" * 6,
        socket.inet_aton(target_ip),
    )
    return BROADCAST + sender_mac + struct.pack("!H", ETH_P_ARP) + arp


def parse_arp_claim(frame: bytes) -> tuple[str, str] | None:
    """(sender IP, sender MAC) of an ARP reply or announcement; None for other frames and 0.0.0.0 probes."""
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_P_ARP:
        return None
    htype, ptype, hlen, plen, op, sha, spa = struct.unpack("!HHBBH6s4s", frame[14:32])
    if (htype, ptype, hlen, plen) != (1, 0x0800, 6, 4) or op not in (ARP_REQUEST, ARP_REPLY):
        return None
    sender_ip = socket.inet_ntoa(spa)
    if sender_ip == "0.0.0.0":  # RFC 5227 probe of a host checking the address for itself: not a claim
        return None
    return sender_ip, ":".join(f"{b:02x}" for b in sha)


def arp_probe(
    interface: str,
    source_ip: str,
    targets: Iterable[str],
    window: float = DEFAULT_WINDOW,
    clock: Clock = system_clock,
) -> dict[str, Sightings]:
    """Send ARP requests for `targets` from `interface` and record every distinct MAC that answers.

    1. Open a raw ARP socket on the interface (needs CAP_NET_RAW; PermissionError otherwise).
    2. Broadcast REQUESTS_PER_PROBE requests per target, spread over the window.
    3. Until the window closes, count every reply or announcement whose sender IP is a target.
    """
    wanted = {str(ipaddress.IPv4Address(t)) for t in targets}
    seen = {ip: Sightings() for ip in wanted}
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP)) as sock:
        sock.bind((interface, ETH_P_ARP))
        own_mac = sock.getsockname()[4][:6]
        frames = [arp_request(own_mac, source_ip, ip) for ip in sorted(wanted)]
        start = time.monotonic()
        send_at = [start + window * i / REQUESTS_PER_PROBE for i in range(REQUESTS_PER_PROBE)]
        while (left := start + window - time.monotonic()) > 0:
            if send_at and time.monotonic() >= send_at[0]:
                send_at.pop(0)
                for frame in frames:
                    sock.send(frame)
            wait = min(left, max(0.0, send_at[0] - time.monotonic())) if send_at else left
            if not select.select([sock], [], [], wait)[0]:
                continue
            claim = parse_arp_claim(sock.recv(2048))
            if claim and claim[0] in wanted and claim[1] != own_mac.hex(":"):
                seen[claim[0]].add(claim[1], clock())
    return seen


def _knock(ips: Iterable[str]) -> None:
    """A connection attempt to each address: refused or timed out, the address was resolved (or not)."""
    for ip in ips:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock, contextlib.suppress(OSError):
            sock.settimeout(CONNECT_TIMEOUT)
            sock.connect((ip, CONNECT_PORT))


def _confirmed(ip: str, table: list[NeighbourEntry]) -> bool:
    """Whether the table holds an answer for `ip` that the OS has verified (macOS shows no state: yes)."""
    return any(e.ip == ip and e.state not in UNCONFIRMED_STATES for e in table)


def neighbour_probes(
    ips: list[str],
    read_neighbours: NeighbourReader,
    interface: str | None = None,
    clock: Clock = system_clock,
    settle: float = SETTLE_SECONDS,
) -> list[Probe]:
    """Connection attempts to each address until the OS table confirms its MAC (one at most), or `settle`
    seconds have passed; then that MAC."""
    start = time.monotonic()
    pending = list(ips)
    while True:
        _knock(pending)
        table = read_neighbours()
        pending = [ip for ip in pending if not _confirmed(ip, table)]
        if not pending or time.monotonic() - start >= settle:
            break
    probes = []
    for ip in ips:
        sightings = Sightings()
        entries = [e for e in table if e.ip == ip]
        for entry in entries:
            sightings.add(entry.mac, clock())
        probes.append(
            Probe(
                ip=ip,
                method="neighbour-table",
                interface=interface or next((e.interface for e in entries), None),
                window_seconds=round(time.monotonic() - start, 3),
                answers=sightings.as_answers(),
            )
        )
    return probes


def resolve_script(ips: list[str], rounds: int, pause: float) -> str:
    """The PowerShell script that resolves `ips` afresh `rounds` times, `pause` seconds apart."""
    quoted = ",".join(f"'{ipaddress.IPv4Address(ip)}'" for ip in ips)  # validated: no quoting to escape
    return RESOLVE_SCRIPT.format(ips=quoted, rounds=rounds, pause_ms=int(pause * 1000))


def parse_resolve_rounds(text: str) -> list[tuple[int, NeighbourEntry]]:
    """(round, entry) for every usable entry RESOLVE_SCRIPT printed; incomplete rounds are left out."""
    found = [(int(row.get("Round") or 0), netneighbor_entry(row)) for row in load_json_list(text)]
    return [(n, entry) for n, entry in found if entry is not None]


def windows_probes(
    ips: list[str],
    run: Runner,
    rounds: int = RESOLVE_ROUNDS,
    pause: float = RESOLVE_PAUSE,
    clock: Clock = system_clock,
) -> list[Probe]:
    """Resolve each address `rounds` times and report every MAC the table held for it in any round."""
    window = rounds * pause
    if not ips:
        return []
    try:
        result = run(powershell(resolve_script(ips, rounds, pause)), 60 + window * 2)
    except (CommandNotFound, OSError) as exc:
        return [Probe(ip=ip, method="neighbour-table", window_seconds=0, error=str(exc)) for ip in ips]
    if result.returncode != 0:
        error = result.stderr.strip() or f"PowerShell exited with {result.returncode}"
        return [Probe(ip=ip, method="neighbour-table", window_seconds=0, error=error) for ip in ips]
    done = clock()
    seen = parse_resolve_rounds(result.stdout)
    probes = []
    for ip in ips:
        sightings = Sightings()
        entries = [(n, e) for n, e in seen if e.ip == ip]
        for n, entry in entries:
            # Stamped on the agent's one clock: the last round ended about now, each earlier one a pause before.
            sightings.add(entry.mac, done - timedelta(seconds=(rounds - n) * pause))
        interface = next((e.interface for _, e in entries), None)
        probes.append(
            Probe(
                ip=ip, method="neighbour-table", interface=interface, window_seconds=window,
                answers=sightings.as_answers(),
            )
        )
    return probes


def probe_addresses(
    targets: Iterable[str],
    platform: str,
    run: Runner,
    read_neighbours: NeighbourReader,
    window: float = DEFAULT_WINDOW,
    raw: bool = True,
    clock: Clock = system_clock,
    rounds: int = RESOLVE_ROUNDS,
) -> list[Probe]:
    """Probe each address: by raw ARP on Linux where the agent may open raw sockets, on Windows by resolving
    it `rounds` times, else by one look at the table."""
    ips = sorted({str(ipaddress.IPv4Address(t)) for t in targets}, key=ipaddress.IPv4Address)
    if platform == "win32":
        return windows_probes(ips, run, rounds, window, clock)
    if platform != "linux" or not raw or not hasattr(socket, "AF_PACKET"):
        return neighbour_probes(ips, read_neighbours, clock=clock)
    routes = {ip: linux_route(ip, run) for ip in ips}
    probes = [
        Probe(ip=ip, method="arp-raw", window_seconds=0, error=r.error) for ip, r in routes.items() if r.error
    ]
    by_interface: dict[tuple[str, str], list[str]] = {}
    for ip, route in routes.items():
        if route.interface and route.source_ip:  # else route.error already made its probe
            by_interface.setdefault((route.interface, route.source_ip), []).append(ip)
    for (interface, source_ip), group in by_interface.items():
        try:
            seen = arp_probe(interface, source_ip, group, window, clock)
        except PermissionError:
            probes += neighbour_probes(group, read_neighbours, interface, clock)
            continue
        probes += [
            Probe(
                ip=ip,
                method="arp-raw",
                interface=interface,
                window_seconds=window,
                answers=seen[ip].as_answers(),
            )
            for ip in group
        ]
    return sorted(probes, key=lambda p: ipaddress.IPv4Address(p.ip))
