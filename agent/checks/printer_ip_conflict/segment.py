"""The network-segment key: subnet of the interface toward the default gateway, the gateway and its MAC."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from agent.checks.printer_ip_conflict.neighbours import normalise_mac
from shared.printer_ip_conflict import NeighbourEntry, Probe, SegmentKey


@dataclass(frozen=True)
class LocalInterface:
    """One IPv4 address of this device with its interface's name and hardware address."""

    name: str
    address: ipaddress.IPv4Interface
    mac: str | None = None


def local_interfaces() -> list[LocalInterface]:
    """This device's IPv4 addresses with prefix, interface name and MAC (loopback left out)."""
    found = []
    for name, addrs in psutil.net_if_addrs().items():
        mac = next((normalise_mac(a.address) for a in addrs if a.family == psutil.AF_LINK), None)
        for addr in addrs:
            if addr.family == socket.AF_INET and addr.netmask:
                interface = ipaddress.IPv4Interface(f"{addr.address}/{addr.netmask}")
                if not interface.is_loopback:
                    found.append(LocalInterface(name, interface, mac))
    return found


def own_mac(ip: str, interfaces: Iterable[LocalInterface]) -> str | None:
    """This device's MAC for its address `ip`: the interface holding it, else the one whose subnet has it.

    Windows may take a conflicting address off the interface (event 4198), so the subnet is the fallback.
    """
    address = ipaddress.IPv4Address(ip)
    candidates = list(interfaces)
    exact = [i for i in candidates if i.address.ip == address and i.mac]
    if exact:
        return exact[0].mac
    return next((i.mac for i in candidates if address in i.address.network and i.mac), None)


def segment_key(
    gateway: str | None,
    interfaces: Iterable[LocalInterface],
    neighbours: Iterable[NeighbourEntry],
    probes: Iterable[Probe] = (),
) -> SegmentKey:
    """The segment of the gateway's subnet; the gateway MAC from the neighbour table, else from its probe."""
    if gateway is None:
        return SegmentKey()
    address = ipaddress.IPv4Address(gateway)
    toward = next((i for i in interfaces if address in i.address.network), None)
    mac = next((e.mac for e in neighbours if e.ip == gateway), None)
    if mac is None:
        answers = [a for p in probes if p.ip == gateway for a in p.answers]
        mac = min(answers, key=lambda a: a.first_seen).mac if answers else None
    return SegmentKey(
        subnet=str(toward.address.network) if toward else None,
        gateway_ip=gateway,
        gateway_mac=mac,
        interface=toward.name if toward else None,
    )
