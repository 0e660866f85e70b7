"""The nightly maintenance job: check updates and pending reboots in the window, then apply the reboot policy."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta

from agent.checks import Check
from agent.checks.pending_reboot.memory import (
    boot_key,
    count_deferral,
    deferrals_of,
    remember_reboot,
    state_dir_of,
)
from agent.config import MaintenanceSection
from agent.maintenance import Decision, jitter, reboot_decision, reboot_now
from agent.outbox import Outbox
from shared.clock import system_clock
from shared.pending_reboot import PendingReboot

log = logging.getLogger(__name__)

NIGHTLY_KINDS = ("updates", "pending_reboot")
BACKUP_KIND = "backup_results"


def start_offset(agent_id: str, settings: MaintenanceSection) -> timedelta:
    """When in the window this device starts: a stable offset in its first half, so a site's PCs spread out."""
    start = timedelta(hours=settings.window_start.hour, minutes=settings.window_start.minute)
    end = timedelta(hours=settings.window_end.hour, minutes=settings.window_end.minute)
    length = (end - start) % timedelta(days=1)
    return jitter(agent_id, length / 2)


async def run_nightly(
    checks: Mapping[str, Check],
    outbox: Outbox,
    upload: Callable[[], Awaitable[object]],
    settings: MaintenanceSection,
    now: Callable[[], datetime] = lambda: system_clock().astimezone(),
    reboot: Callable[[int, str], None] = reboot_now,
) -> Decision | None:
    """One nightly run; returns the reboot decision (None when the pending_reboot check is off).

    0. Run the backup_results check in maintenance mode (due repository integrity checks) and queue it.
    1. Run the updates and pending_reboot checks and queue what they found.
    2. Decide on a reboot by the policy, using the sessions the check just saw.
    3. Report the decision (as the check's `last_action`) and upload it, so the technician sees
       "skipped: user session active since 17:42" or "rebooting" before the PC goes down.
    4. Write down the boot being left and its reasons (so a reason the reboot does not clear stops the
       policy and is reported), then reboot, after the warning delay when users are logged on.
    """
    backups = checks.get(BACKUP_KIND)
    if backups is not None:
        # Its repository integrity checks are due in the window first (and outside it only a day later).
        outbox.put(await type(backups)(replace(backups.context, maintenance=True)).run())
    for kind in NIGHTLY_KINDS:
        check = checks.get(kind)
        if check is None:
            continue
        signals = await check.run()
        pending = next((s for s in signals if isinstance(s, PendingReboot)), None)
        if pending is None:
            outbox.put(signals)
            continue
        state_dir, boot = state_dir_of(check.context), boot_key(pending.boot_id, pending.boot_time)
        decision = reboot_decision(
            settings.reboot_policy, pending, pending.sessions, now(),
            window=(settings.window_start, settings.window_end),
            idle_after=timedelta(minutes=settings.idle_minutes),
            deferrals=deferrals_of(state_dir, boot),
            max_deferrals=settings.max_deferrals,
            deadline=timedelta(days=settings.deadline_days),
        )
        if decision.deferral:
            count_deferral(state_dir, boot)
        action = decision.as_action(settings.reboot_policy, now())
        # Later hourly runs repeat the last decision, so it stays visible until the next night.
        check.last_action = action  # type: ignore[attr-defined]
        outbox.put([pending.model_copy(update={"last_action": action})], state_change=True)
        await upload()
        log.info("nightly maintenance: %s", decision.reason)
        if decision.action != "skip":
            # Durably before the reboot: without it, a reason that survives reboots would reboot every night.
            remember_reboot(state_dir, pending, now())
            delay = settings.warn_minutes if decision.action == "warn_then_reboot" else 0
            reboot(delay, f"fieldpost: this PC restarts in {delay} min to finish updates. Please save your work.")
        return decision
    await upload()
    return None
