"""The nightly job on a real prepared Linux tree: checks, reboot decision, report first, then the reboot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.checks import CheckContext
from agent.checks.backup_results import BackupResultsCheck
from agent.checks.pending_reboot import PendingRebootCheck
from agent.config import parse_config
from agent.nightly import run_nightly
from agent.outbox import Outbox
from shared.backup_results import BackupResults
from shared.pending_reboot import PendingReboot
from shared.wire import Envelope
from tests.agent.test_pending_reboot import BOOT, NO_TOOLS, linux_tree, suser, touch

NIGHT = datetime(2024, 11, 17, 2, 30, tzinfo=UTC)  # inside the default 02:00-04:00 window, 3 days after boot


def pending_tree(root: Path) -> Path:
    """A Debian PC whose kernel update asked for a reboot."""
    linux_tree(root)
    touch(root / "run/reboot-required", BOOT + timedelta(hours=20), "*** System restart required ***\n")
    touch(root / "run/reboot-required.pkgs", BOOT + timedelta(hours=20), "linux-image-6.1.0-13-amd64\n")
    return root


async def night(tmp_path: Path, policy: str, users: list) -> tuple[list, PendingReboot]:
    """Run one nightly job; returns what happened, in order, and the pending_reboot signal it queued."""
    check = PendingRebootCheck(
        CheckContext(root=pending_tree(tmp_path / "root"), run=NO_TOOLS, state_dir=tmp_path / "state"), platform="linux"
    )
    check.provider.users = lambda: users
    outbox = Outbox(tmp_path / "outbox.sqlite3", "ag_1", "boot-1")
    happened: list = []

    async def upload() -> None:
        happened.append("upload")

    settings = parse_config(f'[maintenance]\nreboot_policy = "{policy}"\n', "agent.toml").maintenance
    await run_nightly({"pending_reboot": check}, outbox, upload, settings, now=lambda: NIGHT,
                      reboot=lambda delay, message: happened.append(("reboot", delay)))
    [(_, body)] = outbox.pending(1 << 20)
    [signal] = Envelope.model_validate_json(body).signals
    assert isinstance(signal, PendingReboot)
    assert check.last_action == signal.last_action, "later hourly runs keep reporting the decision"
    return happened, signal


RECEPTIONIST = suser("anna", "tty2", None, (NIGHT - timedelta(hours=9)).timestamp(), None)


async def test_an_idle_pc_reboots_after_reporting_why(tmp_path: Path) -> None:
    happened, signal = await night(tmp_path, "when-required-and-idle", [])
    assert happened == ["upload", ("reboot", 0)]
    assert signal.last_action is not None and signal.last_action.action == "reboot"
    assert "linux-image-6.1.0-13-amd64" in signal.last_action.reason


async def test_an_active_session_blocks_the_idle_policy_and_says_so(tmp_path: Path) -> None:
    happened, signal = await night(tmp_path, "when-required-and-idle", [RECEPTIONIST])
    assert happened == ["upload"]
    assert signal.last_action is not None
    assert signal.last_action.reason == "skipped: user session active since 17:30 (anna); deferral 1 of 3"


async def test_when_required_warns_logged_on_users_before_rebooting(tmp_path: Path) -> None:
    happened, signal = await night(tmp_path, "when-required", [RECEPTIONIST])
    assert happened == ["upload", ("reboot", 15)]
    assert signal.last_action is not None and signal.last_action.action == "warn_then_reboot"


async def test_policy_never_only_reports(tmp_path: Path) -> None:
    happened, signal = await night(tmp_path, "never", [])
    assert happened == ["upload"]
    assert signal.last_action is not None and signal.last_action.reason == "policy is never: reporting only"


async def test_a_user_puts_the_reboot_off_three_nights_then_is_warned_and_it_restarts(tmp_path: Path) -> None:
    check = PendingRebootCheck(
        CheckContext(root=pending_tree(tmp_path / "root"), run=NO_TOOLS, state_dir=tmp_path / "state"),
        platform="linux",
    )
    check.provider.users = lambda: [RECEPTIONIST]
    outbox = Outbox(tmp_path / "outbox.sqlite3", "ag_1", "boot-1")
    settings = parse_config('[maintenance]\nreboot_policy = "when-required-and-idle"\n', "agent.toml").maintenance
    reboots: list[int] = []

    async def upload() -> None:
        pass

    decisions = []
    for n in range(4):
        decision = await run_nightly({"pending_reboot": check}, outbox, upload, settings,
                                     now=lambda n=n: NIGHT + timedelta(days=n),
                                     reboot=lambda delay, message: reboots.append(delay))
        assert decision is not None
        decisions.append(decision.action)

    assert decisions == ["skip", "skip", "skip", "warn_then_reboot"]
    assert reboots == [15]


async def test_the_nightly_run_reports_backups_in_maintenance_mode_first(tmp_path: Path) -> None:
    # A script job needs no tool: the check reports it, run with the maintenance flag integrity checks need.
    seen: list[bool] = []

    class Backups(BackupResultsCheck):
        def collect(self) -> list:
            seen.append(self.context.maintenance)
            return super().collect()

    backups = Backups(CheckContext(settings={"jobs": [{"name": "nas", "tool": "script"}]}, state_dir=tmp_path))
    outbox = Outbox(tmp_path / "outbox.sqlite3", "ag_1", "boot-1")

    async def upload() -> None:
        pass

    settings = parse_config("", "agent.toml").maintenance
    assert await run_nightly({"backup_results": backups}, outbox, upload, settings, now=lambda: NIGHT) is None
    assert seen == [True]
    assert backups.context.maintenance is False, "the regular runs stay as they are"
    [(_, body)] = outbox.pending(1 << 20)
    [signal] = Envelope.model_validate_json(body).signals
    assert isinstance(signal, BackupResults) and signal.jobs[0].name == "nas"
