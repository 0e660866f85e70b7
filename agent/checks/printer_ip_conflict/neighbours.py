"""The IPv4 neighbour (ARP) table: `ip -j neigh` or /proc/net/arp, Get-NetNeighbor, macOS `arp -an`."""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Any

from agent.checks.rootfs import read_text
from agent.commands import CommandNotFound, Runner
from shared.printer_ip_conflict import NeighbourEntry

IP_NEIGH_ARGV = ("ip", "-j", "-4", "neigh", "show")
ARP_AN_ARGV = ("arp", "-an")
# Select-Object keeps the JSON small and stable across PowerShell versions (no CIM plumbing properties).
GET_NETNEIGHBOR_SCRIPT = (
    "Get-NetNeighbor -AddressFamily IPv4 | "
    "Select-Object IPAddress,LinkLayerAddress,State,InterfaceAlias | ConvertTo-Json -Compress"
)
# NL_NEIGHBOR_STATE (nldef.h): the number PowerShell prints when it serialises the enum as its value.
WINDOWS_STATES = ("unreachable", "incomplete", "probe", "delay", "stale", "reachable", "permanent")
# States whose entry holds no confirmed hardware address.
UNUSABLE_STATES = {"incomplete", "failed", "unreachable", "none"}
ATF_COM = 0x2  # /proc/net/arp flag: entry complete
ATF_PERM = 0x4  # /proc/net/arp flag: permanent entry
MACOS_LINE = re.compile(r"^\S+ \((?P<ip>[\d.]+)\) at (?P<mac>\S+) on (?P<dev>\S+)(?P<rest>.*)$")


def normalise_mac(text: str) -> str | None:
    """A MAC-48 as lower-case colon-separated pairs (accepts `-`, and macOS's dropped leading zeros)."""
    parts = re.split(r"[:-]", text.strip().lower())
    if len(parts) != 6 or not all(re.fullmatch(r"[0-9a-f]{1,2}", p) for p in parts):
        return None
    return ":".join(p.zfill(2) for p in parts)


def powershell(script: str) -> list[str]:
    """The argv that runs a PowerShell script without profile or prompts."""
    return ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", script]


def as_list(data: Any) -> list[dict[str, Any]]:
    """PowerShell's JSON value as a list: ConvertTo-Json prints one object bare, and null for none."""
    if data is None:
        return []
    return [data] if isinstance(data, dict) else list(data)


def load_json_list(text: str) -> list[dict[str, Any]]:
    """PowerShell's JSON text as a list of objects; no output at all means no objects."""
    return as_list(json.loads(text)) if text.strip() else []


def _entry(ip: str, mac_text: str | None, interface: str | None, state: str | None) -> NeighbourEntry | None:
    """An entry, or None when it has no usable unicast IPv4/MAC pair (incomplete, multicast, broadcast)."""
    mac = normalise_mac(mac_text or "")
    if state in UNUSABLE_STATES or mac is None or mac == "00:00:00:00:00:00" or int(mac[:2], 16) & 1:
        return None
    try:
        address = ipaddress.IPv4Address(ip)
    except ValueError:
        return None
    if address.is_multicast or address.is_unspecified or str(address) == "255.255.255.255":
        return None
    return NeighbourEntry(ip=str(address), mac=mac, interface=interface, state=state)


def _keep(entries: list[NeighbourEntry | None]) -> list[NeighbourEntry]:
    return [e for e in entries if e is not None]


def parse_ip_neigh_json(text: str) -> list[NeighbourEntry]:
    """Entries from `ip -j neigh show` (iproute2); state is a list of NUD flags."""
    entries = []
    for item in json.loads(text or "[]"):
        states = [s.lower() for s in item.get("state", [])]
        state = next((s for s in states if s in UNUSABLE_STATES), states[0] if states else None)
        entries.append(_entry(item.get("dst", ""), item.get("lladdr"), item.get("dev"), state))
    return _keep(entries)


def parse_proc_net_arp(text: str) -> list[NeighbourEntry]:
    """Entries from Linux /proc/net/arp; incomplete entries have flag ATF_COM clear."""
    entries = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 6:
            continue
        flags = int(fields[2], 16)
        if not flags & ATF_COM:
            continue
        entries.append(_entry(fields[0], fields[3], fields[5], "permanent" if flags & ATF_PERM else None))
    return _keep(entries)


def _windows_state(value: Any) -> str | None:
    if isinstance(value, int):
        return WINDOWS_STATES[value] if 0 <= value < len(WINDOWS_STATES) else None
    return str(value).lower() if value is not None else None


def netneighbor_entry(item: dict[str, Any]) -> NeighbourEntry | None:
    """One Get-NetNeighbor object as an entry; State may be the enum's number or its name."""
    return _entry(
        str(item.get("IPAddress", "")),
        item.get("LinkLayerAddress"),
        item.get("InterfaceAlias"),
        _windows_state(item.get("State")),
    )


def parse_get_netneighbor(text: str) -> list[NeighbourEntry]:
    """Entries from `Get-NetNeighbor | ConvertTo-Json`."""
    return _keep([netneighbor_entry(item) for item in load_json_list(text)])


def parse_arp_an(text: str) -> list[NeighbourEntry]:
    """Entries from macOS/BSD `arp -an`; `(incomplete)` entries are skipped, short MAC octets padded."""
    entries = []
    for line in text.splitlines():
        found = MACOS_LINE.match(line.strip())
        if found and found["mac"] != "(incomplete)":
            state = "permanent" if " permanent" in found["rest"] else None
            entries.append(_entry(found["ip"], found["mac"], found["dev"], state))
    return _keep(entries)


def read_neighbours(platform: str, run: Runner, root: Path, timeout: float = 30.0) -> list[NeighbourEntry]:
    """This device's neighbour table, read the way `platform` (a sys.platform value) allows."""
    if platform == "win32":
        return parse_get_netneighbor(run(powershell(GET_NETNEIGHBOR_SCRIPT), timeout).stdout)
    if platform == "darwin":
        return parse_arp_an(run(ARP_AN_ARGV, timeout).stdout)
    try:
        result = run(IP_NEIGH_ARGV, timeout)
        if result.returncode == 0:
            return parse_ip_neigh_json(result.stdout)
    except (CommandNotFound, json.JSONDecodeError):
        pass  # iproute2 missing or too old for -j: the kernel's own table still answers
    return parse_proc_net_arp(read_text(root, "/proc/net/arp") or "")
