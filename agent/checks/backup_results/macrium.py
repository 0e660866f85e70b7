"""Macrium Reflect: the newest log file and the texts it contains, or the event ids set up in Reflect."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from agent.checks import CheckContext
from agent.checks.backup_results import Facts
from agent.checks.backup_results.eventlog import Event, outcome, read_events
from agent.checks.backup_results.jobs import MacriumJob
from agent.checks.rootfs import mtime
from shared.backup_results import Result


def event_classifier(job: MacriumJob) -> Callable[[Event], Result | None]:
    """Classify events by the ids configured for this job."""
    results: dict[int, Result] = {
        **dict.fromkeys(job.success_event_ids, "success"),
        **dict.fromkeys(job.warning_event_ids, "warning"),
        **dict.fromkeys(job.failure_event_ids, "failed"),
    }

    def classify(event: Event) -> Result | None:
        return results.get(event.id)

    return classify


def log_result(text: str, job: MacriumJob) -> Result:
    """A log's result by the configured texts; failure text wins over warning over success."""
    texts: list[tuple[str | None, Result]] = [
        (job.failure_text, "failed"),
        (job.warning_text, "warning"),
        (job.success_text, "success"),
    ]
    return next((result for wanted, result in texts if wanted and wanted in text), "unknown")


def log_facts(job: MacriumJob) -> Facts:
    """Facts from the log files: the newest log is the last run, the newest good one the last success."""
    logs = sorted(Path(job.log_dir or ".").glob(job.log_glob), key=lambda p: p.stat().st_mtime, reverse=True)
    if not logs:
        return {"last_result": "unknown", "error": f"no log file matching {job.log_glob} in {job.log_dir}"}
    results = [(log, log_result(log.read_text(encoding="utf-8", errors="replace"), job)) for log in logs]
    last, result = results[0]
    success = next((log for log, verdict in results if verdict == "success"), None)
    return {
        "last_result": result,
        "last_run_ended_at": mtime(last),
        "last_success_at": mtime(success) if success else None,
        "error": None if result == "success" else f"see the Reflect log {last.name}",
        "detail": {"log_file": last.name},
    }


def collect(job: MacriumJob, context: CheckContext, now: datetime) -> Facts:
    """The job's facts from Reflect's log files or its events."""
    if job.log_dir is not None:
        return log_facts(job)
    ids = {*job.success_event_ids, *job.warning_event_ids, *job.failure_event_ids}
    events = read_events(context, job.event_log, ids, job.event_source)
    return outcome(events, event_classifier(job), started_ids=set())
