"""Backups through the running collector: real restic and borg runs through the `backup-run` wrapper and real
integrity checks of damaged repositories, reported by the agent's own check and sent as signed batches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.checks import CheckContext
from agent.checks.backup_results import BackupResultsCheck
from agent.cli import main
from collector.app import create_app
from shared.backup_results import BackupResults
from tests.agent.test_backup_integrity import data  # noqa: F401  (fixture)
from tests.agent.test_backup_results import PASSWORD, borg_job, restic_job, shell
from tests.agent.test_backup_run import (  # noqa: F401  (fixtures)
    borg,
    borg_setup,
    place,
    restic,
    restic_setup,
    source,
)
from tests.collector.test_disk_identity import send
from tests.collector.test_incidents import api, settings_for
from tests.support.agents import SimAgent
from tests.support.clock import Clock
from tests.support.collector import enrolled
from tests.tooling import requires_tool


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """The agent's state directory, where the wrapper records its runs and the check reads them."""
    path = tmp_path / "state"
    path.mkdir()
    return path


@pytest.fixture(autouse=True)
def tool_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTIC_CACHE_DIR", str(tmp_path / "restic-cache"))
    monkeypatch.setenv("BORG_BASE_DIR", str(tmp_path / "borg-home"))
    monkeypatch.setenv("TZ", "UTC")  # restic --time is read in local time


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


def stamp(moment: datetime) -> str:
    """A backup's time as restic --time and borg --timestamp take it: the agent's clock, not the wall clock."""
    return moment.strftime("%Y-%m-%d %H:%M:%S")


async def report(client: TestClient, agent: SimAgent, clock: Clock, job: dict[str, Any], state: Path,
                 maintenance: bool = False) -> None:
    """The agent's backup_results check reports the job (reading the wrapper's record) to the collector."""
    context = CheckContext(settings={"jobs": [job]}, clock=clock, state_dir=state, maintenance=maintenance)
    [signal] = BackupResultsCheck(context).collect()
    assert isinstance(signal, BackupResults)
    await send(client, agent, signal)


async def backup_alerts(client: TestClient) -> dict[str, dict[str, Any]]:
    alerts = (await api(client, "GET", "/api/v1/alerts?state=open"))["alerts"]
    return {a["subject"]: a for a in alerts if a["rule"] == "backup_results"}


def wrapped(config: Path, job: str, clock: Clock, *argv: str | Path) -> int:
    """`fieldpost-agent backup-run --job JOB -- ARGV` on the agent's clock."""
    return main(["--config", str(config), "backup-run", "--job", job, "--", *map(str, argv)], clock=clock)


@requires_tool("restic")
async def test_restic_runs_through_the_wrapper_skipped_file_warns_failure_is_critical_good_run_resolves(
    client: TestClient, clock: Clock, restic_setup, source, state_dir  # noqa: F811
) -> None:
    agent = await enrolled(client)
    repo, password, config = restic_setup
    job = restic_job(repo, password, host="*")
    rc = wrapped(config, "bookkeeping", clock, *restic(repo, password, "--json", "backup", "--time",
                                                        stamp(clock.now - timedelta(minutes=1)), source))
    assert rc == 3, "the backup user cannot read the payroll file"
    await report(client, agent, clock, job, state_dir)
    skipped = (await backup_alerts(client))["backup:bookkeeping"]
    assert skipped["severity"] == "warning"
    assert "Lohn-2024.xlsx" in skipped["summary"]

    clock.advance(days=1)
    unmounted = source.parent / "share-not-mounted"
    assert wrapped(config, "bookkeeping", clock, *restic(repo, password, "backup", unmounted)) not in (0, 3)
    await report(client, agent, clock, job, state_dir)
    failed = (await backup_alerts(client))["backup:bookkeeping"]
    assert failed["severity"] == "critical"
    assert "restic failed with exit status" in failed["summary"]

    clock.advance(days=1)
    (source / "Lohn-2024.xlsx").chmod(0o644)
    assert wrapped(config, "bookkeeping", clock, *restic(repo, password, "backup", "--time",
                                                         stamp(clock.now - timedelta(minutes=1)), source)) == 0
    await report(client, agent, clock, job, state_dir)
    clock.advance(hours=1)
    await report(client, agent, clock, job, state_dir)  # the service's next hourly check: good twice, resolved
    assert await backup_alerts(client) == {}


