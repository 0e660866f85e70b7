"""borg: the newest archive and its sizes (`borg info --json --last 1`); rc 1 warns, 2 and up fail."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from datetime import UTC, datetime, tzinfo
from typing import Any

from agent.checks import CheckContext
from agent.checks.backup_results import Facts, cut, free_bytes, merged
from agent.checks.backup_results.integrity import Outcome, checked
from agent.checks.backup_results.jobs import BorgJob, print_env_command, print_file_command
from agent.checks.backup_results.runs import last_run, with_run
from agent.checks.backup_results.script import state_dir_of
from agent.commands import CommandNotFound, CommandResult

WARNING_RC = 1
# `borg check` ends with "... check, errors found." when it found damage.
DAMAGED = "errors found"
# A `--list` line (status letter, space, path) is progress, not a problem.
LIST_LINE = re.compile(r"^[AMUEdbchsipx?-] \S")
# borg --log-json message ids of the failures a technician must tell apart.
FAILURE_TEXT = {
    "Repository.DoesNotExist": "no borg repository at {repo}",
    "Repository.InvalidRepository": "no borg repository at {repo}",
    "LockTimeout": "the repository {repo} is locked by another borg process (or a stale lock)",
    "LockFailed": "the repository {repo} could not be locked",
    "PassphraseWrong": "wrong passphrase for the repository {repo}",
}
LOCK_IDS = frozenset({"LockTimeout", "LockFailed"})


def environment(job: BorgJob) -> list[str]:
    """`env` assignments for borg: where the passphrase comes from, and never an interactive question."""
    if job.passphrase_file is not None:
        secret = [f"BORG_PASSCOMMAND={shlex.join(print_file_command(job.passphrase_file))}"]
    elif job.passphrase_env is not None:
        secret = [f"BORG_PASSCOMMAND={shlex.join(print_env_command(job.passphrase_env))}"]
    else:
        # No passphrase configured: an encrypted repository must fail, not wait for a prompt.
        secret = ["BORG_PASSPHRASE="]
    return [
        "env",
        *secret,
        "BORG_RELOCATED_REPO_ACCESS_IS_OK=no",
        # The agent only reads the repository the job names: an unencrypted one is the owner's choice, and
        # refusing it would report the job as failed forever.
        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes",
    ]


def info_argv(job: BorgJob) -> list[str]:
    """`borg info --json --last 1` with structured log messages on stderr.

    `--bypass-lock` reads while the nightly `borg create` holds the repository's lock, which would otherwise
    time out and read as a failed backup every night.
    """
    argv = [*environment(job), job.binary, "--log-json", "--bypass-lock", "info", "--json", "--last", "1"]
    if job.prefix:
        argv += ["--glob-archives", f"{job.prefix}*"]
    return [*argv, job.repository]


def local_stamp(value: str | None, zone: tzinfo | None = None) -> datetime | None:
    """A borg 1.x time (local time without offset) in UTC; `zone` is the device's zone (default: this one)."""
    if not value:
        return None
    naive = datetime.fromisoformat(value)
    return (naive.replace(tzinfo=zone) if zone else naive.astimezone()).astimezone(UTC)


def log_messages(stderr: str) -> list[dict[str, Any]]:
    """The `--log-json` messages on stderr; plain lines become messages without an id."""
    messages = []
    for line in stderr.splitlines():
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            message = {"message": line, "levelname": "ERROR"} if line.strip() else None
        if isinstance(message, dict) and message.get("type", "log_message") == "log_message":
            messages.append(message)
    return messages


def problem(stderr: str, repository: str) -> str:
    """What went wrong, by borg's message id where it has one we know."""
    messages = [m for m in log_messages(stderr) if m.get("levelname") in ("ERROR", "CRITICAL", "WARNING")]
    for message in messages:
        if message.get("msgid") in FAILURE_TEXT:
            return f"{FAILURE_TEXT[message['msgid']].format(repo=repository)} ({message.get('message', '')})"
    return "; ".join(texts(messages)) or "borg gave no reason"


