"""Windows Server Backup: the outcome events of the Microsoft-Windows-Backup log."""

from __future__ import annotations

from datetime import datetime

from agent.checks import CheckContext
from agent.checks.backup_results import Facts
from agent.checks.backup_results.eventlog import Event, outcome, read_events
from agent.checks.backup_results.jobs import WsbJob
from shared.backup_results import Result

LOG = "Microsoft-Windows-Backup"
SUCCESS = frozenset({4})
WARNING = frozenset({7, 13})
FAILED = frozenset({5, 6, 8, 9, 17, 18, 19, 20, 21, 22, 49, 50, 52})
# "The backup operation has completed." follows failed runs too: on its own it proves nothing.
COMPLETED = frozenset({14})
RESULTS: dict[int, Result] = {
    **dict.fromkeys(SUCCESS, "success"),
    **dict.fromkeys(WARNING, "warning"),
    **dict.fromkeys(FAILED, "failed"),
}


def classify(event: Event) -> Result | None:
    """The run result an event stands for, or None for events that tell no result."""
    return RESULTS.get(event.id)


def facts(events: list[Event]) -> Facts:
    """The job's facts from the log's events, newest first."""
    found = outcome(events, classify, started_ids=set())
    if found["last_result"] == "unknown" and any(event.id in COMPLETED for event in events):
        found["error"] = "only 'backup operation has completed' events (14) found: not proof of success"
    return found


def collect(job: WsbJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from the Windows Server Backup event log."""
    return facts(read_events(context, LOG, SUCCESS | WARNING | FAILED | COMPLETED))
