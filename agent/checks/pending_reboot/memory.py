"""What the reboot policy keeps across its own reboot: a small JSON file in the agent's state directory.

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
    # Nights the policy left a pending reboot for a user in this pending spell (see agent.maintenance).
    deferrals: int = 0
    # Boot id of the spell the deferrals belong to: a reboot starts a new spell.
    deferrals_boot_id: str | None = None


def state_dir_of(context: CheckContext) -> Path:
    """The agent's state directory, as the service passes it (else the platform default)."""
    from agent.config import platform_data_dir

    return context.state_dir or platform_data_dir()


def load(state_dir: Path) -> RebootMemory:
    """The remembered state; empty when there is none (or it cannot be read: then nothing is remembered)."""
    try:
        return RebootMemory.model_validate_json((state_dir / MEMORY_FILE).read_bytes())
    except FileNotFoundError:
        return RebootMemory()
    except (OSError, ValueError) as exc:
        log.warning("pending_reboot: cannot read %s (%s); starting afresh", state_dir / MEMORY_FILE, exc)
        return RebootMemory()


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
    state_dir: Path, reasons: list[RebootReason], boot_id: str | None, boot_time: datetime | None
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
        save(state_dir, kept if survived else kept.model_copy(update={"rebooted_at": None, "left_boot_id": None}))
    if not survived or memory.rebooted_at is None:
        return None
    return PolicyReboot(rebooted_at=memory.rebooted_at, not_cleared=survived)


def remember_reboot(state_dir: Path, pending: PendingReboot, at: datetime) -> None:
    """Write down, before rebooting, the boot being left and every high-confidence reason now present."""
    memory = load(state_dir)
    save(
        state_dir,
        memory.model_copy(
            update={"rebooted_at": at, "left_boot_id": pending.boot_id, "reasons": high(pending.reasons)}
        ),
    )
