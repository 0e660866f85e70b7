"""The network-segment key: subnet of the interface toward the default gateway, the gateway and its MAC."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

import psutil

from shared.printer_ip_conflict import NeighbourEntry, Probe, SegmentKey


def local_networks() -> list[ipaddress.IPv4Interface]:
    """This device's IPv4 addresses with their prefix (loopback left out)."""
    found = []
    for addrs in psutil.net_if_addrs().values():
        for addr in addrs:
            if addr.family == socket.AF_INET and addr.netmask:
                interface = ipaddress.IPv4Interface(f"{addr.address}/{addr.netmask}")
                if not interface.is_loopback:
                    found.append(interface)
    return found


def segment_key(
    gateway: str | None,
    networks: Iterable[ipaddress.IPv4Interface],
    neighbours: Iterable[NeighbourEntry],
    probes: Iterable[Probe] = (),
) -> SegmentKey:
    """The segment of the gateway's subnet; the gateway MAC from the neighbour table, else from its probe."""
    if gateway is None:
        return SegmentKey()
    address = ipaddress.IPv4Address(gateway)
    subnet = next((str(n.network) for n in networks if address in n.network), None)
    mac = next((e.mac for e in neighbours if e.ip == gateway), None)
    if mac is None:
        answers = [a for p in probes if p.ip == gateway for a in p.answers]
        mac = min(answers, key=lambda a: a.first_seen).mac if answers else None
    return SegmentKey(subnet=subnet, gateway_ip=gateway, gateway_mac=mac)
