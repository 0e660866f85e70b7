"""Windows event logs through `Get-WinEvent ... | ConvertTo-Json`, for WSB, Veeam and Macrium."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.checks import CheckContext
from agent.checks.backup_results import Facts, cut
from agent.commands import powershell
from shared.backup_results import Result

MAX_EVENTS = 200
# Get-WinEvent throws when nothing matches; that is an empty answer, not a failure.
SCRIPT = """$ErrorActionPreference = 'Stop'
try {{ $events = @(Get-WinEvent -FilterHashtable @{{ {filter} }} -MaxEvents {max}) }}
catch {{ if ($_.FullyQualifiedErrorId -like 'NoMatchingEventsFound*') {{ $events = @() }} else {{ throw }} }}
$fields = 'Id', 'Level', 'LevelDisplayName', 'TimeCreated', 'ProviderName', 'RecordId', 'Message'
ConvertTo-Json -InputObject @($events | Select-Object $fields) -Depth 2
"""
MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
NO_LOG = "There is not an event log"


@dataclass(frozen=True)
class Event:
    """One event log record, as much of it as the backup providers use."""

    id: int
    level: int
    time: datetime
    message: str
    provider: str = ""
    level_name: str = ""


def ps_string(value: str) -> str:
    """A single-quoted PowerShell string literal."""
    return "'" + value.replace("'", "''") + "'"


def events_script(log_name: str, ids: Iterable[int], provider: str | None = None) -> str:
    """The PowerShell that prints the newest events of `log_name` with these ids as a JSON array."""
    parts = [f"LogName={ps_string(log_name)}", "Id=" + ",".join(str(i) for i in sorted(set(ids)))]
    if provider:
        parts.append(f"ProviderName={ps_string(provider)}")
    return SCRIPT.format(filter="; ".join(parts), max=MAX_EVENTS)


def event_time(value: str) -> datetime:
    """TimeCreated as Windows PowerShell 5.1 writes it (/Date(ms)/, UTC) or PowerShell 7 (ISO 8601)."""
    found = MS_DATE.match(value)
    if found:
        return datetime.fromtimestamp(int(found.group(1)) / 1000, UTC)
    return datetime.fromisoformat(value).astimezone(UTC)


def parse_events(stdout: str) -> list[Event]:
    """Events from ConvertTo-Json output (an array, or one unrolled object), newest first."""
    answer = json.loads(stdout) if stdout.strip() else []
    records = answer if isinstance(answer, list) else [answer]
    events = [
        Event(
            id=int(r["Id"]),
            level=int(r.get("Level") or 0),
            time=event_time(r["TimeCreated"]),
            message=(r.get("Message") or "").strip(),
            provider=r.get("ProviderName") or "",
            level_name=r.get("LevelDisplayName") or "",
        )
        for r in records
    ]
    return sorted(events, key=lambda event: event.time, reverse=True)


def read_events(
    context: CheckContext, log_name: str, ids: Iterable[int], provider: str | None = None
) -> list[Event]:
    """The newest events of a log, newest first; a log that does not exist names the missing product."""
    script = events_script(log_name, ids, provider)
    result = context.run(
        powershell(script), timeout=120.0
    )
    if result.returncode != 0:
        if NO_LOG in result.stderr:
            raise RuntimeError(
                f"the event log {log_name!r} does not exist: is the backup software installed?"
            )
        raise RuntimeError(f"Get-WinEvent failed ({result.returncode}): {result.stderr.strip()[:300]}")
    return parse_events(result.stdout)


def outcome(events: list[Event], classify: Callable[[Event], Result | None], started_ids: set[int]) -> Facts:
    """Facts from events, newest first: the newest classified event is the last run's result."""
    finished = [(event, result) for event in events if (result := classify(event)) is not None]
    if not finished:
        return {"last_result": "unknown", "error": "no finished backup run found in the event log"}
    last, result = finished[0]
    success = next((event for event, verdict in finished if verdict == "success"), None)
    start = next((e for e in events if e.id in started_ids and e.time <= last.time), None)
    return {
        "last_result": result,
        "last_run_started_at": start.time if start else None,
        "last_run_ended_at": last.time,
        "last_success_at": success.time if success else None,
        "duration_seconds": (last.time - start.time).total_seconds() if start else None,
        "error": None if result == "success" else cut(last.message) or None,
        "detail": {"event_id": str(last.id), "provider": last.provider},
    }
