"""The reboot loop: a reason the policy's reboot does not clear stops the policy and raises an alert.

A real Linux tree (GRUB pinned to the older kernel: a newer one is installed, the old one keeps booting),
the real check, the real nightly job and state file, and the collector's real rule; the reboot is recorded,
never run.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.checks import CheckContext
from agent.checks.pending_reboot import PendingRebootCheck
from agent.checks.pending_reboot.memory import MEMORY_FILE, judge, load, remember_reboot
from agent.config import parse_config
from agent.nightly import run_nightly
from agent.outbox import Outbox
from collector.rules import History
from collector.rules.pending_reboot import NOT_CLEARED_RULE, NOT_CLEARED_SUBJECT, evaluate
from shared.pending_reboot import PendingReboot, RebootReason
from shared.wire import Envelope
from tests.agent.test_pending_reboot import BOOT, NO_TOOLS, linux_tree, touch

NIGHT_1 = datetime(2024, 11, 17, 2, 30, tzinfo=UTC)
NIGHT_2 = NIGHT_1 + timedelta(days=1)
NIGHT_3 = NIGHT_2 + timedelta(days=1)
PINNED = "running kernel 6.1.0-9-amd64, newest installed 6.1.0-13-amd64"


def boot(root: Path, boot_id: str, at: datetime) -> None:
    """What a reboot changes in the tree: the kernel's boot id and boot time (the same old kernel runs)."""
    (root / "proc/sys/kernel/random/boot_id").write_text(boot_id + "\n")
    (root / "proc/stat").write_text(f"cpu  1 2 3 4\nbtime {int(at.timestamp())}\nprocesses 812\n")


def grub_pinned_tree(root: Path) -> Path:
    """A host that keeps booting 6.1.0-9 although 6.1.0-13 is installed."""
    linux_tree(root, running="6.1.0-9-amd64")
    touch(root / "boot/vmlinuz-6.1.0-9-amd64", BOOT - timedelta(days=90))
    touch(root / "boot/vmlinuz-6.1.0-13-amd64", BOOT - timedelta(days=10))
    return root


class Device:
    """One device: its tree, state directory, outbox and the reboots the policy asked for."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = grub_pinned_tree(tmp_path / "root")
        self.state = tmp_path / "state"
        self.check = PendingRebootCheck(
            CheckContext(root=self.root, run=NO_TOOLS, state_dir=self.state), platform="linux"
        )
        self.check.provider.users = list
        self.outbox = Outbox(tmp_path / "outbox.sqlite3", "ag_1", "boot")
        self.reboots: list[int] = []

    async def night(self, at: datetime) -> PendingReboot:
        """Run the nightly job at `at`; returns the signal it reported."""

        async def upload() -> None:
            pass

        settings = parse_config('[maintenance]\nreboot_policy = "when-required-and-idle"\n', "agent.toml")
        await run_nightly({"pending_reboot": self.check}, self.outbox, upload, settings.maintenance,
                          now=lambda: at, reboot=lambda delay, message: self.reboots.append(delay))
        [(seq, body)] = self.outbox.pending(1 << 20)
        self.outbox.ack([seq])
        [signal] = Envelope.model_validate_json(body).signals
        assert isinstance(signal, PendingReboot)
        return signal


async def test_after_one_policy_reboot_that_did_not_clear_the_reason_no_second_reboot_and_an_alert(
    tmp_path: Path,
) -> None:
    device = Device(tmp_path)

    first = await device.night(NIGHT_1)
    assert device.reboots == [0]
    assert first.last_action is not None and first.last_action.action == "reboot"
    remembered = json.loads((device.state / MEMORY_FILE).read_text())
    assert remembered["left_boot_id"] == first.boot_id
    assert [reason["detail"] for reason in remembered["reasons"]] == [PINNED]

    boot(device.root, "after-policy-reboot", NIGHT_1 + timedelta(minutes=2))  # GRUB boots 6.1.0-9 again
    second = await device.night(NIGHT_2)

    assert device.reboots == [0], "no second reboot"
    assert second.policy_reboot is not None
    assert second.policy_reboot.rebooted_at == NIGHT_1
    assert [reason.detail for reason in second.policy_reboot.not_cleared] == [PINNED]
    assert second.last_action is not None and second.last_action.action == "skip"
    assert "did not clear it" in second.last_action.reason

    [_pending, stuck] = evaluate(second, History(now=NIGHT_2, hostname="WS-07"))
    assert (stuck.rule, stuck.subject, stuck.status) == (NOT_CLEARED_RULE, NOT_CLEARED_SUBJECT, "warning")
    assert stuck.summary == (
        f"reboot did not clear {PINNED} (rebooted by the policy 2024-11-17 02:30 UTC); "
        "not rebooting again until a technician looks"
    )

    third = await device.night(NIGHT_3)
    assert device.reboots == [0], "nor on any later night"
    assert third.policy_reboot == second.policy_reboot


async def test_a_reboot_that_cleared_the_reason_is_forgotten(tmp_path: Path) -> None:
    device = Device(tmp_path)
    await device.night(NIGHT_1)

    boot(device.root, "after-policy-reboot", NIGHT_1 + timedelta(minutes=2))
    (device.root / "proc/sys/kernel/osrelease").write_text("6.1.0-13-amd64\n")  # the new kernel booted
    second = await device.night(NIGHT_2)

    assert second.policy_reboot is None
    assert not second.pending
    assert not (device.state / MEMORY_FILE).exists()


def test_nothing_is_judged_before_the_reboot_has_happened(tmp_path: Path) -> None:
    reason = RebootReason(source="newer-kernel", confidence="high", detail=PINNED)
    state = PendingReboot(collected_at=NIGHT_1, pending=True, reasons=[reason], boot_id="b1", boot_time=BOOT)
    remember_reboot(tmp_path, state, NIGHT_1)

    assert judge(tmp_path, [reason], "b1", BOOT) is None, "same boot: the shutdown has not happened (yet)"
    assert judge(tmp_path, [reason], "b2", NIGHT_1 + timedelta(minutes=1)) is not None
    assert load(tmp_path).reasons == [reason]


def test_an_unreadable_state_file_is_an_empty_memory(tmp_path: Path) -> None:
    (tmp_path / MEMORY_FILE).write_text("{not json")
    assert judge(tmp_path, [], "b2", NIGHT_1) is None
