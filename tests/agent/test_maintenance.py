"""The nightly window and the reboot policy's decisions (the reboot itself is never run by tests)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.maintenance import Decision, in_window, jitter, reboot_decision
from shared.pending_reboot import InteractiveSession, PendingReboot, PolicyReboot, RebootReason

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = datetime(2024, 11, 20, 2, 30, tzinfo=BERLIN)
KERNEL = RebootReason(source="reboot-required-file", confidence="high", detail="linux-image-6.1.0-13-amd64")
RENAMES = RebootReason(source="PendingFileRenameOperations", confidence="low", detail="1 path(s)")
BOOTED = datetime(2024, 11, 14, 7, 55, tzinfo=UTC)


def pending(*reasons: RebootReason, boot_time: datetime = BOOTED) -> PendingReboot:
    return PendingReboot(
        collected_at=NIGHT,
        pending=any(r.confidence == "high" for r in reasons),
        reasons=list(reasons),
        boot_time=boot_time,
        boot_id="b1",
    )


def session(user: str, idle_minutes: float | None, started: datetime) -> InteractiveSession:
    idle = None if idle_minutes is None else idle_minutes * 60
    return InteractiveSession(user=user, terminal="console", started=started, idle_seconds=idle)


ALICE_ACTIVE = session("alice", 3, datetime(2024, 11, 19, 16, 42, tzinfo=UTC))  # 17:42 in Berlin
ALICE_IDLE = session("alice", 8 * 60, datetime(2024, 11, 19, 16, 42, tzinfo=UTC))


@pytest.mark.parametrize(
    ("clock", "start", "end", "inside"),
    [
        (time(2, 30), time(2), time(4), True),
        (time(4, 0), time(2), time(4), False),
        (time(1, 59), time(2), time(4), False),
        (time(23, 30), time(22), time(2), True),  # crosses midnight
        (time(1, 30), time(22), time(2), True),
        (time(12, 0), time(22), time(2), False),
    ],
)
def test_the_window_is_half_open_and_may_cross_midnight(
    clock: time, start: time, end: time, inside: bool
) -> None:
    assert in_window(clock, start, end) is inside


def test_the_window_uses_the_devices_local_clock() -> None:
    assert in_window(NIGHT, time(2), time(4))
    assert not in_window(NIGHT.astimezone(UTC), time(2), time(4))  # 01:30 UTC


def test_jitter_is_stable_per_device_and_spreads_devices() -> None:
    spread = timedelta(minutes=30)
    offsets = {jitter(f"agent-{n}", spread) for n in range(50)}
    assert jitter("agent-7", spread) == jitter("agent-7", spread)
    assert all(timedelta(0) <= offset < spread for offset in offsets)
    assert len(offsets) > 40


@pytest.mark.parametrize(
    ("policy", "state", "sessions", "now", "expected"),
    [
        ("never", pending(KERNEL), [], NIGHT, Decision("skip", "policy is never: reporting only")),
        ("when-required-and-idle", pending(), [], NIGHT, Decision("skip", "no reboot pending")),
        (
            "when-required-and-idle",
            pending(RENAMES),
            [],
            NIGHT,
            Decision("skip", "no high-confidence reason (low only: PendingFileRenameOperations)"),
        ),
        (
            "when-required-and-idle",
            pending(KERNEL),
            [],
            NIGHT.replace(hour=14),
            Decision("skip", "outside the maintenance window 02:00-04:00"),
        ),
        (
            "when-required-and-idle",
            pending(KERNEL),
            [ALICE_ACTIVE],
            NIGHT,
            Decision("skip", "skipped: user session active since 17:42 (alice); deferral 1 of 3", deferral=True),
        ),
        (
            "when-required-and-idle",
            pending(KERNEL),
            [ALICE_IDLE],
            NIGHT,
            Decision("reboot", "rebooting: linux-image-6.1.0-13-amd64; no active user session"),
        ),
        (
            "when-required-and-idle",
            pending(KERNEL),
            [session("bob", None, NIGHT - timedelta(hours=2))],
            NIGHT,
            Decision("skip", "skipped: user session active since 00:30 (bob); deferral 1 of 3", deferral=True),
        ),
        (
            "when-required-and-idle",
            pending(KERNEL),
            [],
            NIGHT,
            Decision("reboot", "rebooting: linux-image-6.1.0-13-amd64; no active user session"),
        ),
        (
            "when-required",
            pending(KERNEL),
            [ALICE_ACTIVE],
            NIGHT,
            Decision("warn_then_reboot", "warning alice, then rebooting: linux-image-6.1.0-13-amd64"),
        ),
        (
            "when-required",
            pending(KERNEL),
            [],
            NIGHT,
            Decision("reboot", "rebooting: linux-image-6.1.0-13-amd64; nobody logged on"),
        ),
        (
            "when-required",
            pending(KERNEL, boot_time=NIGHT - timedelta(minutes=20)),
            [],
            NIGHT,
            Decision(
                "skip",
                "skipped: booted at 02:10 and a reboot is still pending (linux-image-6.1.0-13-amd64); "
                "not rebooting again",
            ),
        ),
    ],
)
def test_the_reboot_policy_decides(policy, state, sessions, now, expected) -> None:
    assert reboot_decision(policy, state, sessions, now) == expected


def test_a_decision_is_reported_as_the_last_action() -> None:
    decision = reboot_decision("when-required-and-idle", pending(KERNEL), [ALICE_ACTIVE], NIGHT)
    action = decision.as_action("when-required-and-idle", NIGHT)
    assert (action.action, action.reason, action.decided_at) == ("skip", decision.reason, NIGHT)


GRUB_PINNED = RebootReason(
    source="newer-kernel", confidence="high", detail="running kernel 6.1.0-9-amd64, newest installed 6.1.0-13-amd64"
)
POLICY_REBOOT = NIGHT - timedelta(days=1)


def night_state(reason: RebootReason | None, uptime: timedelta, attempts: int) -> PendingReboot:
    """The signal of one night: a reason (or none), booted `uptime` ago, and the policy's earlier reboots.

    `attempts` = 1: the policy already rebooted for this reason and it survived.
    """
    reasons = [reason] if reason else []
    survived = PolicyReboot(rebooted_at=POLICY_REBOOT, not_cleared=reasons) if attempts and reason else None
    return pending(*reasons, boot_time=NIGHT - uptime).model_copy(update={"policy_reboot": survived})


UP_3_DAYS, UP_20_MIN = timedelta(days=3), timedelta(minutes=20)
STUCK = (
    "skipped: the policy's reboot of 2024-11-19 02:30 did not clear it ({}); "
    "not rebooting again until a technician looks"
)


@pytest.mark.parametrize(
    ("reason", "uptime", "attempts", "sessions", "action", "why"),
    [
        # reason, uptime, previous policy reboots that did not clear it, sessions -> decision
        (None, UP_3_DAYS, 0, [], "skip", "no reboot pending"),
        (RENAMES, UP_3_DAYS, 0, [], "skip", "no high-confidence reason (low only: PendingFileRenameOperations)"),
        (KERNEL, UP_3_DAYS, 0, [], "reboot", "rebooting: linux-image-6.1.0-13-amd64; no active user session"),
        (KERNEL, UP_3_DAYS, 0, [ALICE_IDLE], "reboot", "rebooting: linux-image-6.1.0-13-amd64; no active user session"),
        (
            KERNEL, UP_3_DAYS, 0, [ALICE_ACTIVE], "skip",
            "skipped: user session active since 17:42 (alice); deferral 1 of 3",
        ),
        (
            KERNEL, UP_20_MIN, 0, [], "skip",
            "skipped: booted at 02:10 and a reboot is still pending (linux-image-6.1.0-13-amd64); not rebooting again",
        ),
        (GRUB_PINNED, UP_3_DAYS, 0, [], "reboot", f"rebooting: {GRUB_PINNED.detail}; no active user session"),
        # The reboot loop: one policy reboot did not clear it, so however long up and however idle, no second one.
        (GRUB_PINNED, timedelta(hours=23, minutes=59), 1, [], "skip", STUCK.format(GRUB_PINNED.detail)),
        (GRUB_PINNED, timedelta(days=30), 1, [ALICE_IDLE], "skip", STUCK.format(GRUB_PINNED.detail)),
        (GRUB_PINNED, timedelta(days=30), 1, [ALICE_ACTIVE], "skip", STUCK.format(GRUB_PINNED.detail)),
    ],
)
def test_the_nightly_window_decides(reason, uptime, attempts, sessions, action, why) -> None:
    decision = reboot_decision("when-required-and-idle", night_state(reason, uptime, attempts), sessions, NIGHT)
    assert (decision.action, decision.reason) == (action, why)


def test_a_new_reason_after_a_reboot_that_left_an_old_one_is_worth_one_reboot() -> None:
    state = night_state(GRUB_PINNED, UP_3_DAYS, 1)
    state = state.model_copy(update={"reasons": [GRUB_PINNED, KERNEL]})
    assert reboot_decision("when-required", state, [], NIGHT) == Decision(
        "reboot", "rebooting: linux-image-6.1.0-13-amd64; nobody logged on"
    )


def windows(state: str | None, idle_minutes: float | None) -> InteractiveSession:
    """A Windows session as `query user` shows it."""
    idle = None if idle_minutes is None else idle_minutes * 60
    return InteractiveSession(user="reception", terminal="console", started=ALICE_ACTIVE.started,
                              idle_seconds=idle, state=state)


REBOOT = ("reboot", "rebooting: linux-image-6.1.0-13-amd64; no active user session")
DEFER = ("skip", "skipped: user session active since 17:42 (reception); deferral 1 of 3")


@pytest.mark.parametrize(
    ("sessions", "expected"),
    [
        ([windows("locked", 72)], REBOOT),
        ([windows("locked", None)], REBOOT),  # the lock screen is showing: nobody is at the PC
        ([windows("locked", 5)], DEFER),  # locked five minutes ago: back from the coffee machine soon
        ([windows("disconnected", 3 * 24 * 60)], REBOOT),
        ([windows("disconnected", 10)], DEFER),
        ([windows("active", 3)], DEFER),
        ([windows("active", None)], DEFER),  # idle unknown: assume in use
        ([windows("active", 90)], REBOOT),  # left open
        ([windows("disconnected", 600), windows("active", 1)], DEFER),
    ],
)
def test_windows_sessions_that_are_locked_or_disconnected_and_idle_let_the_idle_policy_reboot(
    sessions: list[InteractiveSession], expected: tuple[str, str]
) -> None:
    decision = reboot_decision("when-required-and-idle", pending(KERNEL), sessions, NIGHT)
    assert (decision.action, decision.reason) == expected


@pytest.mark.parametrize(
    ("deferrals", "pending_days", "expected"),
    [
        (0, 1, DEFER),
        (2, 1, ("skip", "skipped: user session active since 17:42 (reception); deferral 3 of 3")),
        (3, 1, ("warn_then_reboot", "warning reception, then rebooting: linux-image-6.1.0-13-amd64; "
                                    "put off 3 nights already")),
        (0, 7, ("warn_then_reboot", "warning reception, then rebooting: linux-image-6.1.0-13-amd64; "
                                    "pending for 7 days or more")),
    ],
)
def test_a_user_may_put_the_reboot_off_up_to_a_maximum_and_a_deadline(
    deferrals: int, pending_days: int, expected: tuple[str, str]
) -> None:
    state = pending(KERNEL).model_copy(update={"pending_since": NIGHT - timedelta(days=pending_days)})
    decision = reboot_decision(
        "when-required-and-idle", state, [windows("active", 2)], NIGHT, deferrals=deferrals, max_deferrals=3,
        deadline=timedelta(days=7),
    )
    assert (decision.action, decision.reason) == expected
