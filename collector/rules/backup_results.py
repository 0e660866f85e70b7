"""The backup_results rule: per job, did the last run work, is a run overdue, and does the backup look right.

One evaluation per job, subject `backup:<job name>`, its status the worst of these findings:

* critical: the last run failed; the repository's integrity check (restic/borg check) found damage; or no
  success within 3 periods of the schedule.
* warning: late (a due run has not happened within the grace); finished with warnings; nothing added
  for N runs in a row where earlier runs did add data; total size dropped by more than X % against the
  run before; free space at the destination below a threshold.
* ok: a job that has never run is fine until its first run is due (silence is not success: once the first
  run is due and its grace has passed, it is late); otherwise the next good run resolves an open alert.

A run's error in a summary is one line, the last of its log (where tools print the error); the details keep
all of it.

Schedules: "daily" and "weekly" are periods counted from the last run; a cron expression (read in the
device's time zone) has due times, so a Sunday-only job is not late on Tuesday.

Settings, from `history.settings["backup_results"]` (all optional):

| key | default | meaning |
| --- | --- | --- |
| daily_grace_hours | 6 | lateness allowed after a daily job's 24 h |
| weekly_grace_hours | 24 | lateness allowed after a weekly job's 7 days |
| cron_grace_hours | 6 | lateness allowed after a cron job's due time |
| critical_periods | 3 | periods (or due times) without a success before it is critical |
| unchanged_runs | 3 | runs in a row adding nothing before it warns (only if earlier runs added data) |
| size_drop_percent | 30 | drop of the total size against the run before that warns |
| min_free_gib | 10 | free space at the destination below which it warns |

A job's own `grace_seconds` (from the agent's config) overrides the grace of its schedule.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec, Status
from collector.rules.pending_reboot import span
from shared.backup_results import PERIODS, BackupJob, BackupResults, cron_trigger

RULE = "backup_results"
SETTINGS = "backup_results"
DEFAULTS: dict[str, float] = {
    "daily_grace_hours": 6,
    "weekly_grace_hours": 24,
    "cron_grace_hours": 6,
    "critical_periods": 3,
    "unchanged_runs": 3,
    "size_drop_percent": 30,
    "min_free_gib": 10,
}
# Signals of earlier checks the rule wants: 15-minute checks over 8 days (a weekly job's period + grace).
HISTORY = 8 * 96
# A run that starts a little before its due time (clock skew, a scheduler firing early) still counts.
EARLY = timedelta(minutes=15)
ORDER: dict[Status, int] = {"ok": 0, "unknown": 1, "warning": 2, "critical": 3}


def setting(history: History, key: str) -> float:
    """One threshold from the rule's settings, else its default."""
    configured: Mapping[str, Any] = history.settings.get(SETTINGS) or {}
    return float(configured.get(key, DEFAULTS[key]))


def grace(job: BackupJob, history: History) -> timedelta:
    """How late a due run may be: the job's own grace, else the schedule's default."""
    if job.grace_seconds is not None:
        return timedelta(seconds=job.grace_seconds)
    kind = job.schedule if job.schedule in PERIODS else "cron"
    return timedelta(hours=setting(history, f"{kind}_grace_hours"))


def due_times(trigger: CronTrigger, until: datetime, count: int) -> list[datetime]:
    """The last `count` fire times at or before `until`, newest first (fewer if the schedule has fewer)."""
    window = timedelta(hours=1)
    while True:
        start = until - window
        fires: list[datetime] = []
        fire = trigger.get_next_fire_time(None, start)
        while fire is not None and fire <= until:
            fires.append(fire)
            fire = trigger.get_next_fire_time(fire, fire + timedelta(seconds=1))
        if len(fires) >= count or window > timedelta(days=800):
            return fires[::-1][:count]
        window *= 2


def entries(name: str, history: History) -> list[BackupJob]:
    """This job's entries in earlier signals, newest first."""
    return [
        job
        for signal in history.previous
        if isinstance(signal, BackupResults)
        for job in signal.jobs
        if job.name == name
    ]


def activity(job: BackupJob) -> datetime | None:
    """When the job last did anything the tool recorded: a run ending or starting, or a success."""
    times = [t for t in (job.last_run_ended_at, job.last_run_started_at, job.last_success_at) if t]
    return max(times, default=None)


def last_line(text: str | None, limit: int = 200) -> str:
    """The last non-empty line of a log or error, its spaces collapsed, at most `limit` characters (its end)."""
    lines = [" ".join(line.split()) for line in (text or "").splitlines()]
    line = next((line for line in reversed(lines) if line), "")
    return line if len(line) <= limit else "…" + line[-(limit - 1):]


def newest(*times: datetime | None) -> datetime | None:
    """The newest of the known times."""
    return max((t for t in times if t is not None), default=None)


def configured_since(job: BackupJob, collected_at: datetime, history: History) -> datetime:
    """When the collector first saw this job: the oldest of its unbroken run of earlier signals."""
    since = collected_at
    for signal in history.previous:
        if not isinstance(signal, BackupResults) or all(j.name != job.name for j in signal.jobs):
            break
        since = signal.collected_at
    return since


