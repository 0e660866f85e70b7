"""The backup_results check: real restic and borg repositories, recorded event logs and tmutil, folders."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agent.checks import CheckContext
from agent.checks.backup_results import BackupResultsCheck, timemachine, veeam, wsb
from agent.checks.backup_results import restic as restic_provider
from agent.checks.backup_results.eventlog import Event, events_script, parse_events
from agent.checks.backup_results.jobs import BackupSettings, MacriumJob, parse_jobs
from agent.checks.backup_results.macrium import event_classifier
from agent.commands import CommandResult
from shared.backup_results import BackupJob, BackupResults
from tests.agent.recorded_runs import FIXTURES, Recorded
from tests.tooling import requires_tool

BACKUP = FIXTURES / "backup"
PASSWORD = "correct horse battery staple"
CONTENT = {
    "ledger.csv": b"date;amount\n2024-05-05;12.50\n",
    "scan.pdf": b"%PDF-1.4\n" + bytes(range(256)) * 8,
}
DATA_BYTES = sum(len(body) for body in CONTENT.values())


def check(*jobs: dict[str, Any], run: Any = None) -> BackupResults:
    """Run the check over `jobs` and return its one signal."""
    context = CheckContext(settings={"jobs": list(jobs)}, **({"run": run} if run else {}))
    [signal] = BackupResultsCheck(context).collect()
    assert isinstance(signal, BackupResults)
    return signal


def only(*jobs: dict[str, Any], run: Any = None) -> BackupJob:
    """The report of a single job."""
    [job] = check(*jobs, run=run).jobs
    return job


def shell(
    *argv: str | Path, env: dict[str, str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    """Run a real tool for test setup; it must succeed."""
    return subprocess.run(
        [str(a) for a in argv],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        **kwargs,
    )


@pytest.fixture(autouse=True)
def tool_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """restic's cache, borg's state and the agent's records inside the test's folder, not the machine's."""
    monkeypatch.setenv("RESTIC_CACHE_DIR", str(tmp_path / "restic-cache"))
    monkeypatch.setenv("BORG_BASE_DIR", str(tmp_path / "borg-home"))
    monkeypatch.setattr("agent.config.platform_data_dir", lambda: tmp_path / "agent-state")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A small folder to back up."""
    folder = tmp_path / "Buchhaltung"
    folder.mkdir()
    for name, body in CONTENT.items():
        (folder / name).write_bytes(body)
    return folder


# --- restic (real) ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def restic_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One initialised, empty restic repository for the module (init derives a key slowly, on purpose)."""
    folder = tmp_path_factory.mktemp("restic-template")
    password = folder / "restic.pw"
    password.write_text(PASSWORD + "\n")
    repo = folder / "restic-repo"
    shell("restic", "--repo", repo, "--password-file", password, "init")
    return repo, password


@pytest.fixture
def restic_repo(restic_template: tuple[Path, Path], tmp_path: Path) -> tuple[Path, Path]:
    """A fresh copy of the empty repository and its password file."""
    template, password = restic_template
    repo = tmp_path / "restic-repo"
    shutil.copytree(template, repo)
    return repo, password


def restic_job(repo: Path, password: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "bookkeeping",
        "tool": "restic",
        "repository": str(repo),
        "password_file": str(password),
        **extra,
    }


