"""The nightly maintenance window and the reboot policy, as pure decisions; `reboot_now` is the only act."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Literal

from agent.checks.pending_reboot.memory import key
from agent.commands import run_command
from shared.pending_reboot import InteractiveSession, PendingReboot, RebootAction, RebootActionName

Policy = Literal["never", "when-required-and-idle", "when-required"]
DEFAULT_WINDOW = (time(2, 0), time(4, 0))
# A session without input for this long counts as left open, not in use.
DEFAULT_IDLE_AFTER = timedelta(minutes=60)
# Booted this recently and still pending: the reboot did not clear the reason; do not reboot in a loop.
DEFAULT_MIN_UPTIME = timedelta(hours=6)
# `when-required-and-idle`: nights a reboot may be put off because someone uses the PC, and the longest
# it may stay pending; after either, the users are warned and the PC restarts.
DEFAULT_MAX_DEFERRALS = 3
DEFAULT_DEADLINE = timedelta(days=7)


@dataclass(frozen=True)
class Decision:
    """What the reboot policy decided, and why, in words for the technician."""

    action: RebootActionName
    reason: str
    # A night put off because someone uses the PC: counted against the maximum of deferrals.
    deferral: bool = False

    def as_action(self, policy: Policy, at: datetime) -> RebootAction:
        """The decision as reported on the wire (PendingReboot.last_action)."""
        return RebootAction(policy=policy, action=self.action, reason=self.reason, decided_at=at)


def in_window(now_local: datetime | time, start: time, end: time) -> bool:
    """Whether a local wall-clock time is in [start, end); a window may cross midnight (22:00-02:00)."""
    clock = now_local.time() if isinstance(now_local, datetime) else now_local
    clock = clock.replace(tzinfo=None)
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end


def jitter(agent_id: str, spread: timedelta) -> timedelta:
    """A stable per-device offset into the window, so fifty PCs do not hit the network at the same minute."""
    digest = int.from_bytes(hashlib.sha256(agent_id.encode()).digest()[:8], "big")
    return timedelta(seconds=digest % max(1, int(spread.total_seconds())))


def in_use(session: InteractiveSession, idle_after: timedelta) -> bool:
    """Whether someone may be using a session.

    An active session is in use unless it has had no input for `idle_after` (unknown idle: assume in
    use). A locked or disconnected session has nobody at its screen: only a recent lock or disconnect
    (stepped away for a coffee) still counts.
    """
    recent = session.idle_seconds is not None and session.idle_seconds < idle_after.total_seconds()
    if session.state in ("locked", "disconnected"):
        return recent
    return session.idle_seconds is None or recent


def active_session(
    sessions: Sequence[InteractiveSession], idle_after: timedelta
) -> InteractiveSession | None:
    """The first session someone may be using."""
    return next((session for session in sessions if in_use(session, idle_after)), None)


def clock(when: datetime | None, now: datetime) -> str:
    """A time as HH:MM in the device's local zone (the zone of `now`)."""
    return when.astimezone(now.tzinfo).strftime("%H:%M") if when else "an unknown time"


def reboot_decision(
    policy: Policy,
    pending: PendingReboot,
    sessions: Sequence[InteractiveSession],
    now: datetime,
    window: tuple[time, time] = DEFAULT_WINDOW,
    idle_after: timedelta = DEFAULT_IDLE_AFTER,
    min_uptime: timedelta = DEFAULT_MIN_UPTIME,
    deferrals: int = 0,
    max_deferrals: int = DEFAULT_MAX_DEFERRALS,
    deadline: timedelta = DEFAULT_DEADLINE,
) -> Decision:
    """Whether to reboot now; `now` is the device's local time (aware), sessions as last collected.

    `deferrals` is how many nights this boot's reboot was already put off for a user.

    1. `never` only reports.
    2. Only a high-confidence reason is worth a reboot.
    3. Only inside the maintenance window.
    4. Never again for a reason the policy's own reboot did not clear: it needs a technician.
    5. Never twice in a row: a reason that survived a recent reboot (by anyone) needs a technician.
    6. `when-required-and-idle` puts the reboot off while anyone may be using the PC, up to
       `max_deferrals` nights and `deadline` pending; then it warns them first, as `when-required` does.
    """
    if policy == "never":
        return Decision("skip", "policy is never: reporting only")
    high = [reason for reason in pending.reasons if reason.confidence == "high"]
    if not high:
        low = ", ".join(reason.source for reason in pending.reasons)
        return Decision(
            "skip", f"no high-confidence reason (low only: {low})" if low else "no reboot pending"
        )
    start, end = window
    if not in_window(now, start, end):
        return Decision("skip", f"outside the maintenance window {start:%H:%M}-{end:%H:%M}")
    stuck = {key(reason) for reason in pending.policy_reboot.not_cleared} if pending.policy_reboot else set()
    fresh = [reason for reason in high if key(reason) not in stuck]
    if pending.policy_reboot and not fresh:
        when = pending.policy_reboot.rebooted_at.astimezone(now.tzinfo)
        return Decision(
            "skip",
            f"skipped: the policy's reboot of {when:%Y-%m-%d %H:%M} did not clear it ({high[0].detail}); "
            "not rebooting again until a technician looks",
        )
    high = fresh
    if pending.boot_time and now - pending.boot_time < min_uptime:
        return Decision(
            "skip",
            f"skipped: booted at {clock(pending.boot_time, now)} and a reboot is still "
            f"pending ({high[0].detail}); not rebooting again",
        )
    if policy == "when-required-and-idle":
        active = active_session(sessions, idle_after)
        if not active:
            return Decision("reboot", f"rebooting: {high[0].detail}; no active user session")
        overdue = pending.pending_since is not None and now - pending.pending_since >= deadline
        if deferrals < max_deferrals and not overdue:
            return Decision(
                "skip",
                f"skipped: user session active since {clock(active.started, now)} ({active.user}); "
                f"deferral {deferrals + 1} of {max_deferrals}",
                deferral=True,
            )
        users = ", ".join(sorted({session.user for session in sessions if in_use(session, idle_after)}))
        why = f"pending for {deadline.days} days or more" if overdue else f"put off {deferrals} nights already"
        return Decision("warn_then_reboot", f"warning {users}, then rebooting: {high[0].detail}; {why}")
    if sessions:
        users = ", ".join(sorted({session.user for session in sessions}))
        return Decision("warn_then_reboot", f"warning {users}, then rebooting: {high[0].detail}")
    return Decision("reboot", f"rebooting: {high[0].detail}; nobody logged on")


def reboot_now(delay_minutes: int, message: str) -> None:
    """Ask the OS to reboot after `delay_minutes`, showing `message` to users. Tests never call this."""
    if sys.platform == "win32":
        argv = ["shutdown", "/r", "/t", str(delay_minutes * 60), "/c", message]
    else:
        argv = ["shutdown", "-r", f"+{delay_minutes}", message]
    result = run_command(argv, timeout=30.0)
    if result.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({result.returncode}): {result.stderr.strip()}")
