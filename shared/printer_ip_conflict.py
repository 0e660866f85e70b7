"""The `printer_ip_conflict` signal: print queues, neighbours and probe answers; the collector judges."""

from __future__ import annotations

from typing import Literal

from shared.base import MAC48, Int, IPv4, IPv4Subnet, Signal, Timestamp, WireModel, fact

ProbeMethod = Literal["arp-raw", "neighbour-table"]


class PrinterQueue(WireModel):
    """One print queue of this device and the network address it prints to."""

    name: str = fact("Queue name as the OS shows it (Windows printer name, CUPS queue)")
    uri: str | None = fact(
        "Where the queue sends jobs: CUPS device URI, Windows port name or URL", default=None
    )
    host: str | None = fact("Host part of the queue's address: an IP address or a host name", default=None)
    addresses: list[IPv4] = fact("IPv4 addresses the host resolved to", "IPv4 address", default_factory=list)
    unresolved: str | None = fact(
        "Why the queue's address could not be turned into an IP address (e.g. mDNS name not found)",
        default=None,
    )


class NeighbourEntry(WireModel):
    """One complete entry of the device's IPv4 neighbour (ARP) table."""

    ip: IPv4 = fact("Neighbour's IPv4 address", "IPv4 address")
    mac: MAC48 = fact("Neighbour's hardware address, lower-case colon-separated", "MAC-48")
    interface: str | None = fact("Interface the entry belongs to", default=None)
    state: str | None = fact(
        "Entry state in lower case (reachable, stale, delay, probe, permanent, ...); null where the OS "
        "shows none",
        default=None,
    )


class ProbeAnswer(WireModel):
    """One distinct hardware address that answered for a probed IP address."""

    mac: MAC48 = fact("Hardware address that claimed the IP address, lower-case colon-separated", "MAC-48")
    first_seen: Timestamp = fact(
        "First answer from this hardware address in the probe", "ISO 8601 timestamp"
    )
    last_seen: Timestamp = fact(
        "Last answer from this hardware address in the probe", "ISO 8601 timestamp"
    )
    replies: Int = fact("Answers received from this hardware address during the probe", "count", ge=1)


class Probe(WireModel):
    """An active look at who answers for one IP address."""

    ip: IPv4 = fact("Probed IPv4 address", "IPv4 address")
    method: ProbeMethod = fact(
        "arp-raw: ARP requests on a raw socket, every reply counted; neighbour-table: a connection attempt, "
        "then the one entry the OS kept (cannot see two answers at once)"
    )
    interface: str | None = fact("Interface the probe went out on", default=None)
    window_seconds: float = fact("How long replies were listened for", "seconds", ge=0)
    answers: list[ProbeAnswer] = fact("Every distinct hardware address that answered", default_factory=list)
    error: str | None = fact(
        "Why the address could not be probed (not on a local segment, ...)", default=None
    )


class ConflictEvent(WireModel):
    """The OS's own notice of an address conflict (Windows Tcpip events 4199 and 4198)."""

    ip: IPv4 = fact("IPv4 address in conflict", "IPv4 address")
    mac: MAC48 = fact("Hardware address of the other system, lower-case colon-separated", "MAC-48")
    at: Timestamp = fact("When the OS logged the conflict", "ISO 8601 timestamp")
    event_id: Int = fact(
        "Event id: 4199 (conflict, operations may be disrupted), 4198 (interface disabled)", "event id"
    )
    own_mac: MAC48 | None = fact(
        "This device's own hardware address for the IP address (the event names only the other one), "
        "lower-case colon-separated; null where the agent could not tell",
        "MAC-48",
        default=None,
    )


class SegmentKey(WireModel):
    """Which LAN the device is on, so the collector compares reports that describe the same segment."""

    subnet: IPv4Subnet | None = fact(
        "Subnet of the interface that reaches the default gateway", "CIDR", default=None
    )
    gateway_ip: IPv4 | None = fact("Default IPv4 gateway", "IPv4 address", default=None)
    gateway_mac: MAC48 | None = fact(
        "Default gateway's hardware address from the neighbour table", "MAC-48", default=None
    )
    interface: str | None = fact(
        "This device's interface on the segment (neighbour entries of other interfaces are not the LAN's)",
        default=None,
    )

    @property
    def key(self) -> str:
        """The segment as one comparable string."""
        return f"{self.subnet or '-'}|{self.gateway_ip or '-'}|{self.gateway_mac or '-'}"


class PrinterIpConflict(Signal):
    """Printer queues, the neighbour table, probe answers and OS conflict events of one device."""

    kind: Literal["printer_ip_conflict"] = "printer_ip_conflict"
    segment: SegmentKey = fact("The LAN this device is on", default_factory=SegmentKey)
    queues: list[PrinterQueue] = fact("Network print queues of this device", default_factory=list)
    neighbours: list[NeighbourEntry] = fact("Complete IPv4 neighbour-table entries", default_factory=list)
    probes: list[Probe] = fact(
        "Active probes of printer, gateway and configured addresses", default_factory=list
    )
    events: list[ConflictEvent] = fact(
        "OS address-conflict events since the last report", default_factory=list
    )
    problems: list[str] = fact(
        "Parts that could not be read (e.g. lpstat missing), so absence is not mistaken for health",
        default_factory=list,
    )
