"""restic: the newest snapshot (`snapshots --json`), its size (`stats --json`) and the last run's log."""

from __future__ import annotations

import json
import os
import re
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.checks import CheckContext
from agent.checks.backup_results import Facts, cut, free_bytes, merged
from agent.checks.backup_results.integrity import Outcome, checked
from agent.checks.backup_results.jobs import ResticJob, print_env_command
from agent.checks.backup_results.runs import last_run, with_run
from agent.checks.backup_results.script import state_dir_of
from agent.checks.rootfs import mtime
from agent.commands import CommandResult

# Exit codes restic documents (10-12 since 0.17); older versions exit 1 and say it on stderr.
NO_REPOSITORY, LOCKED, WRONG_PASSWORD = 10, 11, 12
INCOMPLETE = 3
STDERR_SIGNS = (
    (NO_REPOSITORY, ("Is there a repository at the following location?", "repository does not exist")),
    (LOCKED, ("repository is already locked", "unable to create lock")),
    (WRONG_PASSWORD, ("wrong password or no key found",)),
)
FAILURE_TEXT = {
    NO_REPOSITORY: "no restic repository at {repo}",
    LOCKED: "the repository {repo} is locked by another restic process (or a stale lock)",
    WRONG_PASSWORD: "wrong password for the repository {repo}",
}
# `restic check` ends with this when it found damage (other failures: the check could not look).
DAMAGED = "repository contains errors"
# Its lines naming what is damaged.
DAMAGE_LINES = ("error", "does not exist", "pack ", "tree ", "blob ", "Fatal:")
# Backends that are not a local path: free space there cannot be seen from this device.
REMOTE = re.compile(r"^(sftp|rest|s3|b2|azure|gs|swift|rclone):")


def password_args(job: ResticJob) -> list[str]:
    """restic flags naming where the password comes from; the password itself never is an argument."""
    if job.password_file is not None:
        return ["--password-file", str(job.password_file)]
    # restic splits the command itself, honouring double quotes.
    command = " ".join(f'"{part}"' for part in print_env_command(job.password_env or ""))
    return ["--password-command", command]


def snapshots_argv(job: ResticJob, hostname: str) -> list[str]:
    """`restic snapshots --json` for the newest snapshot of this device (or the job's host), paths and tags.

    Without a host filter, a repository several PCs share would show the newest snapshot of any of them,
    hiding this device's stale backup. `--no-lock` reads while a backup, prune or check holds the lock.
    """
    argv = [job.binary, "--repo", job.repository, *password_args(job), "--no-lock", "--json", "snapshots",
            "--latest", "1"]
    host = job.host or hostname
    if host != "*":
        argv += ["--host", host]
    for path in job.paths:
        argv += ["--path", path]
    if job.tags:
        argv += ["--tag", ",".join(job.tags)]
    return argv


def stats_argv(job: ResticJob, snapshot_id: str) -> list[str]:
    """`restic stats --json` of one snapshot (restore size and file count)."""
    return [job.binary, "--repo", job.repository, *password_args(job), "--no-lock", "--json", "stats", snapshot_id]


def stamp(value: str | None) -> datetime | None:
    """A restic RFC 3339 time (nanoseconds, any offset) in UTC."""
    return datetime.fromisoformat(value).astimezone(UTC) if value else None


def newest_snapshot(stdout: str) -> dict[str, Any] | None:
    """The newest snapshot in `restic snapshots --json` output (a list, or a list of groups)."""
    answer = json.loads(stdout or "[]")
    snapshots = []
    for item in answer or []:
        snapshots += item.get("snapshots", []) if "group_key" in item else [item]
    return max(snapshots, key=lambda snap: stamp(snap["time"]), default=None)


def parse_stats(stdout: str) -> tuple[int | None, int | None]:
    """Restore size and file count from `restic stats --json`."""
    answer = json.loads(stdout)
    return answer.get("total_size"), answer.get("total_file_count")


def known_code(returncode: int, stderr: str) -> tuple[int, str]:
    """The exit code that tells what went wrong (from stderr before 0.17) and restic's own message."""
    code = returncode
    message = ""
    for line in stderr.splitlines():
        # restic >= 0.17 with --json ends with {"message_type":"exit_error","code":..,"message":..} on stderr.
        if line.startswith("{") and '"exit_error"' in line:
            exit_error = json.loads(line)
            code, message = exit_error.get("code", code), exit_error.get("message", "")
    if code not in FAILURE_TEXT:
        code = next((known for known, signs in STDERR_SIGNS if any(sign in stderr for sign in signs)), code)
    return code, message


def failure(returncode: int, stderr: str, repository: str) -> str:
    """What a failed restic command means, from the exit code or (before 0.17) from stderr."""
    code, message = known_code(returncode, stderr)
    text = message or next(
        (line for line in stderr.splitlines() if line.strip()), f"exit status {returncode}"
    )
    if code in FAILURE_TEXT:
        return f"{FAILURE_TEXT[code].format(repo=repository)} ({text.strip()})"
    return f"restic failed with exit status {returncode}: {text.strip()}"


@dataclass
class BackupLog:
    """What the JSON lines of one `restic backup --json` run say."""

    summary: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    exit_error: str | None = None


def file_error(message: dict[str, Any]) -> str:
    """One `--json` error line as text; restic < 0.17 gives {Op, Path, Err} instead of a message."""
    error = message.get("error") or {}
    text = error.get("message")
    if not text and "Op" in error:
        errno = error.get("Err")
        text = f"{error['Op']}: {os.strerror(errno) if isinstance(errno, int) else errno}"
    return f"{message.get('item', '')}: {text or ''}".strip(": ")


