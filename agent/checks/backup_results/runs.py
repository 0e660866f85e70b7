"""Run records: `fieldpost-agent backup-run` runs a restic or borg backup, keeps its exit code and what it
skipped, and the check corrects the repository's view with it (a snapshot exists even when files were skipped).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO
from urllib.parse import quote

from agent.checks.backup_results import Facts, cut
from agent.commands import C_LOCALE, CommandNotFound
from agent.identity import write_private_file
from shared.backup_results import Result

RUNS_DIR = "backup-runs"
MAX_ERRORS = 5
# restic: 3 = "some source files could not be read" (a snapshot was still made).
RESTIC_INCOMPLETE = 3
# borg's (default, legacy) exit codes: 1 = warning (files skipped or changed), 2 and up = error.
BORG_WARNING = 1
# The snapshot or archive time is the run's start as the tool saw it; borg 1.x keeps whole seconds.
SLACK = timedelta(seconds=2)


@dataclass
class RunRecord:
    """One run of a backup tool as the wrapper saw it."""

    job: str
    tool: str
    returncode: int
    started_at: str
    ended_at: str
    error_count: int = 0
    errors: list[str] = field(default_factory=list)
    fatal: str | None = None

    @property
    def started(self) -> datetime:
        """Start of the run."""
        return datetime.fromisoformat(self.started_at)

    @property
    def ended(self) -> datetime:
        """End of the run."""
        return datetime.fromisoformat(self.ended_at)


def record_path(state_dir: Path, name: str) -> Path:
    """Where the last run of job `name` is kept (any job name makes a safe file name)."""
    return state_dir / RUNS_DIR / f"{quote(name, safe='')}.json"


def last_run(state_dir: Path, name: str) -> RunRecord | None:
    """The last recorded run of job `name`, or None when it never ran through the wrapper."""
    try:
        return RunRecord(**json.loads(record_path(state_dir, name).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def save_run(state_dir: Path, record: RunRecord) -> None:
    """Keep `record` as its job's last run."""
    path = record_path(state_dir, record.job)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(path, (json.dumps(asdict(record), indent=2) + "\n").encode())


def verdict(record: RunRecord) -> Result:
    """success, warning (files skipped, a backup still made) or failed, from the tool's documented exit codes."""
    if record.returncode == 0:
        return "success"
    if record.tool == "restic" and record.returncode == RESTIC_INCOMPLETE:
        return "warning"
    if record.tool == "borg" and record.returncode == BORG_WARNING:
        return "warning"
    return "failed"


def describe(record: RunRecord) -> str:
    """What went wrong in the run, for the report's error."""
    if record.returncode < 0:
        head = f"{record.tool} was killed by signal {-record.returncode}"
    elif verdict(record) == "warning":
        count = record.error_count or "some"
        what = "files could not be read" if record.tool == "restic" else "warnings (files skipped or changed)"
        head = f"{count} {what} (exit status {record.returncode})"
    else:
        head = f"{record.tool} failed with exit status {record.returncode}"
    shown = [record.fatal] if record.fatal else []
    shown += record.errors
    return cut(head + (": " + "; ".join(shown) if shown else ""))


def with_run(facts: Facts, record: RunRecord | None) -> Facts:
    """The repository's facts corrected by the last wrapped run.

    The run that made the newest backup and skipped files makes it a warning; a run newer than the newest
    backup that did not succeed is the last run (failed or warning), the repository's last success kept.
    """
    if record is None or verdict(record) == "success":
        return facts
    newest: datetime | None = facts.get("last_run_started_at")
    if newest is not None and record.ended + SLACK < newest:
        return facts  # an older run; the repository has a newer backup made another way
    made_newest = newest is not None and record.started - SLACK <= newest
    if made_newest:
        return {**facts, "last_result": verdict(record), "error": describe(record)}
    return {
        **facts,
        "last_result": verdict(record),
        "last_run_started_at": record.started,
        "last_run_ended_at": record.ended,
        "duration_seconds": (record.ended - record.started).total_seconds(),
        "error": describe(record),
        "detail": {**facts.get("detail", {}), "exit_status": str(record.returncode)},
    }


def _pump(source: IO[str], sink: IO[str], kept: list[str]) -> None:
    """Copy the tool's output through (its log stays where the scheduler puts it) and keep it."""
    for line in source:
        sink.write(line)
        sink.flush()
        kept.append(line)


def run_tool(argv: Sequence[str]) -> tuple[int, str, str]:
    """Run a backup command to its end, its output passed through; returns (exit status, stdout, stderr)."""
    try:
        process = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
            errors="replace", env={**os.environ, **C_LOCALE},
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(f"{argv[0]} is not installed or not on PATH") from exc
    out: list[str] = []
    err: list[str] = []
    pumps = [
        threading.Thread(target=_pump, args=(process.stdout, sys.stdout, out), daemon=True),
        threading.Thread(target=_pump, args=(process.stderr, sys.stderr, err), daemon=True),
    ]
    for pump in pumps:
        pump.start()
    returncode = process.wait()
    for pump in pumps:
        pump.join()
    return returncode, "".join(out), "".join(err)


def record_run(
    state_dir: Path, job: str, tool: str, returncode: int, started: datetime, ended: datetime,
    errors: list[str], fatal: str | None,
) -> RunRecord:
    """Keep a finished run (its per-file problems and fatal error) as job `job`'s last run and return it."""
    record = RunRecord(
        job=job, tool=tool, returncode=returncode, started_at=started.isoformat(), ended_at=ended.isoformat(),
        error_count=len(errors), errors=[cut(error)[:300] for error in errors[:MAX_ERRORS]],
        fatal=cut(fatal)[:500] if fatal else None,
    )
    save_run(state_dir, record)
    return record
