"""`fieldpost-agent backup-run`: real restic and borg runs that skip a file, fail or succeed, as reported."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.checks.backup_results.runs import RunRecord, describe, last_run, verdict, with_run
from agent.cli import main
from agent.config import load_config
from agent.identity import Identity, save_identity
from agent.service import build_checks
from shared.backup_results import BackupJob, BackupResults
from tests.agent.test_backup_report import queued
from tests.tooling import requires_tool

NOBODY = 65534
PASSWORD = "correct horse battery staple"


@pytest.fixture
def place() -> Iterator[Path]:
    """A folder the unprivileged backup user can reach (pytest's own tmp folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="fieldpost-backup-run-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def source(place: Path) -> Path:
    """Data to back up, one file of which the backup user cannot read (root-owned, mode 000)."""
    folder = place / "Buchhaltung"
    folder.mkdir(mode=0o755)
    (folder / "ledger.csv").write_text("date;amount\n2024-05-05;12.50\n")
    secret = folder / "Lohn-2024.xlsx"
    secret.write_bytes(b"PK\x03\x04" + bytes(200))
    secret.chmod(0o000)
    return folder


def unprivileged(*argv: str | Path) -> list[str]:
    """`argv` run as nobody, as a scheduler runs a backup as its own user (root reads every file)."""
    if os.geteuid() != 0:
        return [str(a) for a in argv]
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv is not installed")
    # Without libfaketime (`make test-dates` preloads it): as nobody it cannot open the semaphore root's
    # `faketime` made, and exits 1 before the backup tool starts. The tool's own clock is not under test.
    return ["env", "-u", "LD_PRELOAD", "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
            *map(str, argv)]


def owned_by_backup_user(path: Path) -> Path:
    """`path` and everything below it writable by the backup user."""
    if os.geteuid() == 0:
        for root, dirs, files in os.walk(path):
            for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
                os.chown(name, NOBODY, NOBODY)
    return path


@pytest.fixture
def enrolled(state_dir: Path, identity: Identity) -> Identity:
    save_identity(state_dir, identity)
    return identity


def config_with(tmp_path: Path, state_dir: Path, job: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\nstate_dir = "{state_dir}"\n\n[[backup.jobs]]\n{job}')
    return path


def run(config: Path, job: str, *argv: str | Path) -> int:
    return main(["--config", str(config), "backup-run", "--job", job, "--", *map(str, argv)])


def checked(config: Path, name: str) -> BackupJob:
    """The job as the service's backup_results check reports it later."""
    [signal] = build_checks(load_config(config), ["backup_results"])["backup_results"].collect()
    assert isinstance(signal, BackupResults)
    return next(job for job in signal.jobs if job.name == name)


def last_queued(state_dir: Path, identity: Identity) -> BackupJob:
    signal = queued(state_dir, identity)[-1].signals[0]
    assert isinstance(signal, BackupResults)
    return signal.jobs[0]


# --- restic -------------------------------------------------------------------------------------------------


@pytest.fixture
def restic_setup(place: Path, tmp_path: Path, state_dir: Path, monkeypatch) -> tuple[Path, Path, Path]:
    """A restic repository the backup user owns, its password file and the agent config naming it."""
    monkeypatch.setenv("RESTIC_CACHE_DIR", str(tmp_path / "restic-cache"))
    password = place / "restic.pw"
    password.write_text(PASSWORD + "\n")
    repo = place / "restic-repo"
    assert main_tool("restic", "--repo", repo, "--password-file", password, "init") == 0
    owned_by_backup_user(place)
    config = config_with(
        tmp_path, state_dir, f'name = "bookkeeping"\ntool = "restic"\nrepository = "{repo}"\n'
        f'password_file = "{password}"\nhost = "*"\n'
    )
    return repo, password, config


def main_tool(*argv: str | Path) -> int:
    import subprocess

    return subprocess.run([str(a) for a in argv], capture_output=True, check=False).returncode


def restic(repo: Path, password: Path, *args: str | Path) -> list[str]:
    return unprivileged("restic", "--no-cache", "--repo", repo, "--password-file", password, *args)


@requires_tool("restic")
def test_a_restic_run_that_could_not_read_a_file_is_a_warning_naming_it(
    restic_setup, source, state_dir, enrolled
) -> None:
    repo, password, config = restic_setup
    assert run(config, "bookkeeping", *restic(repo, password, "--json", "backup", source)) == 3
    job = last_queued(state_dir, enrolled)
    assert job.last_result == "warning"
    assert job.error and job.error.startswith("1 files could not be read (exit status 3)")
    assert "Lohn-2024.xlsx" in job.error and "permission denied" in job.error.lower()
    assert job.last_success_at is not None, "the snapshot was still made"
    # The service's check keeps saying so until the next run.
    later = checked(config, "bookkeeping")
    assert (later.last_result, later.error) == ("warning", job.error)

    (source / "Lohn-2024.xlsx").chmod(0o644)
    assert run(config, "bookkeeping", *restic(repo, password, "backup", source)) == 0
    assert (checked(config, "bookkeeping").last_result, checked(config, "bookkeeping").error) == ("success", None)


@requires_tool("restic")
def test_a_failed_restic_run_is_a_failure_while_the_repository_shows_the_last_snapshot(
    restic_setup, source, state_dir, enrolled
) -> None:
    repo, password, config = restic_setup
    (source / "Lohn-2024.xlsx").chmod(0o644)
    assert run(config, "bookkeeping", *restic(repo, password, "backup", source)) == 0
    good = checked(config, "bookkeeping")
    assert good.last_result == "success"
    rc = run(config, "bookkeeping", *restic(repo, password, "backup", source.parent / "share-not-mounted"))
    assert rc not in (0, 3)
    job = checked(config, "bookkeeping")
    assert job.last_result == "failed"
    assert job.error and job.error.startswith(f"restic failed with exit status {rc}: Fatal:")
    assert job.last_success_at == good.last_success_at
    assert job.last_run_ended_at and good.last_run_started_at and job.last_run_ended_at > good.last_run_started_at


def test_a_missing_backup_program_is_recorded_as_a_failed_run(
    tmp_path, state_dir, enrolled, capsys
) -> None:
    config = config_with(tmp_path, state_dir, f'name = "b"\ntool = "borg"\nrepository = "{tmp_path / "r"}"\n')
    assert run(config, "b", "borg-that-is-not-installed", "create", "r::a") == 127
    assert "failed (exit status 127) recorded and queued" in capsys.readouterr().err
    record = last_run(state_dir, "b")
    assert record is not None and verdict(record) == "failed"
    assert describe(record) == (
        "borg failed with exit status 127: borg-that-is-not-installed is not installed or not on PATH"
    )


def test_only_restic_and_borg_jobs_can_be_wrapped_and_a_command_is_needed(tmp_path, state_dir, capsys) -> None:
    config = config_with(tmp_path, state_dir, 'name = "nas"\ntool = "script"\n')
    assert run(config, "nas", "true") == 2
    assert "backup job 'nas' is a script job" in capsys.readouterr().err
    assert main(["--config", str(config), "backup-run", "--job", "nas"]) == 2
    assert "needs the backup command after `--`" in capsys.readouterr().err


# --- borg ---------------------------------------------------------------------------------------------------


@pytest.fixture
def borg_setup(place: Path, tmp_path: Path, state_dir: Path, monkeypatch) -> tuple[Path, Path]:
    """An unencrypted borg repository the backup user owns and the agent config naming it."""
    monkeypatch.setenv("BORG_BASE_DIR", str(tmp_path / "borg-home"))
    repo = place / "borg-repo"
    assert main_tool("env", f"BORG_BASE_DIR={tmp_path / 'borg-home'}", "borg", "init", "-e", "none", repo) == 0
    (place / "borg-user-home").mkdir()
    owned_by_backup_user(place)
    config = config_with(tmp_path, state_dir, f'name = "server"\ntool = "borg"\nrepository = "{repo}"\n')
    return repo, config


def borg(place: Path, *args: str | Path) -> list[str]:
    return unprivileged("env", f"BORG_BASE_DIR={place / 'borg-user-home'}",
                        "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes", "borg", *args)


@requires_tool("borg")
def test_a_borg_run_with_warnings_is_a_warning_and_rc_2_a_failure(
    borg_setup, place, source, state_dir, enrolled
) -> None:
    repo, config = borg_setup
    assert run(config, "server", *borg(place, "create", "--log-json", f"{repo}::server-1", source)) == 1
    job = last_queued(state_dir, enrolled)
    assert (job.last_result, job.detail["archive"]) == ("warning", "server-1")
    assert job.error and job.error.startswith("1 warnings (files skipped or changed) (exit status 1)")
    assert "Lohn-2024.xlsx" in job.error and "Permission denied" in job.error

    # The same archive name again: borg refuses with exit status 2, no new archive.
    assert run(config, "server", *borg(place, "create", f"{repo}::server-1", source)) == 2
    job = checked(config, "server")
    assert job.last_result == "failed"
    assert job.error and job.error.startswith("borg failed with exit status 2: Archive server-1 already exists")
    assert job.last_success_at is not None and job.detail["archive"] == "server-1"


# --- how a run corrects the repository's view ---------------------------------------------------------------


def test_a_run_older_than_the_newest_backup_changes_nothing() -> None:
    newest = datetime(2024, 5, 6, 22, 0, tzinfo=UTC)
    facts = {"last_result": "success", "last_run_started_at": newest, "last_success_at": newest}
    older = RunRecord(
        job="j", tool="restic", returncode=1, started_at=(newest - timedelta(days=1)).isoformat(),
        ended_at=(newest - timedelta(days=1, minutes=-5)).isoformat(), fatal="Fatal: unable to open",
    )
    assert with_run(facts, older) == facts
    newer = RunRecord(**{**older.__dict__, "started_at": (newest + timedelta(days=1)).isoformat(),
                         "ended_at": (newest + timedelta(days=1, minutes=5)).isoformat()})
    corrected = with_run(facts, newer)
    assert (corrected["last_result"], corrected["last_success_at"]) == ("failed", newest)
    assert corrected["duration_seconds"] == 300
