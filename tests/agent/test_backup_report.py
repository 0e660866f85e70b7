"""`fieldpost-agent backup-report`: a backup script's result goes into the outbox and the check repeats it."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_config
from agent.identity import Identity, save_identity
from agent.outbox import OUTBOX_FILE, Outbox
from agent.service import build_checks
from shared.backup_results import BackupJob, BackupResults
from shared.wire import Envelope
from tests.agent.support import heartbeat

AGENT = Path(sys.executable).parent / "fieldpost-agent"
JOBS = """
[[backup.jobs]]
name = "nas-sync"
tool = "script"
schedule = "daily"
grace_hours = 2

[[backup.jobs]]
name = "image-weekly"
tool = "imagefiles"
path = "/mnt/nas/images"
schedule = "weekly"
"""


@pytest.fixture
def config_file(tmp_path: Path, state_dir: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\nstate_dir = "{state_dir}"\n{JOBS}')
    return path


@pytest.fixture
def enrolled(state_dir: Path, identity: Identity) -> Identity:
    save_identity(state_dir, identity)
    return identity


def report(config_file: Path, *args: str) -> int:
    return main(["--config", str(config_file), "backup-report", "--job", "nas-sync", *args])


def queued(state_dir: Path, identity: Identity) -> list[Envelope]:
    outbox = Outbox(state_dir / OUTBOX_FILE, identity.agent_id, "boot-test")
    try:
        return [Envelope.model_validate_json(body) for _, body in outbox.pending(100 << 20, limit=100_000)]
    finally:
        outbox.close()


def checked_job(config_file: Path, state_dir: Path) -> BackupJob:
    """The script job as the service's backup_results check reports it (state_dir comes from the config)."""
    config = load_config(config_file)
    assert config.agent.state_dir == state_dir
    [signal] = build_checks(config, ["backup_results"])["backup_results"].collect()
    assert isinstance(signal, BackupResults)
    return next(job for job in signal.jobs if job.name == "nas-sync")


def test_it_queues_the_result_into_the_outbox(
    config_file: Path, state_dir: Path, enrolled: Identity, capsys: pytest.CaptureFixture[str]
) -> None:
    why = "rsync error: some files vanished (code 24)"
    assert report(config_file, "--status", "failed", "--message", why) == 0
    assert "'nas-sync': failed recorded and queued (envelope 1)" in capsys.readouterr().out
    [envelope] = queued(state_dir, enrolled)
    assert (envelope.agent_id, envelope.seq) == (enrolled.agent_id, 1)
    [signal] = envelope.signals
    assert isinstance(signal, BackupResults)
    [job] = signal.jobs
    assert (job.name, job.tool, job.schedule, job.grace_seconds) == ("nas-sync", "script", "daily", 7200)
    assert (job.last_result, job.error) == ("failed", why)
    assert job.last_run_ended_at == signal.collected_at
    assert job.last_success_at is None


def test_the_check_keeps_reporting_the_recorded_result(
    config_file: Path, state_dir: Path, enrolled: Identity
) -> None:
    before = checked_job(config_file, state_dir)
    assert before.last_result == "unknown"
    assert "fieldpost-agent backup-report --job nas-sync" in (before.error or "")

    assert report(config_file, "--status", "success", "--bytes", "52428800") == 0
    assert report(config_file, "--status", "success", "--bytes", "52430000", "--message", "12 sent") == 0
    assert report(config_file, "--status", "failed", "--message", "NAS unreachable") == 0
    successes = [env.signals[0] for env in queued(state_dir, enrolled)]
    good = successes[1]
    assert isinstance(good, BackupResults)

    job = checked_job(config_file, state_dir)
    assert (job.tool, job.last_result, job.error) == ("script", "failed", "NAS unreachable")
    assert job.last_success_at == good.jobs[0].last_run_ended_at
    assert (job.bytes_total, job.previous_bytes_total) == (52430000, 52428800)
    assert job.last_run_ended_at is not None
    assert job.last_run_ended_at - job.last_success_at < timedelta(seconds=5)


def test_without_enrolment_it_says_so_and_writes_nothing(
    config_file: Path, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert report(config_file, "--status", "success") == 1
    error = capsys.readouterr().err
    assert "cannot report backup results: not enrolled" in error
    assert "fieldpost-agent enroll --collector URL --token TOKEN" in error
    assert list(state_dir.iterdir()) == []


@pytest.mark.parametrize(("job", "reason"), [("image-weekly", "is a imagefiles job"),
                                              ("payroll", "is not in the configuration")])
def test_only_jobs_declared_as_scripts_can_be_reported(
    config_file: Path, state_dir: Path, enrolled: Identity, capsys: pytest.CaptureFixture[str], job: str,
    reason: str,
) -> None:
    assert main(["--config", str(config_file), "backup-report", "--job", job, "--status", "success"]) == 2
    error = capsys.readouterr().err
    assert f"backup job {job!r} {reason}" in error
    assert f'name = "{job}"\n  tool = "script"' in error
    assert queued(state_dir, enrolled) == []


@pytest.mark.skipif(not AGENT.exists(), reason="fieldpost-agent is not installed in this environment")
@pytest.mark.slow
def test_scripts_and_the_running_service_share_the_outbox(
    config_file: Path, state_dir: Path, enrolled: Identity
) -> None:
    # The service holds the outbox open and keeps queueing while scripts report from their own processes.
    ready, stop = threading.Event(), threading.Event()

    def service() -> None:
        outbox = Outbox(state_dir / OUTBOX_FILE, enrolled.agent_id, "boot-test")
        ready.set()
        try:
            # A plain sleep, not a timed wait: it holds under libfaketime too (make test-dates).
            while not stop.is_set():
                outbox.put([heartbeat()])
                time.sleep(0.005)
        finally:
            outbox.close()

    running = threading.Thread(target=service)
    running.start()
    try:
        assert ready.wait(10)
        scripts = [
            subprocess.Popen([AGENT, "--config", config_file, "backup-report", "--job", "nas-sync",
                              "--status", "success", "--bytes", str(n)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in range(4)
        ]
        results = [(script.wait(60), script.stderr.read()) for script in scripts if script.stderr]
    finally:
        stop.set()
        running.join()
    assert results == [(0, "")] * 4
    envelopes = queued(state_dir, enrolled)
    seqs = [e.seq for e in envelopes]
    assert seqs == list(range(1, len(envelopes) + 1)), "no sequence number lost or reused"
    reported = sorted(job.bytes_total for e in envelopes for s in e.signals if isinstance(s, BackupResults)
                      for job in s.jobs)
    assert reported == [0, 1, 2, 3]
    assert len(envelopes) > 4, "the service queued alongside the scripts"
