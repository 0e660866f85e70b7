"""What the pending_reboot check and the reboot policy remember: a small JSON file in the state directory.

Pending since: the earliest time a reason of this boot was known to be set, so a later install that
rewrites the OS's flag (or a history cut short at the collector) does not make the reboot look new.

Before the policy reboots, it writes down the boot it leaves and the high-confidence reasons it means to
clear. After the reboot, the check compares: a reason still present was not cleared by a reboot, so the
policy must not reboot for it again (GRUB pinned to an older kernel, CBS RebootPending stuck after failed
servicing), and the technician is told. Reasons that did clear are forgotten, so a later, new instance of
the same reason is judged afresh.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict

from agent.checks import CheckContext
from shared.pending_reboot import PendingReboot, PolicyReboot, RebootReason

log = logging.getLogger(__name__)

MEMORY_FILE = "pending-reboot.json"


class RebootMemory(BaseModel):
    """The policy's last reboot (the boot it left, the reasons it meant to clear) and nights put off."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    rebooted_at: AwareDatetime | None = None
    left_boot_id: str | None = None
    reasons: list[RebootReason] = []
    # Nights the policy put this boot's reboot off for a user (see agent.maintenance), and that boot.
    deferrals: int = 0
    deferrals_boot: str | None = None
    # The earliest known start of this boot's pending spell, and the boot it belongs to.
    pending_since: AwareDatetime | None = None
    pending_boot: str | None = None


def state_dir_of(context: CheckContext) -> Path | None:
    """The agent's state directory as the service passes it; None (a bare check in a test) remembers nothing."""
    return context.state_dir


def load(state_dir: Path | None) -> RebootMemory:
    """The remembered state; empty when there is none (or it cannot be read: then nothing is remembered)."""
    if state_dir is None:
        return RebootMemory()
    try:
        return RebootMemory.model_validate_json((state_dir / MEMORY_FILE).read_bytes())
    except FileNotFoundError:
        return RebootMemory()
    except (OSError, ValueError) as exc:
        log.warning("pending_reboot: cannot read %s (%s); starting afresh", state_dir / MEMORY_FILE, exc)
        return RebootMemory()


def keep(state_dir: Path | None, memory: RebootMemory) -> None:
    """Save what the check learnt; a check that cannot write (a one-off run as a user) still reports."""
    if state_dir is None:
        return
    try:
        save(state_dir, memory)
    except OSError as exc:
        log.warning("pending_reboot: cannot write %s (%s)", state_dir / MEMORY_FILE, exc)


def save(state_dir: Path, memory: RebootMemory) -> None:
    """Write the state durably (atomic replace, fsync), or remove the file when nothing is left to keep."""
    from agent.identity import write_private_file

    path = state_dir / MEMORY_FILE
    if memory == RebootMemory():
        path.unlink(missing_ok=True)
        return
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private_file(path, (json.dumps(memory.model_dump(mode="json"), indent=2) + "\n").encode())


def key(reason: RebootReason) -> tuple[str, str]:
    """A reason's identity: a new kernel or a new package list is a new reason, worth one more reboot."""
    return reason.source, reason.detail


def high(reasons: Iterable[RebootReason]) -> list[RebootReason]:
    """Only the reasons worth a reboot."""
    return [reason for reason in reasons if reason.confidence == "high"]


def rebooted_since(memory: RebootMemory, boot_id: str | None, boot_time: datetime | None) -> bool:
    """Whether the device booted since the policy's reboot (boot id, else a boot time after it)."""
    if memory.rebooted_at is None:
        return False
    if memory.left_boot_id and boot_id:
        return boot_id != memory.left_boot_id
    return boot_time is not None and boot_time > memory.rebooted_at


def judge(
    state_dir: Path | None, reasons: list[RebootReason], boot_id: str | None, boot_time: datetime | None
) -> PolicyReboot | None:
    """After the policy's reboot: the remembered reasons still present (None when all cleared).

    Cleared reasons are forgotten on disk; before the reboot has happened, nothing is judged.
    """
    memory = load(state_dir)
    if not rebooted_since(memory, boot_id, boot_time):
        return None
    now = {key(reason) for reason in high(reasons)}
    survived = [reason for reason in memory.reasons if key(reason) in now]
    if survived != memory.reasons:
        kept = memory.model_copy(update={"reasons": survived})
        keep(state_dir, kept if survived else kept.model_copy(update={"rebooted_at": None, "left_boot_id": None}))
    if not survived or memory.rebooted_at is None:
        return None
    return PolicyReboot(rebooted_at=memory.rebooted_at, not_cleared=survived)


def remember_reboot(state_dir: Path | None, pending: PendingReboot, at: datetime) -> None:
    """Write down, before rebooting, the boot being left and every high-confidence reason now present.

    Raises when it cannot: a reboot that is not remembered could become a nightly loop.
    """
    if state_dir is None:
        raise RuntimeError("no state directory to remember the reboot in; not rebooting")
    memory = load(state_dir)
    save(
        state_dir,
        memory.model_copy(
            update={"rebooted_at": at, "left_boot_id": pending.boot_id, "reasons": high(pending.reasons)}
        ),
    )


def boot_key(boot_id: str | None, boot_time: datetime | None) -> str | None:
    """What identifies a boot: its id, else its time."""
    return boot_id or (boot_time.isoformat() if boot_time else None)


def earliest_since(
    state_dir: Path | None, reasons: list[RebootReason], since: datetime | None, boot: str | None, now: datetime
) -> datetime | None:
    """When this boot's pending spell began: the earliest of the OS's date and what was remembered.

    Without an OS date, the first time the agent saw a high-confidence reason. Nothing pending ends the spell.
    """
    if state_dir is None:
        return since
    memory = load(state_dir)
    if not high(reasons):
        if memory.pending_since is not None:
            keep(state_dir, memory.model_copy(update={"pending_since": None, "pending_boot": None}))
        return since
    known = [when for when in (since, memory.pending_since if memory.pending_boot == boot else None) if when]
    earliest = min(known) if known else now
    if (earliest, boot) != (memory.pending_since, memory.pending_boot):
        keep(state_dir, memory.model_copy(update={"pending_since": earliest, "pending_boot": boot}))
    return earliest


def deferrals_of(state_dir: Path | None, boot: str | None) -> int:
    """Nights this boot's reboot was already put off for a user; a reboot starts again from none."""
    memory = load(state_dir)
    return memory.deferrals if boot is not None and memory.deferrals_boot == boot else 0


def count_deferral(state_dir: Path | None, boot: str | None) -> None:
    """One more night put off for a user in this boot."""
    deferrals = deferrals_of(state_dir, boot) + 1
    keep(state_dir, load(state_dir).model_copy(update={"deferrals": deferrals, "deferrals_boot": boot}))
