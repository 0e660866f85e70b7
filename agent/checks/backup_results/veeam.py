"""Veeam Agent for Windows: event 190 (job finished, with its status) and 191 (failed, will retry)."""

from __future__ import annotations

import re
from datetime import datetime

from agent.checks import CheckContext
from agent.checks.backup_results import Facts
from agent.checks.backup_results.eventlog import Event, outcome, read_events
from agent.checks.backup_results.jobs import VeeamJob
from shared.backup_results import Result

LOG = "Veeam Agent"
STARTED, FINISHED, RETRY = 110, 190, 191
STATUS = re.compile(r"finished with (\w+)", re.IGNORECASE)
STATUS_RESULTS: dict[str, Result] = {
    "success": "success",
    "warning": "warning",
    "failed": "failed",
    "error": "failed",
}
# Windows event levels: 2 error, 3 warning, 4 information.
LEVEL_RESULTS: dict[int, Result] = {2: "failed", 3: "warning", 4: "success"}


def classify(event: Event) -> Result | None:
    """190 by the status its message names (by its level when the text is not English); 191 warns."""
    if event.id == RETRY:
        return "warning"  # this attempt failed; Veeam retries, and a 190 will tell how that ended
    if event.id != FINISHED:
        return None
    found = STATUS.search(event.message)
    status = STATUS_RESULTS.get(found.group(1).lower()) if found else None
    return status or LEVEL_RESULTS.get(event.level, "unknown")


def facts(events: list[Event], job_name: str | None = None) -> Facts:
    """The job's facts from Veeam's events (newest first), only those naming `job_name` when set."""
    if job_name:
        events = [event for event in events if job_name.lower() in event.message.lower()]
    return outcome(events, classify, started_ids={STARTED})


def collect(job: VeeamJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from the Veeam Agent event log."""
    return facts(read_events(context, LOG, {STARTED, FINISHED, RETRY}, provider="Veeam Agent"), job.job_name)
