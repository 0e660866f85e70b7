"""The printer_ip_conflict check: printer queues, the neighbour table, who answers for each printer address,
OS conflict events and the segment key. The collector correlates these across a site's devices.

Settings (`[checks.printer_ip_conflict]`): `addresses` (more IPv4 addresses to probe), `probe_window`
(seconds to listen for ARP replies, default 2; on Windows the pause between resolution rounds),
`resolve_rounds` (Windows: how often each address is resolved afresh per check, default 4), `probe_gateway`
(default true), `raw_probe` (default true; false forces the neighbour-table method on Linux).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import ClassVar, TypeVar

from agent.checks import Check, CheckContext
from agent.checks.heartbeat import default_gateway
from agent.checks.printer_ip_conflict.neighbours import read_neighbours
from agent.checks.printer_ip_conflict.printers import read_queues
from agent.checks.printer_ip_conflict.probe import DEFAULT_WINDOW, RESOLVE_ROUNDS, probe_addresses
from agent.checks.printer_ip_conflict.segment import local_interfaces, segment_key
from agent.checks.printer_ip_conflict.winevents import read_conflict_events
from agent.commands import CommandNotFound
from shared.base import Signal
from shared.printer_ip_conflict import PrinterIpConflict

T = TypeVar("T")
# What one part of the check may fail with; the other parts are still worth reporting.
PART_FAILURES = (CommandNotFound, OSError, ValueError, subprocess.TimeoutExpired)


class PrinterIpConflictCheck(Check):
    """Reports print queues, neighbours and every MAC that answers for printer and gateway addresses."""

    kind: ClassVar[str] = "printer_ip_conflict"
    default_interval: ClassVar[float] = 900.0
    timeout: ClassVar[float] = 120.0

    def __init__(self, context: CheckContext | None = None, platform: str | None = None) -> None:
        super().__init__(context)
        self.platform = platform or sys.platform

    def collect(self) -> list[Signal]:
        """One signal with queues, neighbours, probes, conflict events and the segment key."""
        collected_at = self.context.clock()
        settings, run, root = self.context.settings, self.context.run, self.context.root
        problems: list[str] = []
        queues = _part(problems, "printer queues", lambda: read_queues(self.platform, run), [])
        gateway = _part(problems, "default gateway", lambda: default_gateway(self.platform, root, run), None)
        interfaces = local_interfaces()
        events = []
        if self.platform == "win32":
            events = _part(
                problems, "Tcpip conflict events", lambda: read_conflict_events(run, interfaces), []
            )
        targets = {a for q in queues for a in q.addresses} | set(settings.get("addresses", []))
        if gateway and settings.get("probe_gateway", True):
            targets.add(gateway)
        probes = probe_addresses(
            targets,
            self.platform,
            run,
            lambda: read_neighbours(self.platform, run, root),
            window=float(settings.get("probe_window", DEFAULT_WINDOW)),
            raw=bool(settings.get("raw_probe", True)),
            clock=self.context.clock,
            rounds=int(settings.get("resolve_rounds", RESOLVE_ROUNDS)),
        )
        # Read after the probes, which refreshed the entries of the addresses that matter: before them the table
        # may still show a MAC the OS is about to drop.
        neighbours = _part(problems, "neighbour table", lambda: read_neighbours(self.platform, run, root), [])
        segment = segment_key(gateway, interfaces, neighbours, probes)
        return [
            PrinterIpConflict(
                collected_at=collected_at,
                segment=segment,
                queues=queues,
                neighbours=neighbours,
                probes=probes,
                events=events,
                problems=problems,
            )
        ]


def _part(problems: list[str], what: str, read: Callable[[], T], empty: T) -> T:
    """`read()`, or `empty` with the reason added to `problems`."""
    try:
        return read()
    except PART_FAILURES as exc:
        problems.append(f"{what} not read: {exc}")
        return empty
