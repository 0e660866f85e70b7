"""Windows' own address-conflict notices: Tcpip events 4199 and 4198 in the System log."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.checks.printer_ip_conflict.neighbours import load_json_list, normalise_mac, powershell
from agent.checks.printer_ip_conflict.segment import LocalInterface, own_mac
from agent.commands import Runner
from shared.printer_ip_conflict import ConflictEvent

LOOKBACK_HOURS = 1  # the check runs every 15 minutes; an hour covers a missed run or two
EVENTS_SCRIPT = (
    "Get-WinEvent -FilterHashtable @{LogName='System';ProviderName='Tcpip';Id=4198,4199;"
    f"StartTime=(Get-Date).AddHours(-{LOOKBACK_HOURS})}} -ErrorAction SilentlyContinue | "
    "Select-Object Id,TimeCreated,Message | ConvertTo-Json -Compress"
)
IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
MAC = re.compile(r"\b[0-9A-Fa-f]{1,2}(?:[:-][0-9A-Fa-f]{1,2}){5}\b")
# Windows PowerShell 5.1 writes DateTime as "/Date(milliseconds since 1970)/"; PowerShell 7 as ISO 8601.
MS_DATE = re.compile(r"/Date\((-?\d+)(?:[+-]\d{4})?\)/")


def parse_time(value: Any) -> datetime | None:
    """An event's TimeCreated as an aware UTC datetime."""
    text = str(value or "")
    found = MS_DATE.search(text)
    if found:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(found.group(1)))
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else None


def _address_pair(message: str) -> tuple[str, str] | None:
    """The IPv4 address and MAC in the message, found by shape because the words are translated."""
    ip, mac = IPV4.search(message), MAC.search(message)
    return (ip.group(0), normalise_mac(mac.group(0)) or "") if ip and mac else None


def parse_conflict_events(text: str, interfaces: Sequence[LocalInterface] = ()) -> list[ConflictEvent]:
    """Conflict events from EVENTS_SCRIPT's JSON, each with this device's own MAC for the address from
    `interfaces` (the message names only the other system's); IPv6 and 0.0.0.0 (DHCP probes) are skipped."""
    events = []
    for record in load_json_list(text):
        pair = _address_pair(str(record.get("Message") or ""))
        at = parse_time(record.get("TimeCreated"))
        if pair and at and pair[0] != "0.0.0.0":
            events.append(
                ConflictEvent(
                    ip=pair[0],
                    mac=pair[1],
                    at=at,
                    event_id=int(record.get("Id", 0)),
                    own_mac=own_mac(pair[0], interfaces),
                )
            )
    return events


def read_conflict_events(
    run: Runner, interfaces: Sequence[LocalInterface], timeout: float = 60.0
) -> list[ConflictEvent]:
    """Tcpip conflict events of the last LOOKBACK_HOURS."""
    return parse_conflict_events(run(powershell(EVENTS_SCRIPT), timeout).stdout, interfaces)
