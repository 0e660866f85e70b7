"""Push jobs: a backup script's calls of its URL, judged by the backup_results rule, against the real app."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys, push
from collector.api.push import PINGS_PER_MINUTE
from collector.app import create_app
from collector.services.errors import Conflict, NotFound
from collector.services.push_jobs import PushJobs
from collector.settings import Settings
from collector.store import AgentRow, AlertRow, PingKind, PushJobState, Store
from collector.store.sql import PINGS_KEPT
from shared.backup_results import BackupJob, BackupResults

PUSH = "/api/v1/push/"


@pytest.fixture
async def client(database: str) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret")
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


def store_of(client: TestClient) -> Store:
    return client.app[keys.STORE]


async def device(client: TestClient, agent_id: str = "ag_nas01", hostname: str = "NAS-01") -> AgentRow:
    """An enrolled device of Acme Tooling."""
    async with store_of(client).transaction() as tx:
        site = await tx.site("Acme Tooling", "Main office")
        agent = AgentRow(agent_id, bytes(32), hostname, site, datetime.now(UTC))
        await tx.add_agent(agent)
    return agent


async def new_job(
    client: TestClient, name: str = "nas-sync", schedule: str = "daily", created_at: datetime | None = None,
    agent_id: str = "ag_nas01",
) -> str:
    """A push job for the device; returns its token."""
    _, _, token = await push.create_job(store_of(client), agent_id, name, schedule, "UTC", None,
                                        created_at or datetime.now(UTC))
    return token


async def job_state(client: TestClient, name: str = "nas-sync") -> PushJobState:
    async with store_of(client).transaction() as tx:
        return next(state for state in await tx.push_jobs() if state.job.name == name)


async def backup_alerts(client: TestClient) -> list[AlertRow]:
    async with store_of(client).transaction() as tx:
        return [alert for alert in await tx.alerts(None) if alert.rule == "backup_results"]


async def sweep(client: TestClient, now: datetime) -> int:
    app = client.app
    return await push.sweep(app[keys.STORE], app[keys.SETTINGS], now)


async def test_it_records_a_run_from_start_and_success_pings(client: TestClient) -> None:
    await device(client)
    token = await new_job(client)
    started = await client.post(PUSH + token + "/start")
    assert started.status == 200, await started.text()
    done = await client.post(PUSH + token + "?bytes=52428800")
    assert done.status == 200
    assert await done.json() == {
        "job": "nas-sync", "device": "NAS-01", "ping": "success", "status": "ok",
        "summary": "nas-sync (script): last good backup 0 min ago",
    }
    job = push.backup_job(await job_state(client))
    assert (job.tool, job.schedule, job.last_result) == ("script", "daily", "success")
    assert job.bytes_total == 52428800
    assert job.last_run_started_at is not None and job.last_run_ended_at is not None
    assert job.last_success_at == job.last_run_ended_at
    assert job.duration_seconds == (job.last_run_ended_at - job.last_run_started_at).total_seconds()
    assert await backup_alerts(client) == []


async def test_a_start_counts_for_its_own_run_only(client: TestClient) -> None:
    await device(client)
    token = await new_job(client)
    app, t0 = client.app, datetime(2024, 5, 6, 22, 0, tzinfo=UTC)

    async def ping(kind: PingKind, at: datetime) -> BackupJob:
        await push.record_ping(app[keys.STORE], app[keys.SETTINGS], token, kind, at)
        return push.backup_job(await job_state(client))

    await ping("start", t0)
    assert (await ping("success", t0 + timedelta(minutes=10))).duration_seconds == 600
    without_start = await ping("success", t0 + timedelta(days=1))
    assert (without_start.last_run_started_at, without_start.duration_seconds) == (None, None)
    running = await ping("start", t0 + timedelta(days=2))
    assert (running.last_result, running.last_run_started_at) == ("success", t0 + timedelta(days=2))
    assert running.detail["running_since"] == "2024-05-08T22:00:00+00:00"


# It counts the kept pings by reading the SQLite file, so it runs on SQLite only.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_it_keeps_the_latest_pings_and_the_newest_good_runs(client: TestClient, database: str) -> None:
    await device(client)
    token = await new_job(client)
    app, t0 = client.app, datetime(2024, 5, 6, 22, 0, tzinfo=UTC)
    kinds: list[PingKind] = ["success", "success", *["fail"] * 150]
    for n, kind in enumerate(kinds):
        await push.record_ping(app[keys.STORE], app[keys.SETTINGS], token, kind,
                               t0 + timedelta(hours=n), n)
    state = await job_state(client)
    assert [(ping.kind, ping.size_bytes) for ping in state.recent_good] == [("success", 1), ("success", 0)]
    assert state.last_end is not None and state.last_end.size_bytes == 151
    with sqlite3.connect(database) as db:
        [(kept,)] = db.execute("SELECT count(*) FROM backup_pings")
    assert kept == PINGS_KEPT + 2


async def test_a_fail_ping_opens_a_critical_alert_and_a_success_resolves_it(client: TestClient) -> None:
    await device(client)
    token = await new_job(client)
    log = b"rsync: [sender] write error: No space left on device (28)\n" \
          b"rsync error: error in file IO (code 11)\n"
    failed = await client.post(PUSH + token + "/fail", data=log)
    assert (await failed.json())["status"] == "critical"
    [alert] = await backup_alerts(client)
    assert (alert.subject, alert.severity, alert.state, alert.agent_id) == (
        "backup:nas-sync", "critical", "open", "ag_nas01"
    )
    # One line, the end of the log where the error is (a table row, a CSV cell); the details keep the log.
    assert alert.summary == "nas-sync (script): last run failed: rsync error: error in file IO (code 11)"
    assert alert.details["error"] == log.decode().strip()

    good = await client.post(PUSH + token)
    assert (await good.json())["status"] == "ok"
    # Alerts resolve after a second good evaluation (hysteresis): the next sweep gives it.
    await sweep(client, datetime.now(UTC) + timedelta(minutes=1))
    [alert] = await backup_alerts(client)
    assert alert.state == "resolved"
    async with store_of(client).transaction() as tx:
        events = [(kind, actor) for _, kind, actor, _ in await tx.alert_events(alert.alert_id)]
    assert events == [("opened", "push"), ("resolved", "rule:push_sweep")]


async def test_get_works_for_scripts_that_can_only_get(client: TestClient) -> None:
    await device(client)
    token = await new_job(client)
    response = await client.get(PUSH + token + "/warning?bytes=10")
    assert response.status == 200
    assert (await response.json())["status"] == "warning"
    state = await job_state(client)
    assert state.last_end is not None and (state.last_end.kind, state.last_end.size_bytes) == ("warning", 10)


async def test_an_unknown_token_gets_404(client: TestClient) -> None:
    await device(client)
    await new_job(client)
    for path in ("fp_push_never-issued", "fp_push_never-issued/fail"):
        response = await client.post(PUSH + path)
        assert response.status == 404
        assert await response.json() == {"error": "unknown backup job token"}


async def test_it_rate_limits_each_token_and_says_when_to_retry(client: TestClient) -> None:
    await device(client)
    token = await new_job(client)
    other = await new_job(client, "image-weekly", "weekly")
    statuses = [(await client.post(PUSH + token)).status for _ in range(PINGS_PER_MINUTE)]
    assert statuses == [200] * PINGS_PER_MINUTE
    refused = await client.post(PUSH + token + "/fail")
    assert refused.status == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 10
    assert "too many pings" in (await refused.json())["error"]
    assert (await job_state(client)).last_end.kind == "success", "a refused ping is not stored"
    assert (await client.post(PUSH + other)).status == 200, "another job's token has its own budget"


async def chunked(data: bytes) -> AsyncIterator[bytes]:
    """A body sent in chunks without a Content-Length, as a pipe into curl would be."""
    for start in range(0, len(data), 16 * 1024):
        yield data[start:start + 16 * 1024]


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
async def test_a_body_over_100_kb_gets_413_and_nothing_is_stored(client: TestClient, framing: str) -> None:
    await device(client)
    token = await new_job(client)
    body = b"x" * (100 * 1024 + 1)
    sent = body if framing == "content-length" else chunked(body)
    response = await client.post(PUSH + token + "/fail", data=sent)
    assert response.status == 413
    assert "100 KB" in (await response.json())["error"]
    state = await job_state(client)
    assert (state.last_start, state.last_end) == (None, None)


async def test_it_keeps_the_last_10_kb_of_a_log_as_text(client: TestClient) -> None:
    await device(client)
    token = await new_job(client)
    # Multi-byte characters everywhere: the cut at 10 KB may split one, which must not break the text.
    log = "".join(f"Datei Größe {n}: übertragen\n" for n in range(3000)) + "Fehler: Zugriff verweigert\n"
    assert len(log.encode()) > 50 * 1024
    await client.post(PUSH + token + "/fail", data=log.encode())
    ping = (await job_state(client)).last_end
    assert ping is not None and ping.log is not None
    assert len(ping.log.encode()) <= 10 * 1024
    assert ping.log.endswith("Fehler: Zugriff verweigert")
    job = push.backup_job(await job_state(client))
    assert job.error is not None and len(job.error) == 2000 and job.error.endswith("Zugriff verweigert")


async def test_bytes_must_be_a_whole_number(client: TestClient) -> None:
    await device(client)
    token = await new_job(client)
    for size in ("12GB", "-1", "²", "9" * 30):
        response = await client.post(PUSH + token, params={"bytes": size})
        assert response.status == 400, size
    assert (await job_state(client)).last_end is None


async def test_pings_for_a_revoked_device_are_refused(client: TestClient) -> None:
    await device(client)
    token = await new_job(client)
    async with store_of(client).transaction() as tx:
        await tx.revoke_agent("ag_nas01", datetime.now(UTC))
    response = await client.post(PUSH + token + "/fail")
    assert response.status == 403
    assert "revoked" in (await response.json())["error"]
    assert (await job_state(client)).last_end is None


async def test_the_sweep_finds_a_late_daily_job_and_then_one_without_success(client: TestClient) -> None:
    await device(client)
    created = datetime(2024, 5, 6, 22, 0, tzinfo=UTC)
    token = await new_job(client, created_at=created)
    app = client.app
    ran = created + timedelta(hours=1)
    await push.record_ping(app[keys.STORE], app[keys.SETTINGS], token, "success", ran)

    await sweep(client, ran + timedelta(hours=29))  # daily: 24 h + 6 h grace
    assert await backup_alerts(client) == []
    await sweep(client, ran + timedelta(hours=30, minutes=1))
    [alert] = await backup_alerts(client)
    assert (alert.severity, alert.summary) == ("warning", "nas-sync (script): late: last run 1 day ago")
    await sweep(client, ran + timedelta(days=3, hours=6, minutes=1))
    [alert] = await backup_alerts(client)
    assert alert.severity == "critical"
    assert "no successful run within 3 scheduled periods (daily)" in alert.summary


async def test_a_new_job_is_no_alert_until_its_first_run_is_due_then_late(client: TestClient) -> None:
    await device(client)
    created = datetime(2024, 5, 6, 22, 0, tzinfo=UTC)
    await new_job(client, name="image-weekly", schedule="0 22 * * 0", created_at=created)  # Sundays 22:00
    for days in (1, 3, 6):
        await sweep(client, created + timedelta(days=days))
    assert await backup_alerts(client) == []
    # Sunday 12 May 22:00 was due; its 6 h grace ends Monday 04:00.
    await sweep(client, datetime(2024, 5, 13, 4, 1, tzinfo=UTC))
    [alert] = await backup_alerts(client)
    assert (alert.severity, alert.summary) == (
        "warning", "image-weekly (script): late: no run reported since it was configured"
    )


async def test_the_sweeper_judges_push_jobs_against_the_clock(client: TestClient) -> None:
    await device(client)
    created = datetime(2024, 5, 6, 22, 0, tzinfo=UTC)
    await new_job(client, created_at=created)
    app = client.app
    later = created + timedelta(days=2)
    sweeper = asyncio.create_task(
        push.run_sweeper(app[keys.STORE], app[keys.SETTINGS], every=0.01, clock=lambda: later)
    )
    try:
        for _ in range(200):
            if await backup_alerts(client):
                break
            await asyncio.sleep(0.01)
    finally:
        sweeper.cancel()
    [alert] = await backup_alerts(client)
    assert alert.summary == "nas-sync (script): late: no run reported since it was configured"


async def test_it_refuses_jobs_it_could_not_judge_or_tell_apart(client: TestClient) -> None:
    await device(client)
    now = datetime.now(UTC)
    reported = BackupResults(collected_at=now, jobs=[
        BackupJob(name="bookkeeping", tool="restic", schedule="daily", last_result="success")
    ])
    async with store_of(client).transaction() as tx:
        rows = [("backup_results", now, reported.model_dump_json())]
        assert await tx.record_envelope("ag_nas01", 1, "boot-1", now, now, rows)
    await new_job(client)
    refused = {
        "already has a push job named 'nas-sync'": {},
        "NAS-01 already reports a backup job named 'bookkeeping' itself": {"name": "bookkeeping"},
        "no device 'ag_nobody'": {"agent_id": "ag_nobody"},
        "schedule: schedule must be 'daily', 'weekly' or a cron expression": {
            "name": "x", "schedule": "0 25 * * *"
        },
    }
    for reason, changes in refused.items():
        with pytest.raises(push.PushJobRefused, match=re.escape(reason)):
            await new_job(client, **changes)  # type: ignore[arg-type]
    with pytest.raises(push.PushJobRefused, match="timezone: unknown time zone 'Mars/Base'"):
        await push.create_job(store_of(client), "ag_nas01", "y", "daily", "Mars/Base", None, now)


async def test_a_paused_job_is_not_judged_and_a_deleted_one_refuses_its_url(client: TestClient) -> None:
    await device(client)
    created = datetime(2024, 5, 6, 22, 0, tzinfo=UTC)
    token = await new_job(client, created_at=created)
    job_id = (await job_state(client)).job.job_id
    jobs = PushJobs(store_of(client), lambda: created + timedelta(hours=1))
    paused = await jobs.change(job_id, "pause")
    assert paused.paused_at == created + timedelta(hours=1)
    assert (await job_state(client)).job.paused_at == paused.paused_at
    # Days late, and a failed run reported: kept, not judged.
    assert (await client.post(PUSH + token + "/fail")).status == 200
    assert (await job_state(client)).last_end is not None
    await sweep(client, created + timedelta(days=5))
    assert await backup_alerts(client) == []
    with pytest.raises(Conflict, match="is paused already"):
        await jobs.change(job_id, "pause")

    assert (await jobs.change(job_id, "resume")).paused_at is None
    await sweep(client, created + timedelta(days=5))
    [alert] = await backup_alerts(client)
    assert alert.resolved_at is None
    await jobs.change(job_id, "delete")
    assert [alert.resolved_at is not None for alert in await backup_alerts(client)] == [True]
    async with store_of(client).transaction() as tx:
        assert await tx.push_jobs() == []
    assert (await client.post(PUSH + token)).status == 404
    with pytest.raises(NotFound, match=f"there is no push job {job_id}"):
        await jobs.change(job_id, "resume")
    with pytest.raises(push.PushJobTaken, match="deleted jobs keep their names"):
        await new_job(client)