def restic_backup(
    repo: Path, password: Path, *paths: Path, log: Path | None = None, host: str | None = None
) -> dict[str, Any]:
    """A real `restic backup --json` (as another PC when `host` is given); returns its summary (and writes its
    output to `log`)."""
    done = subprocess.run(
        [
            "restic",
            "--repo",
            str(repo),
            "--password-file",
            str(password),
            "--json",
            "backup",
            *(["--host", host] if host else []),
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if log is not None:
        log.write_text(done.stdout + done.stderr)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    return next((line for line in lines if line["message_type"] == "summary"), {})


def restic_snapshots(repo: Path, password: Path) -> list[dict[str, Any]]:
    listed = shell("restic", "--repo", repo, "--password-file", password, "--json", "snapshots")
    return json.loads(listed.stdout)


@requires_tool("restic")
def test_it_reports_a_real_restic_backup_with_its_snapshot_time_and_size(restic_repo, data) -> None:
    repo, password = restic_repo
    summary = restic_backup(repo, password, data)
    [snapshot] = restic_snapshots(repo, password)
    job = only(restic_job(repo, password))
    assert job.last_result == "success"
    assert job.last_success_at == datetime.fromisoformat(snapshot["time"]).astimezone(UTC)
    assert job.bytes_total == DATA_BYTES
    assert job.detail["snapshot_id"] == snapshot["id"][:8] == summary["snapshot_id"][:8]
    assert job.destination_free_bytes and job.destination_free_bytes > 0
    assert job.error is None


@requires_tool("restic")
def test_it_reports_the_newest_of_several_restic_snapshots(restic_repo, data) -> None:
    repo, password = restic_repo
    restic_backup(repo, password, data)
    (data / "new.txt").write_text("x" * 1000)
    restic_backup(repo, password, data)
    newest = max(restic_snapshots(repo, password), key=lambda snap: snap["time"])
    job = only(restic_job(repo, password))
    assert job.detail["snapshot_id"] == newest["id"][:8]
    assert job.bytes_total == DATA_BYTES + 1000


@requires_tool("restic")
def test_in_a_repository_several_pcs_share_only_this_pcs_snapshots_count(restic_repo, data) -> None:
    repo, password = restic_repo
    own = restic_backup(repo, password, data)
    restic_backup(repo, password, data, host="FRONTDESK-02")  # newer, but another PC's
    job = only(restic_job(repo, password))
    assert job.detail["snapshot_id"] == own["snapshot_id"][:8]
    assert job.detail["hostname"] != "FRONTDESK-02"
    anyone = only(restic_job(repo, password, host="*"))
    assert anyone.detail["hostname"] == "FRONTDESK-02"


@requires_tool("restic")
def test_a_pc_whose_own_backups_never_reached_a_shared_repository_is_not_counted_as_backed_up(
    restic_repo, data
) -> None:
    repo, password = restic_repo
    restic_backup(repo, password, data, host="FRONTDESK-02")
    job = only(restic_job(repo, password))
    assert (job.last_result, job.last_success_at) == ("unknown", None)


@requires_tool("restic")
def test_it_reads_the_restic_password_from_a_named_environment_variable(
    restic_repo, data, monkeypatch
) -> None:
    repo, password = restic_repo
    restic_backup(repo, password, data)
    monkeypatch.setenv("BOOKKEEPING_RESTIC_PW", PASSWORD)
    signal = check(
        {
            "name": "bookkeeping",
            "tool": "restic",
            "repository": str(repo),
            "password_env": "BOOKKEEPING_RESTIC_PW",
        }
    )
    assert signal.jobs[0].last_result == "success"
    assert PASSWORD not in signal.model_dump_json()


@requires_tool("restic")
def test_a_wrong_restic_password_is_a_failure_that_says_so(restic_repo, data, tmp_path) -> None:
    repo, password = restic_repo
    restic_backup(repo, password, data)
    wrong = tmp_path / "wrong.pw"
    wrong.write_text("not it\n")
    job = only(restic_job(repo, wrong))
    assert job.last_result == "failed"
    assert job.error and job.error.startswith("wrong password for the repository")
    assert "not it" not in job.model_dump_json()


@requires_tool("restic")
def test_a_missing_restic_repository_is_a_failure_that_says_so(restic_repo, tmp_path) -> None:
    _, password = restic_repo
    job = only(restic_job(tmp_path / "nas-not-mounted", password))
    assert job.last_result == "failed"
    assert job.error and job.error.startswith(f"no restic repository at {tmp_path / 'nas-not-mounted'}")


@contextlib.contextmanager
def restic_locked(restic_repo: tuple[Path, Path]) -> Iterator[None]:
    """Another restic holding the repository's exclusive lock (`key passwd` waits for a new password)."""
    repo, password = restic_repo
    holder = subprocess.Popen(
        ["restic", "--repo", str(repo), "--password-file", str(password), "key", "passwd"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not any((repo / "locks").iterdir()):
            assert time.monotonic() < deadline, "restic did not take the lock"
            time.sleep(0.02)
        yield
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture
def restic_snapshot_then_lock(restic_repo, data) -> Iterator[dict[str, Any]]:
    """A snapshot, then another restic holding the exclusive lock (as prune or check do)."""
    summary = restic_backup(*restic_repo, data)
    with restic_locked(restic_repo):
        yield summary


@requires_tool("restic")
def test_a_repository_locked_by_prune_or_check_is_still_read_not_failed(
    restic_repo, restic_snapshot_then_lock
) -> None:
    job = only(restic_job(*restic_repo))
    assert job.last_result == "success"
    assert job.detail["snapshot_id"] == restic_snapshot_then_lock["snapshot_id"][:8]


@requires_tool("restic")
def test_a_failed_run_in_the_restic_log_is_reported_with_the_last_good_snapshot(
    restic_repo, data, tmp_path
) -> None:
    repo, password = restic_repo
    restic_backup(repo, password, data)
    [snapshot] = restic_snapshots(repo, password)
    log = tmp_path / "last-backup.json"
    restic_backup(repo, password, tmp_path / "share-not-mounted", log=log)
    job = only(restic_job(repo, password, log_file=str(log)))
    assert job.last_result == "failed"
    assert job.error and "Fatal" in job.error
    assert job.last_success_at == datetime.fromisoformat(snapshot["time"]).astimezone(UTC)


@requires_tool("restic")
def test_a_good_run_in_the_restic_log_adds_what_it_stored(restic_repo, data, tmp_path) -> None:
    repo, password = restic_repo
    log = tmp_path / "last-backup.json"
    summary = restic_backup(repo, password, data, log=log)
    job = only(restic_job(repo, password, log_file=str(log)))
    assert (job.last_result, job.bytes_added) == ("success", summary["data_added"])
    assert job.duration_seconds == pytest.approx(summary["total_duration"])


@requires_tool("restic")
def test_an_empty_restic_repository_is_unknown_not_healthy(restic_repo) -> None:
    job = only(restic_job(*restic_repo))
    assert (job.last_result, job.error) == ("unknown", "no snapshot in the repository yet")


# --- restic (documented shapes of newer versions) -----------------------------------------------------------


def test_it_takes_times_and_sizes_from_the_summary_restic_017_stores_in_snapshots() -> None:
    snapshot = restic_provider.newest_snapshot((BACKUP / "restic-0.17-snapshots.json").read_text())
    assert snapshot is not None
    facts = restic_provider.snapshot_facts(snapshot, None, None)
    assert facts["last_run_started_at"] == datetime(2024, 5, 5, 20, 0, 3, 214871, tzinfo=UTC)
    assert facts["last_success_at"] == datetime(2024, 5, 5, 20, 3, 41, 902211, tzinfo=UTC)
    assert (facts["bytes_total"], facts["bytes_added"], facts["file_count"]) == (7311029144, 48213331, 4825)


def test_files_restic_could_not_read_make_the_run_a_warning() -> None:
    snapshot = restic_provider.newest_snapshot((BACKUP / "restic-0.17-snapshots.json").read_text())
    assert snapshot is not None
    log = restic_provider.parse_backup_log((BACKUP / "restic-0.17-backup-incomplete.jsonl").read_text())
    facts = restic_provider.with_log(
        restic_provider.snapshot_facts(snapshot, None, None), snapshot, log, None
    )
    assert facts["last_result"] == "warning"
    assert facts["error"].startswith("1 files not read: D:\\Buchhaltung\\2024\\Mai.xlsx: open D:")
    assert facts["bytes_added"] == 58211


@pytest.mark.parametrize(
    ("code", "stderr", "start"),
    [
        (10, "", "no restic repository at /srv/r"),
        (11, "", "the repository /srv/r is locked"),
        (12, "", "wrong password for the repository /srv/r"),
        (1, "Fatal: wrong password or no key found\n", "wrong password for the repository /srv/r"),
        (1, (BACKUP / "restic-0.17-exit-error.txt").read_text(), "wrong password for the repository /srv/r"),
        (
            1,
            "Fatal: unable to open repository at sftp:nas:/r: ssh: connect refused\n",
            "restic failed with exit",
        ),
    ],
)
def test_restic_failures_are_told_apart_by_exit_code_or_message(code: int, stderr: str, start: str) -> None:
    assert restic_provider.failure(code, stderr, "/srv/r").startswith(start)


# --- borg (real) --------------------------------------------------------------------------------------------


@pytest.fixture
def borg_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An initialised, encrypted borg repository and the environment that opens it."""
    repo = tmp_path / "borg-repo"
    env = {"BORG_PASSPHRASE": PASSWORD}
    shell("borg", "init", "--encryption", "repokey", repo, env=env)
    return repo, env


def borg_job(repo: Path, **extra: Any) -> dict[str, Any]:
    return {
        "name": "server",
        "tool": "borg",
        "repository": str(repo),
        "passphrase_env": "SERVER_BORG_PW",
        "schedule": "0 22 * * 0",
        **extra,
    }


@pytest.fixture
def borg_env(monkeypatch) -> None:
    """The agent's environment: the passphrase in the variable the job names."""
    monkeypatch.setenv("SERVER_BORG_PW", PASSWORD)


@requires_tool("borg")
def test_it_reports_a_real_borg_archive_with_its_time_and_size(borg_repo, borg_env, data) -> None:
    repo, env = borg_repo
    created = json.loads(shell("borg", "create", "--json", f"{repo}::server-{{now}}", data, env=env).stdout)
    job = only(borg_job(repo))
    assert job.last_result == "success"
    archive = created["archive"]
    assert job.last_run_started_at == datetime.fromisoformat(archive["start"]).astimezone(UTC)
    assert job.detail["archive"] == archive["name"]
    assert (job.bytes_total, job.file_count) == (DATA_BYTES, len(CONTENT))
    assert job.bytes_added and job.bytes_added > 0
    assert PASSWORD not in job.model_dump_json()


@requires_tool("borg")
def test_a_wrong_borg_passphrase_is_a_failure_that_says_so(borg_repo, borg_env, monkeypatch) -> None:
    repo, _ = borg_repo
    monkeypatch.setenv("SERVER_BORG_PW", "not it")
    job = only(borg_job(repo))
    assert job.last_result == "failed"
    assert job.error and job.error.startswith(f"wrong passphrase for the repository {repo}")


@requires_tool("borg")
def test_a_missing_borg_repository_is_a_failure_that_says_so(borg_env, tmp_path) -> None:
    job = only(borg_job(tmp_path / "usb-disk-not-plugged-in"))
    assert job.last_result == "failed"
    assert job.error and job.error.startswith("no borg repository at")


@requires_tool("borg")
def test_a_repository_locked_by_the_nightly_borg_create_is_still_read_not_failed(borg_repo, borg_env, data) -> None:
    repo, env = borg_repo
    shell("borg", "create", f"{repo}::server-1", data, env=env)
    holder = subprocess.Popen(["borg", "with-lock", str(repo), "sleep", "30"], env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 10
        while not (repo / "lock.exclusive").exists():
            assert time.monotonic() < deadline, "borg did not take the lock"
            time.sleep(0.02)
        job = only(borg_job(repo))
    finally:
        holder.kill()
        holder.wait()
    assert (job.last_result, job.detail["archive"]) == ("success", "server-1")


@requires_tool("borg")
def test_an_unencrypted_borg_repository_is_read(tmp_path, data) -> None:
    repo = tmp_path / "plain-repo"
    shell("borg", "init", "--encryption", "none", repo)
    shell("borg", "create", f"{repo}::server-1", data)
    job = only(borg_job(repo, passphrase_env=None))
    assert (job.last_result, job.detail["archive"], job.error) == ("success", "server-1", None)


def test_a_missing_borg_program_is_unknown_not_a_failed_backup(tmp_path) -> None:
    job = only(borg_job(tmp_path / "repo", binary="borg-that-is-not-installed"))
    assert (job.last_result, job.error) == ("unknown", "borg-that-is-not-installed is not installed or not on PATH")


@requires_tool("borg")
def test_an_empty_borg_repository_is_unknown_not_healthy(borg_repo, borg_env) -> None:
    job = only(borg_job(borg_repo[0]))
    assert (job.last_result, job.error) == ("unknown", "no archive in the repository yet")


# --- a tool that is not installed ---------------------------------------------------------------------------


def test_a_job_whose_tool_is_missing_is_unknown_with_the_reason(tmp_path) -> None:
    job = only(
        {
            "name": "nas",
            "tool": "restic",
            "repository": "/srv/r",
            "password_file": str(tmp_path / "pw"),
            "binary": "restic-that-is-not-installed",
        }
    )
    assert job.last_result == "unknown"
    assert job.error == "restic-that-is-not-installed is not installed or not on PATH"


# --- Windows Server Backup and Veeam (recorded Get-WinEvent | ConvertTo-Json) -------------------------------


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).replace(tzinfo=UTC)


def wsb_logs(operational: str, application: str) -> Any:
    """A runner answering the operational log's query with one recording and the Application log's with another."""

    def run(argv: Any, timeout: float = 60.0) -> CommandResult:
        name = application if "LogName='Application'" in argv[-1] else operational
        return CommandResult(tuple(argv), 0, (BACKUP / name).read_text(encoding="utf-8"), "")

    return run


@pytest.mark.parametrize(
    ("fixture", "result", "ended", "success", "error"),
    [
        ("wsb-success.json", "success", "2024-05-05T21:47:30.977", "2024-05-05T21:47:30.977", None),
        (
            "wsb-failed.json",
            "failed",
            "2024-05-05T21:12:02.105",
            "2024-05-04T21:41:09.730",
            "has failed with following error code '2147942455'",
        ),
        ("wsb-warning.json", "warning", "2024-05-05T21:52:43.881", None, "has completed with errors"),
        ("wsb-vss-failed.json", "failed", "2024-05-05T21:03:10.018", None, "Volume Shadow Copy Service"),
        ("wsb-no-destination.json", "failed", "2024-05-05T21:00:21.332", None, "no backup storage location"),
        ("wsb-completed-only.json", "unknown", None, None, "(14) found: not proof of success"),
        ("wsb-single-object.json", "success", "2024-05-05T21:47:30.977", "2024-05-05T21:47:30.977", None),
        ("eventlog-none.json", "unknown", None, None, "no finished backup run found"),
    ],
)
def test_it_reads_windows_server_backup_events(fixture, result, ended, success, error) -> None:
    job = only({"name": "server-image", "tool": "wsb"}, run=wsb_logs(fixture, "eventlog-none.json"))
    assert job.last_result == result
    assert job.last_run_ended_at == (at(ended) if ended else None)
    assert job.last_success_at == (at(success) if success else None)
    assert (error in (job.error or "")) if error else job.error is None


@pytest.mark.parametrize(
    ("event_id", "result"),
    [(4, "success"), (7, "warning"), (13, "warning"), (14, None), (1, None)]
    + [(event_id, "failed") for event_id in (5, 6, 8, 9, 17, 18, 19, 20, 21, 22, 49, 50, 52)],
)
def test_windows_server_backup_event_ids_mean_what_microsoft_documents(
    event_id: int, result: str | None
) -> None:
    assert wsb.classify(Event(id=event_id, level=4, time=at("2024-05-05T21:00:00"), message="")) == result


@pytest.mark.parametrize("event_id", [517, 521, 528, 544, 545, 546, 561, 564, 612])
@pytest.mark.parametrize(("level", "result"), [(1, "failed"), (2, "failed"), (3, "warning"), (4, None)])
def test_application_log_backup_events_are_judged_by_their_level(event_id: int, level: int, result) -> None:
    event = Event(id=event_id, level=level, time=at("2024-05-05T21:00:00"), message="")
    assert wsb.classify(event) == result


@pytest.mark.parametrize(
    ("operational", "application", "error_id", "ended", "success", "error"),
    [
        # The operational log holds the good run of the 5th; the failure of the 6th is only in Application.
        ("wsb-success.json", "wsb-app-failed.json", "517", "2024-05-06T21:05:12.311", "2024-05-05T21:47:30.977",
         "failed with following error code '0x807800C5' (There was a failure in preparing the backup image"),
        # The operational log was cleared: the Application log still tells the disk was not there.
        ("eventlog-none.json", "wsb-app-no-target.json", "561", "2024-05-07T21:00:09.004", None,
         "failed as the backup storage location could not be found"),
    ],
)
def test_a_failure_only_the_application_log_records_is_the_last_run(
    operational, application, error_id, ended, success, error
) -> None:
    job = only({"name": "server-image", "tool": "wsb"}, run=wsb_logs(operational, application))
    assert job.last_result == "failed"
    assert job.last_run_ended_at == at(ended)
    assert job.last_success_at == (at(success) if success else None)
    assert job.error and error in job.error
    assert job.detail == {"event_id": error_id, "provider": "Microsoft-Windows-Backup"}


def test_an_application_log_failure_older_than_the_last_success_does_not_count() -> None:
    operational = parse_events((BACKUP / "wsb-success.json").read_text(encoding="utf-8"))
    application = parse_events((BACKUP / "wsb-app-failed.json").read_text(encoding="utf-8"))
    older = [event for event in application if event.id == 521]
    assert wsb.facts(operational, older)["last_result"] == "success"
    assert wsb.facts(operational, application)["last_result"] == "failed"


def test_it_asks_for_exactly_the_windows_server_backup_outcome_events() -> None:
    run = Recorded({("powershell.exe",): ("backup/eventlog-none.json", 0)})
    only({"name": "server-image", "tool": "wsb"}, run=run)
    script = run.calls[0][-1]
    assert "LogName='Microsoft-Windows-Backup'; Id=4,5,6,7,8,9,13,14,17,18,19,20,21,22,49,50,52" in script
    application = run.calls[1][-1]
    assert (
        "LogName='Application'; Id=517,521,528,544,545,546,561,564,612; ProviderName='Microsoft-Windows-Backup'"
        in application
    )
    assert "ConvertTo-Json -InputObject @(" in script


def test_a_missing_event_log_names_the_missing_software() -> None:
    def no_log(argv, timeout=60.0):
        return CommandResult(
            tuple(argv),
            1,
            "",
            'Get-WinEvent : There is not an event log on the localhost computer that matches "Veeam Agent".',
        )

    job = only({"name": "laptop", "tool": "veeam"}, run=no_log)
    assert job.last_result == "unknown"
    assert (
        job.error
        == "RuntimeError: the event log 'Veeam Agent' does not exist: is the backup software installed?"
    )


@pytest.mark.parametrize(
    ("fixture", "result", "started", "ended", "success"),
    [
        (
            "veeam-success.json",
            "success",
            "2024-05-05T20:00:03.118",
            "2024-05-05T20:31:12.447",
            "2024-05-05T20:31:12.447",
        ),
        (
            "veeam-warning.json",
            "warning",
            "2024-05-05T20:00:02.871",
            "2024-05-05T20:44:51.020",
            "2024-05-04T20:29:40.336",
        ),
        (
            "veeam-failed.json",
            "failed",
            "2024-05-05T20:00:02.114",
            "2024-05-05T20:41:07.993",
            "2024-05-04T20:29:40.336",
        ),
        (
            "veeam-retry.json",
            "warning",
            "2024-05-05T20:00:02.114",
            "2024-05-05T20:20:34.551",
            "2024-05-04T20:29:40.336",
        ),
    ],
)
def test_it_reads_veeam_agent_events(fixture, result, started, ended, success) -> None:
    run = Recorded({("powershell.exe",): (f"backup/{fixture}", 0)})
    job = only({"name": "laptop", "tool": "veeam"}, run=run)
    assert (job.last_result, job.last_run_started_at) == (result, at(started))
    assert (job.last_run_ended_at, job.last_success_at) == (at(ended), at(success))
    assert job.duration_seconds == (at(ended) - at(started)).total_seconds()


@pytest.mark.parametrize(
    ("event_id", "level", "message", "result"),
    [
        (190, 4, "Veeam Agent Backup Job PC-07 finished with Success.", "success"),
        (190, 3, "Veeam Agent Backup Job PC-07 finished with Warning.", "warning"),
        (190, 2, "Veeam Agent Backup Job PC-07 finished with Failed.", "failed"),
        # Without the provider's message file Windows gives no text: the level still tells.
        (190, 2, "", "failed"),
        (190, 3, "", "warning"),
        (190, 4, "", "success"),
        (191, 3, "Veeam Agent Backup Job PC-07 finished with Error and will be retried.", "warning"),
        (110, 4, "Veeam Agent Backup Job PC-07 has been started.", None),
    ],
)
def test_veeam_event_190_is_judged_by_its_status_and_191_is_a_retry(event_id, level, message, result) -> None:
    assert (
        veeam.classify(Event(id=event_id, level=level, time=at("2024-05-05T20:00:00"), message=message))
        == result
    )


def test_veeam_events_of_other_jobs_are_ignored_when_a_job_name_is_set() -> None:
    events = parse_events((BACKUP / "veeam-failed.json").read_text())
    assert veeam.facts(events, "Backup Job PC-07")["last_result"] == "failed"
    assert veeam.facts(events, "Backup Job NAS")["last_result"] == "unknown"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/Date(1714945650977)/", datetime(2024, 5, 5, 21, 47, 30, 977000, tzinfo=UTC)),
        ("2024-05-05T23:47:30.9770000+02:00", datetime(2024, 5, 5, 21, 47, 30, 977000, tzinfo=UTC)),
    ],
)
def test_event_times_from_windows_powershell_and_powershell_7_are_the_same_instant(text, expected) -> None:
    record = {"Id": 4, "Level": 4, "TimeCreated": text, "Message": "x"}
    assert parse_events(json.dumps([record]))[0].time == expected


def test_event_log_filters_quote_names_for_powershell() -> None:
    assert "ProviderName='O''Brien Backup'" in events_script("Application", [1], "O'Brien Backup")


# --- Macrium Reflect ----------------------------------------------------------------------------------------


def test_macrium_events_are_judged_by_the_ids_configured_in_reflect() -> None:
    job = MacriumJob(name="image", tool="macrium", success_event_ids=[1000], failure_event_ids=[1001])
    classify = event_classifier(job)
    assert [
        classify(Event(id=i, level=4, time=at("2024-05-05T20:00:00"), message="")) for i in (1000, 1001, 7)
    ] == ["success", "failed", None]


def write(path: Path, text: str, when: datetime) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def test_macrium_log_files_are_judged_by_the_configured_texts(tmp_path) -> None:
    day = datetime(2024, 5, 5, 23, 0, tzinfo=UTC)
    write(tmp_path / "logs" / "a.html", "<p>Image completed successfully</p>", day - timedelta(days=1))
    write(tmp_path / "logs" / "b.html", "<p>Backup aborted!</p>", day)
    job = only(
        {
            "name": "image",
            "tool": "macrium",
            "log_dir": str(tmp_path / "logs"),
            "success_text": "completed successfully",
            "failure_text": "aborted",
        }
    )
    assert (job.last_result, job.last_run_ended_at, job.last_success_at) == (
        "failed",
        day,
        day - timedelta(days=1),
    )
    assert job.detail == {"log_file": "b.html"}


# --- Time Machine (recorded tmutil) -------------------------------------------------------------------------


def test_time_machine_reports_the_latest_backup_in_local_time() -> None:
    found = timemachine.facts(
        (BACKUP / "tmutil-destinationinfo.txt").read_text(),
        (BACKUP / "tmutil-latestbackup.txt").read_text(),
        ZoneInfo("Europe/Berlin"),
    )
    assert found["last_result"] == "success"
    assert found["last_success_at"] == datetime(2024, 5, 5, 20, 15, 3, tzinfo=UTC)
    assert found["detail"] == {"destination": "time_mach"}


def test_time_machine_without_a_destination_is_a_failure() -> None:
    found = timemachine.facts((BACKUP / "tmutil-destinationinfo-none.txt").read_text(), "")
    assert (found["last_result"], found["error"]) == (
        "failed",
        "Time Machine has no backup destination configured",
    )


def test_time_machine_with_the_disk_unplugged_is_unknown_not_failed() -> None:
    found = timemachine.facts(
        (BACKUP / "tmutil-destinationinfo.txt").read_text(),
        (BACKUP / "tmutil-latestbackup-not-mounted.txt").read_text(),
    )
    assert (found["last_result"], found["error"]) == ("unknown", "the backup disk is not connected")


def test_time_machine_runs_tmutil_through_the_check() -> None:
    run = Recorded(
        {
            ("tmutil", "destinationinfo"): ("backup/tmutil-destinationinfo.txt", 0),
            ("tmutil", "latestbackup"): ("backup/tmutil-latestbackup.txt", 0),
        }
    )
    assert only({"name": "mac", "tool": "timemachine", "schedule": "daily"}, run=run).last_result == "success"


# --- image files on a share (real folders) ------------------------------------------------------------------


def test_image_files_report_the_newest_image_its_size_and_the_one_before(tmp_path) -> None:
    sunday = datetime(2024, 5, 5, 23, 40, tzinfo=UTC)
    write(tmp_path / "nas/PC-07/2024-04-28.mrimg", "x" * 900, sunday - timedelta(days=7))
    write(tmp_path / "nas/PC-07/2024-05-05.mrimg", "x" * 1000, sunday)
    write(tmp_path / "nas/PC-07/readme.txt", "not an image", sunday + timedelta(hours=1))
    job = only(
        {
            "name": "weekly-image",
            "tool": "imagefiles",
            "path": str(tmp_path / "nas"),
            "glob": "**/*.mrimg",
            "schedule": "weekly",
        }
    )
    assert (job.last_result, job.last_success_at) == ("success", sunday)
    assert (job.bytes_total, job.previous_bytes_total) == (1000, 900)
    assert job.detail == {"file": "PC-07/2024-05-05.mrimg", "kind": "full"}
    assert job.destination_free_bytes and job.destination_free_bytes > 0


@pytest.mark.parametrize(("full", "incremental", "older_incremental"), [
    ("5A3C3E1F4A6B12D0-00-00.mrimg", "5A3C3E1F4A6B12D0-01-01.mrimg", "0B07C3E1F4A6B12D-02-02.mrimg"),  # Macrium Reflect
    ("Job D2024-05-05.vbk", "Job D2024-05-06.vib", "Job D2024-04-30.vib"),  # Veeam
    ("C_VOL-b001.spf", "C_VOL-b001-i001.spi", "C_VOL-b000-i006.spi"),  # ShadowProtect
    ("Daily_full_b2_s1_v1.tib", "Daily_inc_b2_s2_v1.tib", "Daily_inc_b1_s7_v1.tib"),  # Acronis
])
def test_an_incremental_image_is_compared_with_incrementals_not_with_the_full_one(
    tmp_path, full, incremental, older_incremental
) -> None:
    sunday = datetime(2024, 5, 5, 23, 40, tzinfo=UTC)
    write(tmp_path / "nas" / older_incremental, "x" * 40, sunday - timedelta(days=6))
    write(tmp_path / "nas" / full, "x" * 4000, sunday)
    spec = {"name": "image", "tool": "imagefiles", "path": str(tmp_path / "nas"), "schedule": "daily"}
    job = only(spec)
    assert (job.bytes_total, job.previous_bytes_total, job.detail["kind"]) == (4000, None, "full")
    write(tmp_path / "nas" / incremental, "x" * 120, sunday + timedelta(days=1))
    job = only(spec)
    assert (job.bytes_total, job.previous_bytes_total, job.detail["kind"]) == (120, 40, "incremental")


def test_an_empty_newest_image_is_a_failure_and_the_last_good_one_is_kept(tmp_path) -> None:
    sunday = datetime(2024, 5, 5, 23, 40, tzinfo=UTC)
    write(tmp_path / "nas/2024-04-28.img", "x" * 900, sunday - timedelta(days=7))
    write(tmp_path / "nas/2024-05-05.img", "", sunday)
    job = only({"name": "weekly-image", "tool": "imagefiles", "path": str(tmp_path / "nas"), "glob": "*.img"})
    assert (job.last_result, job.last_success_at) == ("failed", sunday - timedelta(days=7))
    assert job.error == "the newest image 2024-05-05.img is empty"


def test_an_unreachable_image_share_is_unknown(tmp_path) -> None:
    job = only({"name": "weekly-image", "tool": "imagefiles", "path": str(tmp_path / "not-mounted")})
    assert job.last_result == "unknown"
    assert job.error == f"{tmp_path / 'not-mounted'} is not reachable (share not mounted?)"


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("jobs", "message"),
    [
        (
            [{"name": "bookkeeping", "tool": "restic", "password_file": "/pw"}],
            "backup job 'bookkeeping': repository: Field required",
        ),
        (
            [{"name": "bookkeeping", "tool": "restic", "repository": "/r"}],
            "backup job 'bookkeeping': set exactly one of password_file and password_env",
        ),
        (
            [{"name": "x", "tool": "restic", "repository": "/r", "password_env": "MY PW"}],
            "backup job 'x': password_env: must be an environment variable name",
        ),
        ([{"name": "nas", "tool": "rsync"}], "backup job 'nas': tool: Input tag 'rsync' found using 'tool'"),
        ([{"tool": "wsb"}], "backup job #1: name: Field required"),
        (
            [{"name": "w", "tool": "wsb", "schedule": "sundays"}],
            "backup job 'w': schedule: schedule must be 'daily', 'weekly' or a cron expression",
        ),
        (
            [{"name": "w", "tool": "wsb"}, {"name": "w", "tool": "veeam"}],
            "backup job 'w': name: used by another job",
        ),
        ([{"name": "w", "tool": "wsb", "repository": "/r"}], "backup job 'w': repository: Extra inputs"),
    ],
)
def test_a_bad_job_is_one_clear_error_naming_the_job_and_the_key(jobs, message) -> None:
    with pytest.raises(ValueError) as raised:
        parse_jobs(jobs)
    assert str(raised.value).startswith(message)


def test_the_settings_model_accepts_the_issue_example() -> None:
    settings = BackupSettings.model_validate(
        {
            "jobs": [
                {
                    "name": "bookkeeping",
                    "tool": "restic",
                    "repository": "/mnt/nas/restic",
                    "password_file": "/etc/fieldpost/restic.pw",
                    "schedule": "daily",
                }
            ]
        }
    )
    assert [job.name for job in settings.jobs] == ["bookkeeping"]


def test_the_check_reports_every_job_with_its_schedule_and_grace(tmp_path) -> None:
    signal = check(
        {
            "name": "a",
            "tool": "imagefiles",
            "path": str(tmp_path),
            "schedule": "0 22 * * 0",
            "grace_hours": 12,
        },
        {"name": "b", "tool": "imagefiles", "path": str(tmp_path)},
    )
    assert [(j.name, j.schedule, j.grace_seconds) for j in signal.jobs] == [
        ("a", "0 22 * * 0", 43200.0),
        ("b", "daily", None),
    ]
    assert BackupResultsCheck.default_interval == 900
