"""Repository integrity checks: real restic and borg repositories, damaged by deleting or truncating a file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from agent.checks import CheckContext
from agent.checks.backup_results import BackupResultsCheck
from agent.checks.backup_results.integrity import last_check
from agent.commands import CommandResult, run_command
from collector.rules import History
from collector.rules.backup_results import evaluate
from shared.backup_results import BackupJob, BackupResults
from tests.agent.test_backup_results import PASSWORD, borg_job, restic_job, restic_locked, shell
from tests.support.clock import Clock
from tests.tooling import requires_tool


class Counting:
    """The real command runner, counting the integrity checks it runs."""

    def __init__(self) -> None:
        self.checks = 0

    def __call__(self, argv: Any, timeout: float = 60.0) -> CommandResult:
        if "check" in argv:
            self.checks += 1
        return run_command(argv, timeout)


@pytest.fixture(autouse=True)
def tool_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESTIC_CACHE_DIR", str(tmp_path / "restic-cache"))
    monkeypatch.setenv("BORG_BASE_DIR", str(tmp_path / "borg-home"))


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "Buchhaltung"
    folder.mkdir()
    # Incompressible, so the data lands in a pack/segment file of its own that the test can damage.
    (folder / "scan.pdf").write_bytes(os.urandom(300_000))
    return folder


def report(
    job: dict[str, Any], clock: Clock, state: Path, run: Counting, maintenance: bool = False
) -> BackupJob:
    """The job as the check reports it (`maintenance`: in the nightly window's run)."""
    context = CheckContext(settings={"jobs": [job]}, run=run, clock=clock, state_dir=state, maintenance=maintenance)
    [signal] = BackupResultsCheck(context).collect()
    assert isinstance(signal, BackupResults)
    return signal.jobs[0]


def verdict(job: BackupJob, clock: Clock) -> tuple[str, str]:
    [found] = evaluate(BackupResults(collected_at=clock(), jobs=[job]), History(now=clock(), hostname="PC-07"))
    return found.status, found.summary


@pytest.fixture
def restic_repo(tmp_path: Path, data: Path) -> tuple[Path, Path]:
    password = tmp_path / "restic.pw"
    password.write_text(PASSWORD + "\n")
    repo = tmp_path / "restic-repo"
    shell("restic", "--repo", repo, "--password-file", password, "init")
    shell("restic", "--repo", repo, "--password-file", password, "backup", data)
    return repo, password


@requires_tool("restic")
def test_a_restic_repository_with_a_lost_pack_is_critical_repository_damaged(restic_repo, tmp_path) -> None:
    repo, password = restic_repo
    clock, state, run = Clock(), tmp_path / "state", Counting()
    job = restic_job(repo, password, host="*")
    healthy = report(job, clock, state, run)
    assert (healthy.integrity_checked_at, healthy.integrity_error, run.checks) == (clock(), None, 1)

    [pack] = [p for p in (repo / "data").rglob("*") if p.is_file() and p.stat().st_size > 200_000]
    pack.unlink()
    clock.advance(days=6, hours=23)
    assert report(job, clock, state, run, maintenance=True).integrity_error is None, "not due before 7 days"
    assert run.checks == 1

    clock.advance(hours=1)
    assert report(job, clock, state, run).integrity_error is None, "outside the window: due a day later"
    assert run.checks == 1
    damaged = report(job, clock, state, run, maintenance=True)
    assert run.checks == 2
    assert damaged.integrity_checked_at == clock()
    assert damaged.integrity_error and f"pack {pack.name}: does not exist" in damaged.integrity_error
    assert damaged.last_result == "success", "the snapshot is still listed: only the check sees the damage"
    status, summary = verdict(damaged, clock)
    assert status == "critical"
    assert summary.startswith(f"bookkeeping (restic): repository damaged: pack {pack.name}: does not exist")

    clock.advance(days=1)
    assert report(job, clock, state, run).integrity_error == damaged.integrity_error, "stays damaged till re-checked"


@requires_tool("restic")
def test_check_days_0_never_checks_and_a_locked_repository_is_checked_at_the_next_run(
    restic_repo, tmp_path
) -> None:
    repo, password = restic_repo
    clock, state, run = Clock(), tmp_path / "state", Counting()
    never = report(restic_job(repo, password, host="*", check_days=0), clock, state, run)
    assert (never.integrity_checked_at, run.checks) == (None, 0)

    job = restic_job(repo, password, host="*")
    with restic_locked(restic_repo):
        busy = report(job, clock, state, run)
    assert (run.checks, busy.integrity_checked_at, busy.integrity_error) == (1, None, None)
    assert last_check(state, "bookkeeping") is None, "a lock is no verdict: tried again"
    shell("restic", "--repo", repo, "--password-file", password, "unlock")  # the killed holder's lock
    clock.advance(minutes=15)
    assert report(job, clock, state, run).integrity_checked_at == clock()


@requires_tool("borg")
def test_a_borg_repository_with_a_truncated_segment_is_critical_repository_damaged(tmp_path, data) -> None:
    repo = tmp_path / "borg-repo"
    shell("borg", "init", "--encryption", "none", repo)
    shell("borg", "create", f"{repo}::server-1", data, env={"BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes"})
    clock, state, run = Clock(), tmp_path / "state", Counting()
    job = borg_job(repo, passphrase_env=None)
    assert report(job, clock, state, run).integrity_error is None

    [segment] = [p for p in (repo / "data").rglob("*") if p.is_file() and p.stat().st_size > 200_000]
    with segment.open("r+b") as damaged_file:
        damaged_file.truncate(1000)
    clock.advance(days=8)
    damaged = report(job, clock, state, run)
    assert run.checks == 2, "a PC off every night is checked a day late"
    assert damaged.integrity_error and damaged.integrity_error.startswith(
        f"Data integrity error: Segment entry data short read [segment {segment.name}"
    )
    assert "errors found" in damaged.integrity_error
    # A fresh `borg info` cannot read the archive either: the listing fails too, and the check says why.
    assert damaged.last_result == "failed"
    assert damaged.error and damaged.error.startswith("Data integrity error: Invalid segment entry header")
    assert "Traceback" not in damaged.error
    status, summary = verdict(damaged, clock)
    assert status == "critical"
    assert "; repository damaged: Data integrity error: Segment entry data short read" in summary


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to own a file as another user")
@requires_tool("restic")
def test_a_repository_another_user_owns_is_not_checked_by_the_agent(restic_repo, tmp_path) -> None:
    repo, password = restic_repo
    os.chown(repo, 65534, 65534)
    clock, state, run = Clock(), tmp_path / "state", Counting()
    job = report(restic_job(repo, password, host="*"), clock, state, run)
    assert (run.checks, job.integrity_checked_at) == (0, None)
    assert job.detail["integrity"].startswith("not checked: the repository belongs to uid 65534")