def timing(
    job: BackupJob,
    since: datetime,
    last_run: datetime | None,
    last_success: datetime | None,
    history: History,
) -> list[tuple[Status, str]]:
    """Late and long-without-success findings for the job's schedule."""
    allowed = grace(job, history)
    periods = int(setting(history, "critical_periods"))
    now = history.now
    # A job that never ran (or never succeeded) is measured from when it was configured.
    ran, succeeded = last_run or since, last_success or since
    if job.schedule in PERIODS:
        period = PERIODS[job.schedule]
        late = now > ran + period + allowed
        starved = now > succeeded + periods * period + allowed
    else:
        due = due_times(cron_trigger(job.schedule, job.timezone), now - allowed, periods)
        late = bool(due) and ran < due[0] - EARLY
        starved = len(due) == periods and succeeded < due[-1] - EARLY
    found: list[tuple[Status, str]] = []
    if starved:
        found.append(("critical", f"no successful run within {periods} scheduled periods ({job.schedule})"))
    if late:
        found.append(
            (
                "warning",
                "late: "
                + (
                    f"last run {span(now - last_run)} ago"
                    if last_run
                    else "no run reported since it was configured"
                ),
            )
        )
    return found


def runs(job: BackupJob, earlier: list[BackupJob]) -> list[BackupJob]:
    """Distinct finished runs that stored something, newest first (one entry per run time)."""
    seen: set[datetime] = set()
    distinct = []
    for entry in [job, *earlier]:
        when = activity(entry)
        if when is None or when in seen or entry.last_result not in ("success", "warning"):
            continue
        seen.add(when)
        distinct.append(entry)
    return distinct


def content(job: BackupJob, earlier: list[BackupJob], history: History) -> list[tuple[Status, str]]:
    """Size anomalies: nothing added for N runs where data usually changes; a large drop in total size."""
    found: list[tuple[Status, str]] = []
    distinct = runs(job, earlier)
    needed = int(setting(history, "unchanged_runs"))
    recent, older = distinct[:needed], distinct[needed:]
    if (
        len(recent) == needed
        and all(run.bytes_added == 0 for run in recent)
        and any(run.bytes_added for run in older)
    ):
        found.append(
            ("warning", f"the last {needed} runs added nothing, earlier runs did: is the source still there?")
        )
    previous = job.previous_bytes_total
    # Only like with like: an incremental image is not a full one that shrank.
    if previous is None and len(distinct) > 1 and distinct[0] is job and (
        distinct[1].detail.get("kind") == job.detail.get("kind")
    ):
        previous = distinct[1].bytes_total
    limit = setting(history, "size_drop_percent")
    if job.bytes_total is not None and previous:
        drop = (previous - job.bytes_total) * 100 / previous
        if drop > limit:
            found.append(
                ("warning", f"total size dropped {drop:.0f} % ({previous} -> {job.bytes_total} bytes)")
            )
    return found


def evaluate_job(job: BackupJob, collected_at: datetime, history: History) -> Evaluation:
    """The verdict on one job."""
    earlier = entries(job.name, history)
    last_run = newest(activity(job), *(activity(e) for e in earlier))
    last_success = newest(job.last_success_at, *(e.last_success_at for e in earlier))
    since = configured_since(job, collected_at, history)
    found = timing(job, since, last_run, last_success, history)
    if job.last_result == "failed":
        found.append(("critical", f"last run failed: {last_line(job.error) or 'no reason given'}"))
    elif job.last_result == "warning":
        found.append(("warning", f"last run finished with warnings: {last_line(job.error) or 'no detail given'}"))
    if job.integrity_error:
        # When it was checked is in the details: a date in the summary would re-notify at every re-check.
        found.append(("critical", f"repository damaged: {job.integrity_error}"))
    found += content(job, earlier, history)
    minimum = setting(history, "min_free_gib") * 2**30
    if job.destination_free_bytes is not None and job.destination_free_bytes < minimum:
        found.append(
            ("warning", f"only {job.destination_free_bytes / 2**30:.1f} GiB free at the destination")
        )
    status: Status = max((s for s, _ in found), key=ORDER.__getitem__, default="ok")
    if last_success:
        good = f"last good backup {span(history.now - last_success)} ago"
    else:
        good = "first run not due yet" if last_run is None else "no good backup known"
    reasons = "; ".join(text for s, text in sorted(found, key=lambda f: -ORDER[f[0]]))
    summary = f"{job.name} ({job.tool}): {reasons or good}"
    details = {
        **job.model_dump(mode="json", exclude_none=True),
        "findings": [text for _, text in found],
        "last_run_known": last_run.isoformat() if last_run else None,
        "last_success_known": last_success.isoformat() if last_success else None,
    }
    return Evaluation(RULE, f"backup:{job.name}", status, summary, details)


def client_sentence(c: Caught) -> str:
    """What a business owner reads for a backup job's alert."""
    job = c.text("name") or c.after_subject("backup:")
    backup = f"The backup \u201c{job}\u201d on {c.device}" if job else f"A backup on {c.device}"
    if c.text("integrity_error"):
        what = "was found damaged when we checked it"
    elif c.text("last_result") == "failed":
        what = "failed"
    elif c.critical:
        what = "had not completed for several days"
    else:
        what = "needed attention"
    fixed = "; we fixed it and it runs again" if c.outcome != "open" else ""
    return f"{backup} {what}{fixed}."


def evaluate(signal: BackupResults, history: History) -> list[Evaluation]:
    """One evaluation per configured job."""
    return [evaluate_job(job, signal.collected_at, history) for job in signal.jobs]


SPEC = RuleSpec(evaluate, history=HISTORY, alerts=(
    AlertRule(RULE, action="read the backup job's log, fix the cause and run it again", sentence=client_sentence),
))
