"""Repository integrity: `restic check` / `borg check --repository-only`, at most every `check_days` per job.

The outcome is kept in the agent's state directory, so the check reports it on every run until the next
integrity check, and a damaged repository stays critical in between.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from agent.checks import CheckContext
from agent.checks.backup_results import Facts, cut
from agent.checks.backup_results.script import state_dir_of
from agent.commands import CommandResult
from agent.identity import write_private_file

log = logging.getLogger(__name__)

CHECKS_DIR = "backup-checks"
# A quick check reads the repository's structure, not all its data; a remote one still takes minutes.
CHECK_TIMEOUT = 300.0
OUTSIDE_WINDOW_DELAY = timedelta(days=1)
# What an integrity check said: passed, found damage, or could not look (locked, unreachable: try again).
Outcome = tuple[Literal["passed", "damaged", "not checked"], str | None]


@dataclass
class IntegrityRecord:
    """The last integrity check of one job's repository."""

    job: str
    at: str
    damage: str | None = None

    @property
    def checked_at(self) -> datetime:
        """When the check ran."""
        return datetime.fromisoformat(self.at)


def record_path(state_dir: Path, name: str) -> Path:
    """Where the last integrity check of job `name` is kept."""
    return state_dir / CHECKS_DIR / f"{quote(name, safe='')}.json"


def last_check(state_dir: Path, name: str) -> IntegrityRecord | None:
    """The last integrity check of job `name`, or None when its repository was never checked."""
    try:
        return IntegrityRecord(**json.loads(record_path(state_dir, name).read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None


def is_due(record: IntegrityRecord | None, check_days: int, now: datetime, maintenance: bool) -> bool:
    """An integrity check is due: enabled and never run, or the last one `check_days` or more ago.

    Outside the nightly maintenance window it waits a day longer, so it runs in the window when the PC is
    on at night, and still runs when it is not.
    """
    if check_days <= 0:
        return False
    if record is None:
        return True
    delay = timedelta(0) if maintenance else OUTSIDE_WINDOW_DELAY
    return now - record.checked_at >= timedelta(days=check_days) + delay


def integrity_facts(record: IntegrityRecord | None) -> Facts:
    """The job's integrity facts from its last check."""
    if record is None:
        return {}
    return {"integrity_checked_at": record.checked_at, "integrity_error": record.damage}


def foreign_owner(local_path: str | None) -> str | None:
    """Why the agent must not check a local repository another user owns, else None.

    The check writes in the repository (a lock, borg's index and config): files the agent's user would
    own, which the backup's own user could then not change, breaking the next backup.
    """
    geteuid = getattr(os, "geteuid", None)
    if local_path is None or geteuid is None:
        return None
    try:
        owner = os.stat(local_path).st_uid
    except OSError:
        return None
    if owner == geteuid():
        return None
    return (f"not checked: the repository belongs to uid {owner}, not to the agent's user; run the check "
            "as that user or set check_days = 0")


def checked(
    context: CheckContext, name: str, check_days: int, now: datetime, argv: Sequence[str],
    judge: Callable[[CommandResult], Outcome], local_path: str | None = None,
) -> Facts:
    """Run the integrity check `argv` when due and keep its outcome; the job's integrity facts either way.

    `local_path` is the repository's folder when it is on this device.
    """
    state_dir = state_dir_of(context)
    record = last_check(state_dir, name)
    if not is_due(record, check_days, now, context.maintenance):
        return integrity_facts(record)
    refused = foreign_owner(local_path)
    if refused:
        return {**integrity_facts(record), "detail": {"integrity": refused}}
    try:
        outcome, text = judge(context.run(argv, timeout=CHECK_TIMEOUT))
    except subprocess.TimeoutExpired:
        outcome, text = "not checked", f"timed out after {CHECK_TIMEOUT:g} s"
    if outcome == "not checked":
        # Tried again at the next run; the last outcome stands meanwhile.
        log.info("integrity check of backup job %s not done: %s", name, text)
        return integrity_facts(record)
    damage = cut(text or "the check found errors") if outcome == "damaged" else None
    record = IntegrityRecord(job=name, at=now.isoformat(), damage=damage)
    path = record_path(state_dir, name)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(path, (json.dumps(asdict(record), indent=2) + "\n").encode())
    return integrity_facts(record)
