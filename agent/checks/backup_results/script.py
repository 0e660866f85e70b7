"""Script jobs: a backup script reports each run with `fieldpost-agent backup-report`, the check repeats it.

Each report is recorded in the agent's state directory (one JSON file per job), so the check keeps
reporting the job's last run on its schedule and the collector can tell when the script stops reporting.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from agent.checks import CheckContext
from agent.checks.backup_results import Facts, cut
from agent.checks.backup_results.jobs import ScriptJob
from agent.identity import write_private_file

RESULTS_DIR = "backup-reports"
Status = Literal["success", "warning", "failed"]


def state_dir_of(context: CheckContext) -> Path:
    """The agent's state directory, as the service passes it (else the platform default)."""
    from agent.config import platform_data_dir

    return context.state_dir or platform_data_dir()


def record_path(state_dir: Path, name: str) -> Path:
    """Where the last report of job `name` is kept (any job name makes a safe file name)."""
    return state_dir / RESULTS_DIR / f"{quote(name, safe='')}.json"


def recorded(state_dir: Path, name: str) -> dict[str, Any] | None:
    """The last report of job `name`, or None when its script has not reported yet."""
    try:
        return json.loads(record_path(state_dir, name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def record_result(
    state_dir: Path, name: str, status: Status, at: datetime, size_bytes: int | None = None,
    message: str | None = None,
) -> Facts:
    """Keep a run's result as the job's last report; returns the job's facts as the check reports them.

    The newest good run (success, or warning: a backup was still made) is carried over from the
    previous report.
    """
    before = recorded(state_dir, name) or {}
    earlier = before.get("good_bytes", [])
    good = status != "failed"
    record = {
        "job": name,
        "result": status,
        "at": at.isoformat(),
        "bytes": size_bytes,
        "message": message,
        "last_success_at": at.isoformat() if good else before.get("last_success_at"),
        # The sizes of the two newest good backups, newest first: the rule compares them.
        "good_bytes": [size_bytes, *earlier[:1]] if good else earlier,
    }
    path = record_path(state_dir, name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(path, (json.dumps(record, indent=2) + "\n").encode())
    return facts(record)


def facts(record: dict[str, Any]) -> Facts:
    """A job's facts from its last report."""
    status, message = record["result"], record.get("message")
    good_bytes = record.get("good_bytes") or []
    found: Facts = {
        "last_result": status,
        "last_run_ended_at": datetime.fromisoformat(record["at"]),
        "bytes_total": good_bytes[0] if good_bytes else None,
        "previous_bytes_total": good_bytes[1] if len(good_bytes) > 1 else None,
        "detail": {"reported_by": "fieldpost-agent backup-report"},
    }
    if record.get("last_success_at"):
        found["last_success_at"] = datetime.fromisoformat(record["last_success_at"])
    if message and status == "success":
        found["detail"]["message"] = cut(message)
    elif message:
        found["error"] = cut(message)
    return found


def collect(job: ScriptJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from its script's last report."""
    state_dir = state_dir_of(context)
    record = recorded(state_dir, job.name)
    if record is None:
        return {
            "last_result": "unknown",
            "error": f"its script has not reported yet (it reports with `fieldpost-agent backup-report "
            f"--job {job.name} --status success`; nothing in {record_path(state_dir, job.name)})",
        }
    return facts(record)
