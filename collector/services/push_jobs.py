"""Push backup jobs as the dashboard lists, creates, pauses, resumes and deletes them: each with its device and
its newest pings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from pydantic import Field

from collector import push
from collector.alerts import dedupe
from collector.rules import Evaluation, backup_results
from collector.services.base import Service
from collector.services.errors import Conflict, Invalid, NotFound
from collector.services.inputs import Input
from collector.store import AgentRow, PingRow, PushJobRow, Tx

PINGS_SHOWN = 5
# What the technician can do to a job once it is made.
Step = Literal["pause", "resume", "delete"]
STEPS: tuple[Step, ...] = ("pause", "resume", "delete")
# Each step's past tense: in the feed's event type and in what the technician is told.
DONE: dict[Step, str] = {"pause": "paused", "resume": "resumed", "delete": "deleted"}
# A week and a day: the longest lateness a weekly job could want.
MAX_GRACE_HOURS = 8 * 24


class PushJobInput(Input):
    """A new push job: the device it protects, its name and when it should run."""

    device: str = Field(min_length=1, max_length=64, description="agent id of the device the backup protects")
    name: str = Field(min_length=1, max_length=200, description='job name, e.g. "nas-sync"')
    schedule: str = Field(min_length=1, max_length=100,
                          description='daily, weekly or a cron expression such as "0 22 * * 0"')
    timezone: str = Field("UTC", max_length=64, description="IANA time zone a cron schedule is read in")
    grace_hours: float | None = Field(None, gt=0, le=MAX_GRACE_HOURS, allow_inf_nan=False,
                                      description="allowed lateness in hours (default: the rule's for the schedule)")


@dataclass(frozen=True)
class JobListing:
    """A push job, the device it protects and its newest pings, newest first."""

    job: PushJobRow
    agent: AgentRow
    pings: list[PingRow]


@dataclass(frozen=True)
class NewJob:
    """A push job just made, with its token (shown once: only its hash is kept)."""

    job: PushJobRow
    agent: AgentRow
    token: str


class PushJobs(Service):
    """Push backup jobs: list them with their last pings, create, pause, resume and delete one."""

    async def list(self, client: str | None = None) -> list[JobListing]:
        """Every push job (of one client), by client, site, device and name; NotFound for an unknown client."""
        async with self.store.read() as tx:
            if client is not None and await tx.client_id(client) is None:
                raise NotFound(f"there is no client {client!r}")
            agents = {agent.agent_id: agent for agent in await tx.agents()}
            states = await tx.push_jobs()
            pings = await tx.recent_pings(PINGS_SHOWN)
        listed = [JobListing(s.job, agents[s.job.agent_id], pings.get(s.job.job_id, [])) for s in states
                  if client is None or agents[s.job.agent_id].site.client_name == client]
        return sorted(listed, key=lambda j: (j.agent.site.client_name, j.agent.site.site_name, j.agent.hostname,
                                             j.job.name))

    async def create(self, wanted: PushJobInput) -> NewJob:
        """A push job for a device (Invalid for a bad schedule, zone or device; Conflict for a name in use)."""
        grace = timedelta(hours=wanted.grace_hours) if wanted.grace_hours is not None else None
        try:
            job, agent, token = await push.create_job(self.store, wanted.device, wanted.name.strip(),
                                                      wanted.schedule.strip(), wanted.timezone.strip(), grace,
                                                      self.clock())
        except push.PushJobTaken as exc:
            raise Conflict(str(exc)) from None
        except push.PushJobRefused as exc:
            raise Invalid(None, str(exc)) from None
        return NewJob(job, agent, token)

    async def get(self, job_id: int) -> JobListing:
        """One push job (not deleted) with its device and newest pings; NotFound otherwise."""
        found = next((j for j in await self.list() if j.job.job_id == job_id), None)
        if found is None:
            raise NotFound(f"there is no push job {job_id}")
        return found

    async def change(self, job_id: int, step: Step) -> PushJobRow:
        """Pause a job (not judged, its open alert resolved), resume it (judged again from the next sweep, an
        overdue run alerting), or delete it (its URL refused; its pings kept for the value report)."""
        now = self.clock()
        async with self.store.transaction() as tx:
            current = next((s.job for s in await tx.push_jobs() if s.job.job_id == job_id), None)
            if current is None:
                raise NotFound(f"there is no push job {job_id}")
            if step != "delete" and (current.paused_at is not None) == (step == "pause"):
                raise Conflict(f"push job {current.name} is {'paused' if step == 'pause' else 'running'} already")
            if step == "delete":
                changed = await tx.delete_push_job(job_id, now)
            else:
                changed = await tx.pause_push_job(job_id, now if step == "pause" else None)
            if changed is None:  # another request changed it between the read and the conditional update
                raise Conflict(f"push job {current.name} was changed meanwhile: reload and try again")
            agent = await tx.agent(changed.agent_id)
            if step != "resume" and agent is not None:
                await self._settle(tx, agent, changed, DONE[step])
            await self.publish(tx, f"push_job.{DONE[step]}", {
                "job_id": job_id, "job": changed.name, "agent_id": changed.agent_id,
                "hostname": agent.hostname if agent else None,
                "client": agent.site.client_name if agent else None})
        return changed

    async def _settle(self, tx: Tx, agent: AgentRow, job: PushJobRow, why: str) -> None:
        """Resolve the job's open alert at once: a paused or deleted job is judged no more."""
        verdict = Evaluation(backup_results.RULE, f"backup:{job.name}", "ok", f"backup job {job.name} was {why}",
                             gone=True)
        await dedupe.apply(tx, agent, [verdict], self.clock(), "technician")