def texts(messages: list[dict[str, Any]]) -> list[str]:
    """The messages' texts, without the Python traceback borg logs after an error it did not expect."""
    found = (m.get("message", "").strip() for m in messages)
    return [text for text in found if text and not text.startswith("Traceback (most recent call last)")]


def run_problems(stdout: str, stderr: str) -> tuple[list[str], str | None]:
    """The warnings (files skipped or changed) and the error of a wrapped `borg create`."""
    errors: list[str] = []
    fatal: str | None = None
    for message in log_messages(stderr):
        text = (message.get("message") or "").strip()
        if not text or LIST_LINE.match(text):
            continue
        if message.get("levelname") == "WARNING" or "[Errno" in text:
            errors.append(text)
        elif message.get("levelname") in ("ERROR", "CRITICAL"):
            fatal = text
    return errors, fatal


def archive_facts(answer: dict[str, Any], zone: tzinfo | None = None) -> Facts:
    """A good backup from the newest archive in `borg info --json` output; no archive means unknown."""
    archives = answer.get("archives") or []
    if not archives:
        return {"last_result": "unknown", "error": "no archive in the repository yet"}
    archive = archives[-1]
    stats = archive.get("stats") or {}
    started, ended = local_stamp(archive.get("start"), zone), local_stamp(archive.get("end"), zone)
    return {
        "last_result": "success",
        "last_run_started_at": started,
        "last_run_ended_at": ended,
        "last_success_at": ended or started,
        "duration_seconds": archive.get("duration"),
        "bytes_total": stats.get("original_size"),
        # Data only this archive holds: for the newest archive, what its run added.
        "bytes_added": stats.get("deduplicated_size"),
        "file_count": stats.get("nfiles"),
        "detail": {"archive": archive.get("name", ""), "hostname": archive.get("hostname", "")},
    }


def check_argv(job: BorgJob) -> list[str]:
    """`borg check --repository-only`: the segments and index, quickly, without the passphrase."""
    return [*environment(job), job.binary, "--log-json", "check", "--repository-only", job.repository]


def judge_check(result: CommandResult) -> Outcome:
    """Passed, damaged (borg's "errors found", with its errors) or not checked (locked, missing: why)."""
    if result.returncode == 0:
        return "passed", None
    messages = log_messages(result.stderr)
    errors = texts([m for m in messages if m.get("levelname") in ("ERROR", "CRITICAL")])
    if not any(DAMAGED in error or "integrity error" in error.lower() for error in errors):
        return "not checked", problem(result.stderr, "")
    return "damaged", "; ".join(errors)


def collect(job: BorgJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from `borg info` and the last `backup-run` record; rc 1 warns, rc 2 and up fails."""
    if shutil.which(job.binary) is None:
        # Run through `env`, a missing borg would read as a failed backup rather than a check that cannot look.
        raise CommandNotFound(f"{job.binary} is not installed or not on PATH")
    result = context.run(info_argv(job), timeout=540.0)
    local = job.repository if "://" not in job.repository and ":" not in job.repository[2:] else None
    free = None if local is None else free_bytes(local)
    # Also when `borg info` fails: a damaged repository is often why.
    integrity = checked(context, job.name, job.check_days, now, check_argv(job), judge_check, local)
    if result.returncode > WARNING_RC or (result.returncode and not result.stdout.strip()):
        locked = any(m.get("msgid") in LOCK_IDS for m in log_messages(result.stderr))
        failed = {
            # A lock says the repository is busy, not that the backup failed.
            "last_result": "unknown" if locked else "failed",
            "error": cut(problem(result.stderr, job.repository)),
        }
        return merged(failed, integrity, free)
    facts = archive_facts(json.loads(result.stdout))
    if result.returncode == WARNING_RC:
        facts |= {"last_result": "warning", "error": cut(problem(result.stderr, job.repository))}
    facts = with_run(facts, last_run(state_dir_of(context), job.name))
    return merged(facts, integrity, free)