def parse_backup_log(text: str) -> BackupLog:
    """Summary, per-file errors and fatal error of a `restic backup` log (`--json` or plain text)."""
    log = BackupLog()
    for line in text.splitlines():
        if line.startswith("error: "):
            log.errors.append(line.removeprefix("error: "))  # without --json, per-file errors are text
        if not line.startswith("{"):
            continue  # a line of plain text (restic before 0.17 prints fatal errors as text)
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut by a crash
        kind = message.get("message_type")
        if kind == "summary":
            log.summary = message
        elif kind == "error":
            log.errors.append(file_error(message))
        elif kind == "exit_error":
            log.exit_error = message.get("message")
    if log.exit_error is None and log.summary is None:
        fatal = [line for line in text.splitlines() if line.startswith("Fatal:")]
        log.exit_error = fatal[-1] if fatal else None
    return log


def run_problems(stdout: str, stderr: str) -> tuple[list[str], str | None]:
    """The files a wrapped `restic backup` could not read and its fatal error."""
    log = parse_backup_log(stdout + "\n" + stderr)
    return log.errors, log.exit_error


def same_snapshot(log: BackupLog, snapshot: dict[str, Any]) -> bool:
    """The log's run made this snapshot (restic < 0.17 logs the short id)."""
    logged = (log.summary or {}).get("snapshot_id") or ""
    return bool(logged) and snapshot["id"].startswith(logged)


def snapshot_facts(snapshot: dict[str, Any], size: int | None, files: int | None) -> Facts:
    """A good backup from a snapshot; restic >= 0.17 stores the run's summary in the snapshot itself."""
    summary = snapshot.get("summary") or {}
    started = stamp(summary.get("backup_start")) or stamp(snapshot["time"])
    ended = stamp(summary.get("backup_end"))
    return {
        "last_result": "success",
        "last_run_started_at": started,
        "last_run_ended_at": ended,
        "last_success_at": ended or started,
        "duration_seconds": (ended - started).total_seconds() if started and ended else None,
        "bytes_total": summary.get("total_bytes_processed", size),
        "bytes_added": summary.get("data_added"),
        "file_count": summary.get("total_files_processed", files),
        "detail": {"snapshot_id": snapshot["id"][:8], "hostname": snapshot.get("hostname", "")},
    }


def with_log(
    facts: Facts, snapshot: dict[str, Any] | None, log: BackupLog, logged_at: datetime | None
) -> Facts:
    """Facts corrected by the last run's log: a run that made no snapshot failed; errors mean incomplete."""
    if snapshot is not None and same_snapshot(log, snapshot):
        summary = log.summary or {}
        facts = {
            **facts,
            "bytes_added": summary.get("data_added", facts.get("bytes_added")),
            "duration_seconds": summary.get("total_duration", facts.get("duration_seconds")),
        }
        if log.errors:
            # restic exits 3 here: the snapshot exists but some source files could not be read.
            facts |= {
                "last_result": "warning",
                "error": cut(f"{len(log.errors)} files not read: " + "; ".join(log.errors[:5])),
            }
        return facts
    newest = facts.get("last_run_started_at")
    if log.summary is None and logged_at is not None and (newest is None or logged_at > newest):
        reason = log.exit_error or (log.errors[-1] if log.errors else "the run ended without a snapshot")
        return {
            **facts,
            "last_result": "failed",
            "last_run_started_at": None,
            "last_run_ended_at": logged_at,
            "duration_seconds": None,
            "error": cut(reason),
        }
    return facts


def check_argv(job: ResticJob) -> list[str]:
    """`restic check` of the repository's structure (not --read-data, which reads every pack).

    It takes the exclusive lock, so it never judges a repository a backup is still writing.
    """
    return [job.binary, "--repo", job.repository, *password_args(job), "check"]


def judge_check(result: CommandResult) -> Outcome:
    """Passed, damaged (restic's "repository contains errors", with the errors) or not checked (why)."""
    if result.returncode == 0:
        return "passed", None
    output = result.stdout + "\n" + result.stderr
    if DAMAGED not in output:
        return "not checked", failure(result.returncode, result.stderr, "")
    errors = [line.strip() for line in output.splitlines() if any(sign in line for sign in DAMAGE_LINES)]
    return "damaged", "; ".join(errors)


def collect(job: ResticJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from the repository, corrected by the last run's log or `backup-run` record."""
    listed = context.run(snapshots_argv(job, socket.gethostname()), timeout=300.0)
    local = None if REMOTE.match(job.repository) else job.repository.removeprefix("local:")
    free = None if local is None else free_bytes(local)
    # Also when the listing fails: a damaged repository is often why.
    integrity = checked(context, job.name, job.check_days, now, check_argv(job), judge_check, local)
    if listed.returncode != 0:
        failed = {
            # A lock (restic without --no-lock support, or a stale exclusive one) says nothing of the backup.
            "last_result": "unknown" if listed.returncode == LOCKED else "failed",
            "error": cut(failure(listed.returncode, listed.stderr, job.repository)),
        }
        return merged(failed, integrity, free)
    snapshot = newest_snapshot(listed.stdout)
    if snapshot is None:
        facts: Facts = {"last_result": "unknown", "error": "no snapshot in the repository yet"}
    else:
        size = files = None
        if not snapshot.get("summary"):
            counted = context.run(stats_argv(job, snapshot["id"]), timeout=300.0)
            if counted.returncode == 0:
                size, files = parse_stats(counted.stdout)
        facts = snapshot_facts(snapshot, size, files)
    if job.log_file is not None:
        text = (
            Path(job.log_file).read_text(encoding="utf-8", errors="replace") if job.log_file.exists() else ""
        )
        facts = with_log(facts, snapshot, parse_backup_log(text), mtime(job.log_file))
    facts = with_run(facts, last_run(state_dir_of(context), job.name))
    return merged(facts, integrity, free)