@requires_tool("borg")
async def test_a_borg_run_with_skipped_files_warns_through_the_collector(
    client: TestClient, clock: Clock, borg_setup, place, source, state_dir  # noqa: F811
) -> None:
    agent = await enrolled(client)
    repo, config = borg_setup
    rc = wrapped(config, "server", clock, *borg(place, "create", "--log-json", "--timestamp",
                                                stamp(clock.now - timedelta(minutes=1)).replace(" ", "T"),
                                                f"{repo}::server-1", source))
    assert rc == 1
    job = borg_job(repo, passphrase_env=None, schedule="daily")
    await report(client, agent, clock, {**job, "check_days": 0}, state_dir)
    [(subject, alert)] = (await backup_alerts(client)).items()
    assert (subject, alert["severity"]) == ("backup:server", "warning")
    assert "1 warnings (files skipped or changed)" in alert["summary"]


@requires_tool("restic")
async def test_a_restic_repository_that_lost_a_pack_is_critical_through_the_collector(
    client: TestClient, clock: Clock, tmp_path: Path, data: Path  # noqa: F811
) -> None:
    agent = await enrolled(client)
    password = tmp_path / "restic.pw"
    password.write_text(PASSWORD + "\n")
    repo = tmp_path / "restic-repo"
    shell("restic", "--repo", repo, "--password-file", password, "init")
    restic_backup = ("restic", "--repo", repo, "--password-file", password, "backup", data, "--time")
    shell(*restic_backup, stamp(clock.now - timedelta(hours=1)))
    job, state = restic_job(repo, password, host="*"), tmp_path / "agent-state"
    await report(client, agent, clock, job, state, maintenance=True)
    assert await backup_alerts(client) == {}, "checked and intact"

    [pack] = [p for p in (repo / "data").rglob("*") if p.is_file() and p.stat().st_size > 200_000]
    pack.unlink()
    clock.advance(days=7)
    shell(*restic_backup, stamp(clock.now - timedelta(hours=1)))  # the nightly run still "succeeds"
    await report(client, agent, clock, job, state, maintenance=True)
    damaged = (await backup_alerts(client))["backup:bookkeeping"]
    assert damaged["severity"] == "critical"
    assert f"repository damaged: pack {pack.name}: does not exist" in damaged["summary"]


@requires_tool("borg")
async def test_a_borg_repository_with_a_truncated_segment_is_critical_through_the_collector(
    client: TestClient, clock: Clock, tmp_path: Path, data: Path  # noqa: F811
) -> None:
    agent = await enrolled(client)
    repo = tmp_path / "borg-repo"
    unencrypted = {"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes"}
    shell("borg", "init", "--encryption", "none", repo)
    shell("borg", "create", "--timestamp", stamp(clock.now - timedelta(hours=1)).replace(" ", "T"),
          f"{repo}::server-1", data, env=unencrypted)
    job, state = borg_job(repo, passphrase_env=None), tmp_path / "agent-state"
    await report(client, agent, clock, job, state, maintenance=True)
    assert await backup_alerts(client) == {}

    [segment] = [p for p in (repo / "data").rglob("*") if p.is_file() and p.stat().st_size > 200_000]
    with segment.open("r+b") as damaged_file:
        damaged_file.truncate(1000)
    clock.advance(days=8)
    await report(client, agent, clock, job, state, maintenance=True)
    damaged = (await backup_alerts(client))["backup:server"]
    assert damaged["severity"] == "critical"
    assert "repository damaged: Data integrity error: Segment entry data short read" in damaged["summary"]

