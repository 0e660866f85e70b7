"""Windows Server Backup: the outcome events of the Microsoft-Windows-Backup log and of the Application log."""

from __future__ import annotations

from collections.abc import Sequence
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
# The Backup source's failure reports in the Application log ("Backup started at '...' failed ..."). They
# outlive the small operational log (cleared, rolled over or disabled) and are what log forwarders collect.
APPLICATION_LOG = "Application"
APPLICATION_EVENTS = frozenset({517, 521, 528, 544, 545, 546, 561, 564, 612})
# Event levels: 1 Critical, 2 Error, 3 Warning.
LEVEL_RESULTS: dict[int, Result] = {1: "failed", 2: "failed", 3: "warning"}
RESULTS: dict[int, Result] = {
    **dict.fromkeys(SUCCESS, "success"),
    **dict.fromkeys(WARNING, "warning"),
    **dict.fromkeys(FAILED, "failed"),
}


def classify(event: Event) -> Result | None:
    """The run result an event stands for, or None for events that tell no result.

    Application-log events are judged by their level: an error is a failed run, a warning a run with
    warnings, and an informational one tells no result.
    """
    if event.id in APPLICATION_EVENTS:
        return LEVEL_RESULTS.get(event.level)
    return RESULTS.get(event.id)


def facts(events: list[Event], application: Sequence[Event] = ()) -> Facts:
    """The job's facts from the operational log's and the Application log's events (each newest first)."""
    events = sorted([*events, *application], key=lambda event: event.time, reverse=True)
    found = outcome(events, classify, started_ids=set())
    if found["last_result"] == "unknown" and any(event.id in COMPLETED for event in events):
        found["error"] = "only 'backup operation has completed' events (14) found: not proof of success"
    return found


def collect(job: WsbJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from the Windows Server Backup event log and its failures in the Application log."""
    events = read_events(context, LOG, SUCCESS | WARNING | FAILED | COMPLETED)
    return facts(events, read_events(context, APPLICATION_LOG, APPLICATION_EVENTS, provider=LOG))
