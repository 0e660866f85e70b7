"""Push jobs: a backup script reports each run by calling its job's URL, in the style of Healthchecks.

A push job protects one enrolled device. Every ping is stored, the job's state (newest start, end and
good runs) becomes a `BackupJob` like the agent's providers report, and the `backup_results` rule judges
it in the same transaction that applies the verdict to the device's alerts. A late job sends nothing, so
a sweep judges every push job once a minute against the clock.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from collector.alerts import dedupe
from collector.alerts.dedupe import OnChange
from collector.auth import token_hash
from collector.rules import Evaluation, History, backup_results
from collector.settings import Settings
from collector.store import AgentRow, PingKind, PushJobRow, PushJobState, Store, Tx
from shared.backup_results import BackupJob, BackupResults, Result
from shared.clock import Clock, system_clock

log = logging.getLogger(__name__)

PING_KINDS: tuple[PingKind, ...] = ("start", "success", "warning", "fail")
RESULTS: dict[PingKind, Result] = {"success": "success", "warning": "warning", "fail": "failed"}
TOOL = "script"
MAX_LOG = 10 * 1024
MAX_ERROR = 2000  # what BackupJob.error takes
SWEEP_SECONDS = 60.0
TOKEN_PREFIX = "fp_push_"


class PushJobRefused(Exception):
    """A push job cannot be created; the message says why."""


class PushJobTaken(PushJobRefused):
    """The device has a backup job of that name already."""


class DeviceRevoked(Exception):
    """The push job's device was revoked: its pings are refused."""


@dataclass(frozen=True)
class PingOutcome:
    """What a ping did: the job, its device and the verdict the rule reached."""

    job: str
    hostname: str
    status: str
    summary: str


def new_token() -> str:
    """A fresh, unguessable job token (the secret part of the push URL)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(24)


def push_url(collector_url: str, token: str) -> str:
    """The job's push URL."""
    return f"{collector_url.rstrip('/')}/api/v1/push/{token}"


def log_excerpt(body: bytes) -> str | None:
    """The end of a ping's body (at most MAX_LOG bytes) as text; None for an empty body."""
    tail = body[-MAX_LOG:].decode("utf-8", errors="replace").strip()
    return tail or None


def identity(job: PushJobRow) -> dict[str, Any]:
    """The fields of a BackupJob that say which job it is and when it should run."""
    return {"name": job.name, "tool": TOOL, "schedule": job.schedule, "timezone": job.timezone,
            "grace_seconds": job.grace_seconds}


def backup_job(state: PushJobState) -> BackupJob:
    """The job's state as the `backup_results` signal reports a job: last run, last good run, sizes."""
    job, start, end, good = state.job, state.last_start, state.last_end, state.recent_good
    detail = {"reported_by": "push URL"}
    # A start newer than the last end is a run under way; an older one may belong to an earlier run.
    running = start if start is not None and (end is None or start.at > end.at) else None
    started = running.at if running else state.run_started_at
    if running:
        detail["running_since"] = running.at.isoformat()
    facts: dict[str, Any] = {"last_result": "unknown"}
    if end is not None:
        facts = {
            "last_result": RESULTS[end.kind],
            "last_run_ended_at": end.at,
            # The log of a run that went wrong says why; the end of it says most.
            "error": end.log[-MAX_ERROR:] if end.kind != "success" and end.log else None,
        }
        if state.run_started_at is not None:
            facts["duration_seconds"] = (end.at - state.run_started_at).total_seconds()
    if good:
        # A run that ended with warnings still made a backup (as borg's rc 1 does).
        facts |= {"last_success_at": good[0].at, "bytes_total": good[0].size_bytes}
    if len(good) > 1:
        facts["previous_bytes_total"] = good[1].size_bytes
    return BackupJob(**identity(job), last_run_started_at=started, detail=detail, **facts)


def configured(job: PushJobRow) -> BackupResults:
    """The job as it was when created, with no run: tells the rule since when the job was expected to run."""
    return BackupResults(collected_at=job.created_at, jobs=[BackupJob(**identity(job), last_result="unknown")])


def evaluate(state: PushJobState, agent: AgentRow, settings: Settings, now: datetime) -> list[Evaluation]:
    """The `backup_results` rule's verdict on a push job at `now`."""
    signal = BackupResults(collected_at=now, jobs=[backup_job(state)])
    history = History(now=now, hostname=agent.hostname, previous=(configured(state.job),),
                      agent_id=agent.agent_id, settings=settings.rule_settings(agent.site.client_name))
    return backup_results.evaluate(signal, history)


async def judge(tx: Tx, state: PushJobState, agent: AgentRow, settings: Settings, now: datetime,
                actor: str, on_change: OnChange | None) -> tuple[Evaluation, int]:
    """Judge a push job and apply the verdict to its device's alerts; returns it and the feed events added."""
    [verdict] = evaluate(state, agent, settings, now)
    return verdict, await dedupe.apply(tx, agent, [verdict], now, actor, settings.alerts.lifecycle(), on_change)


