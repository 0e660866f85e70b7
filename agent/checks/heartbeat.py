"""The heartbeat check: who and what this device is, its addresses, and a summary of its load."""

from __future__ import annotations

import ipaddress
import platform
import re
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import psutil

import shared
from agent.checks import Check, CheckContext
from agent.commands import Runner
from agent.outbox import OUTBOX_FILE, read_stats
from shared.base import Signal
from shared.wire import ERROR_MAX, FilesystemUse, Heartbeat, Interface, UserSession

RTF_GATEWAY = 0x2
# Filesystem types that are not storage a technician looks after: snap packages mount one image each.
IGNORED_FSTYPES = {"squashfs"}


def parse_proc_net_route(text: str) -> str | None:
    """The default IPv4 gateway from Linux `/proc/net/route` (hex, little-endian), lowest metric first."""
    best: tuple[int, str] | None = None
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or fields[1] != "00000000" or fields[7] != "00000000":
            continue
        if not int(fields[3], 16) & RTF_GATEWAY:
            continue
        gateway = str(ipaddress.IPv4Address(int(fields[2], 16).to_bytes(4, "little")))
        metric = int(fields[6])
        if best is None or metric < best[0]:
            best = (metric, gateway)
    return best[1] if best else None


def _ipv4(text: str) -> str | None:
    """`text` if it is an IPv4 address, else None."""
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        return None


def parse_route_print(text: str) -> str | None:
    """The default IPv4 gateway from Windows `route print -4`, lowest metric first.

    Matched by shape, not by headings, because the headings are translated on non-English Windows.
    Active routes have five columns; persistent routes (four columns) are configuration, not state.
    """
    best: tuple[int, str] | None = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 5 or fields[:2] != ["0.0.0.0", "0.0.0.0"] or not fields[4].isdigit():
            continue
        gateway = _ipv4(fields[2])
        if gateway and (best is None or int(fields[4]) < best[0]):
            best = (int(fields[4]), gateway)
    return best[1] if best else None


def parse_netstat_rn(text: str) -> str | None:
    """The default IPv4 gateway from macOS `netstat -rn`: the first `default` route via an IPv4 address."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0] == "default" and (gateway := _ipv4(fields[1])):
            return gateway
    return None


def default_gateway(system: str, root: Path, run: Runner) -> str | None:
    """The default IPv4 gateway, read the way this platform allows."""
    if system == "linux":
        route = root / "proc/net/route"
        return parse_proc_net_route(route.read_text()) if route.exists() else None
    if system == "win32":
        return parse_route_print(run(["route", "print", "-4"], timeout=15).stdout)
    return parse_netstat_rn(run(["netstat", "-rn", "-f", "inet"], timeout=15).stdout)


def cidr(address: str, netmask: str | None) -> str:
    """`address/prefix` from an address and a dotted or colon netmask (IPv6 scope suffix dropped)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    prefix = int(ipaddress.ip_address(netmask)).bit_count() if netmask else ip.max_prefixlen
    return f"{ip}/{prefix}"


def interfaces() -> list[Interface]:
    """Network interfaces with their MAC and addresses; loopback and address-less interfaces are left out."""
    found = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        mac = None
        addresses = []
        for addr in addrs:
            if addr.family == psutil.AF_LINK:
                # Windows writes AA-BB-.., macOS may drop leading zeros: the wire wants aa:bb:...
                normalised = ":".join(p.zfill(2) for p in re.split("[:-]", addr.address.lower()))
                mac = normalised if normalised.strip("0:") else None
            elif addr.family in (socket.AF_INET, socket.AF_INET6):
                address = cidr(addr.address, addr.netmask)
                if not ipaddress.ip_interface(address).is_loopback:
                    addresses.append(address)
        if addresses:
            found.append(Interface(name=name, mac=mac, addresses=addresses))
    return found


def filesystems() -> list[FilesystemUse]:
    """Space used on each real mounted filesystem; drives that cannot be read (empty DVD) are skipped."""
    found = []
    for part in psutil.disk_partitions(all=False):
        if part.fstype in IGNORED_FSTYPES or "cdrom" in part.opts:
            continue
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        found.append(FilesystemUse(mount=part.mountpoint, total_bytes=usage.total, used_bytes=usage.used))
    return found


def users() -> list[UserSession]:
    """Logged-on user sessions."""
    return [
        UserSession(
            name=u.name, terminal=u.terminal or None, host=u.host or None,
            started_at=datetime.fromtimestamp(u.started, UTC) if u.started else None,
        )
        for u in psutil.users()
    ]


def os_version() -> str:
    """A readable OS release: distribution and kernel on Linux, the release number elsewhere."""
    if sys.platform == "linux":
        try:
            pretty = platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
        except OSError:
            pretty = "Linux"
        return f"{pretty} (kernel {platform.release()})"
    if sys.platform == "darwin":
        return f"macOS {platform.mac_ver()[0]}"
    return f"{platform.release()} ({platform.version()})"


class HeartbeatCheck(Check):
    """The device is alive: identity, addresses, gateway and a load summary."""

    kind = "heartbeat"
    timeout = 30.0
    default_interval = 60.0
    # The first CPU sample needs a short measuring window; later ones measure since the previous run.
    first_cpu_sample_seconds = 0.5

    def __init__(self, context: CheckContext | None = None) -> None:
        super().__init__(context)
        self._cpu_primed = False

    def collect(self) -> list[Signal]:
        """One heartbeat from psutil and the platform's routing table."""
        cpu_window = None if self._cpu_primed else self.first_cpu_sample_seconds
        self._cpu_primed = True
        cpu_percent = psutil.cpu_percent(interval=cpu_window)
        collected_at = self.context.clock()
        boot_time = datetime.fromtimestamp(psutil.boot_time(), UTC)
        memory = psutil.virtual_memory()
        outbox = read_stats(self.context.state_dir / OUTBOX_FILE) if self.context.state_dir else None
        return [Heartbeat(
            collected_at=collected_at,
            hostname=socket.gethostname(),
            os_name=platform.system(),
            os_version=os_version(),
            agent_version=shared.__version__,
            boot_time=boot_time,
            uptime_seconds=max(0.0, (collected_at - boot_time).total_seconds()),
            interfaces=interfaces(),
            default_gateway=default_gateway(sys.platform, self.context.root, self.context.run),
            cpu_count=psutil.cpu_count() or 1,
            cpu_percent=cpu_percent,
            memory_total_bytes=memory.total,
            memory_used_percent=memory.percent,
            filesystems=filesystems(),
            users=users(),
            refused_reports=outbox.rejected if outbox else 0,
            last_refusal=outbox.last_rejection[:ERROR_MAX] if outbox and outbox.last_rejection else None,
            last_refusal_queued_at=outbox.last_rejection_queued_at if outbox else None,
            outbox_warning=outbox.warning[:ERROR_MAX] if outbox and outbox.warning else None,
            outbox_warning_at=outbox.warning_at if outbox else None,
            dropped_reports=outbox.dropped if outbox else 0,
        )]
