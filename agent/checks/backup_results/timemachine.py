"""Time Machine: `tmutil latestbackup` for the newest backup, `tmutil destinationinfo` for its destination."""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo

from agent.checks import CheckContext
from agent.checks.backup_results import Facts, free_bytes
from agent.checks.backup_results.jobs import TimeMachineJob

# Backup folders are named by local time: 2024-05-05-221503 (HFS+) or 2024-05-05-221503.backup (APFS).
STAMP = re.compile(r"(\d{4}-\d{2}-\d{2}-\d{6})(?:\.backup)?/?$")
NO_DESTINATION = "No destinations configured"
NOT_MOUNTED = "Failed to mount backup destination"


def parse_destinations(stdout: str) -> list[dict[str, str]]:
    """The `Key : value` blocks of `tmutil destinationinfo`, one per destination."""
    destinations: list[dict[str, str]] = []
    for block in re.split(r"^=+\s*$", stdout, flags=re.MULTILINE):
        fields = dict(
            (key.strip(), value.strip())
            for key, sep, value in (line.partition(":") for line in block.splitlines())
            if sep and key.strip()
        )
        if fields:
            destinations.append(fields)
    return destinations


def latest_backup(stdout: str, zone: tzinfo | None = None) -> datetime | None:
    """The time of the backup `tmutil latestbackup` names, or None when it names none."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    found = STAMP.search(lines[-1]) if lines else None
    if not found:
        return None
    naive = datetime.strptime(found.group(1), "%Y-%m-%d-%H%M%S")
    return (naive.replace(tzinfo=zone) if zone else naive.astimezone()).astimezone(UTC)


def facts(destinations_out: str, latest_out: str, zone: tzinfo | None = None) -> Facts:
    """The job's facts from both commands' output (both exit 0 even without any backup: read the text)."""
    if NO_DESTINATION in destinations_out:
        return {"last_result": "failed", "error": "Time Machine has no backup destination configured"}
    destinations = parse_destinations(destinations_out)
    mount = next((d["Mount Point"] for d in destinations if d.get("Mount Point")), None)
    detail = {"destination": ", ".join(d.get("Name", d.get("ID", "?")) for d in destinations)}
    free = free_bytes(mount) if mount else None
    made = latest_backup(latest_out, zone)
    if made is None:
        reason = "the backup disk is not connected" if NOT_MOUNTED in latest_out else latest_out.strip()
        return {
            "last_result": "unknown",
            "error": reason or "tmutil names no backup",
            "destination_free_bytes": free,
            "detail": detail,
        }
    return {
        "last_result": "success",
        "last_run_ended_at": made,
        "last_success_at": made,
        "destination_free_bytes": free,
        "detail": detail,
    }


def collect(job: TimeMachineJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from tmutil."""
    destinations = context.run(["tmutil", "destinationinfo"], timeout=60.0)
    latest = context.run(["tmutil", "latestbackup"], timeout=120.0)
    return facts(destinations.stdout + destinations.stderr, latest.stdout + latest.stderr)