async def record_ping(
    store: Store, settings: Settings, token: str, kind: PingKind, now: datetime,
    size_bytes: int | None = None, body: bytes = b"", on_change: OnChange | None = None,
) -> PingOutcome | None:
    """Store a ping, judge its job and apply the verdict, all in one transaction; None for an unknown token.
    A paused job's ping is stored, not judged.

    Raises DeviceRevoked (and stores nothing) when the job's device was revoked.
    """
    async with store.transaction() as tx:
        state = await tx.record_ping(token_hash(token), now, kind, size_bytes, log_excerpt(body))
        if state is None:
            return None
        agent = await tx.agent(state.job.agent_id)
        if agent is None or agent.revoked:
            raise DeviceRevoked(f"the device of backup job {state.job.name!r} was revoked")
        if state.job.paused_at is not None:
            return PingOutcome(state.job.name, agent.hostname, "paused",
                               f"backup job {state.job.name} is paused: the ping is kept, not judged")
        verdict, _ = await judge(tx, state, agent, settings, now, "push", on_change)
    return PingOutcome(state.job.name, agent.hostname, verdict.status, verdict.summary)


async def sweep(
    store: Store, settings: Settings, now: datetime, on_change: OnChange | None = None
) -> int:
    """Judge every push job (not paused, of devices not revoked) at `now`; returns how many feed events were
    added."""
    published = 0
    async with store.transaction() as tx:
        agents = {agent.agent_id: agent for agent in await tx.agents()}
        for state in await tx.push_jobs():
            agent = agents.get(state.job.agent_id)
            if agent is not None and not agent.revoked and state.job.paused_at is None:
                published += (await judge(tx, state, agent, settings, now, "rule:push_sweep", on_change))[1]
    return published


async def run_sweeper(
    store: Store, settings: Settings, every: float = SWEEP_SECONDS,
    clock: Clock = system_clock, on_change: OnChange | None = None,
) -> None:
    """Run `sweep` every `every` seconds until cancelled; a failed sweep is logged and the next one tried."""
    while True:
        await asyncio.sleep(every)
        try:
            await sweep(store, settings, clock(), on_change)
        except Exception:
            log.exception("push job sweep failed; next one in %s s", every)


async def create_job(
    store: Store, agent_id: str, name: str, schedule: str, timezone: str, grace: timedelta | None,
    now: datetime,
) -> tuple[PushJobRow, AgentRow, str]:
    """Create a push job for a device; returns it, the device and the token (only its hash is stored).

    Raises PushJobRefused for a bad name, schedule or time zone, an unknown or revoked device, or a name
    the device already uses for a job.
    """
    token = new_token()
    grace_seconds = grace.total_seconds() if grace is not None else None
    try:
        BackupJob(name=name, tool=TOOL, schedule=schedule, timezone=timezone, grace_seconds=grace_seconds,
                  last_result="unknown")
    except ValidationError as exc:
        problem = exc.errors()[0]
        raise PushJobRefused(f"{problem['loc'][0]}: {problem['msg'].removeprefix('Value error, ')}") from exc
    async with store.transaction() as tx:
        agent = await tx.agent(agent_id)
        if agent is None:
            raise PushJobRefused(f"no device {agent_id!r}: `fieldpost devices` lists the agent ids")
        if agent.revoked:
            raise PushJobRefused(f"device {agent_id} ({agent.hostname}) was revoked")
        # The agent's own jobs and push jobs share alert subjects, so one name must mean one job.
        latest = tx.unreadable.readable(await tx.observations(agent_id, "backup_results", 1))
        if latest and any(job.get("name") == name for job in latest[0].payload.get("jobs", [])):
            raise PushJobTaken(f"{agent.hostname} already reports a backup job named {name!r} itself")
        job = await tx.add_push_job(token_hash(token), agent_id, name, schedule, timezone, grace_seconds, now)
        if job is None:
            raise PushJobTaken(f"{agent.hostname} already has a push job named {name!r} (deleted jobs keep their "
                               "names, with their history)")
    return job, agent, token


def push_instructions(url: str) -> str:
    """How a backup script calls its push URL, with curl (POSIX shell and Windows)."""
    return "\n".join([
        "Call it from the backup script (each call: -fsS fail loudly, -m 10 time limit, --retry 3):",
        f"  curl -fsS -m 10 --retry 3 -X POST {url}/start",
        f"  curl -fsS -m 10 --retry 3 -X POST {url}              # success",
        f'  curl -fsS -m 10 --retry 3 -X POST "{url}?bytes=123456789"   # success, with the size',
        f"  curl -fsS -m 10 --retry 3 --data-binary @backup.log {url}/fail   # failed, with the log",
        f"  curl -fsS -m 10 --retry 3 --data-binary @backup.log {url}/warning",
        "On Windows use curl.exe (built in since Windows 10 1803). GET works too, for tools that only GET.",
        "The URL is a secret: anyone who has it can report for this job. It is shown only now.",
    ])


async def job_lines(store: Store) -> list[str]:
    """One line per push job for `backup-job list`: device, name, schedule and the last ping."""
    async with store.transaction() as tx:
        agents = {agent.agent_id: agent for agent in await tx.agents()}
        states = await tx.push_jobs()
    lines = []
    for state in states:
        job, agent = state.job, agents.get(state.job.agent_id)
        where = f"{agent.site.client_name} / {agent.hostname}" if agent else job.agent_id
        pings = [ping for ping in (state.last_start, state.last_end) if ping is not None]
        last = max(pings, key=lambda ping: ping.at, default=None)
        seen = f"last ping {last.kind} at {last.at:%Y-%m-%d %H:%M} UTC" if last else "no ping yet"
        grace = f", grace {job.grace_seconds / 3600:g} h" if job.grace_seconds is not None else ""
        paused = f"; paused since {job.paused_at:%Y-%m-%d %H:%M} UTC" if job.paused_at else ""
        lines.append(f"{where} ({job.agent_id}): {job.name}, {job.schedule} ({job.timezone}{grace}); {seen}{paused}")
    return lines
