"""Reports grow old by the outbox's age clock, not by a wall clock that may be weeks wrong (issue 23)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from agent.outbox import OUTBOX_FILE, Outbox
from tests.agent.support import T0, heartbeat


class Monotonic:
    """The PC's monotonic clock (seconds since boot), moved by the test."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds


def pending(outbox: Outbox) -> list[int]:
    return [seq for seq, _ in outbox.pending(1 << 30, limit=10_000)]


def test_a_clock_weeks_behind_then_corrected_drops_no_routine_report(state_dir: Path) -> None:
    mono = Monotonic()
    outbox = Outbox(state_dir / OUTBOX_FILE, "ag_test", "boot-1", monotonic=mono)
    behind = T0 - timedelta(weeks=3)  # the PC's clock; the collector refuses its requests meanwhile
    for n in range(124):
        mono.seconds += 600
        outbox.put([heartbeat()], now=behind + timedelta(minutes=10 * n))
    mono.seconds += 600
    outbox.put([heartbeat()], now=T0 + timedelta(hours=21))  # NTP steps the clock forward by three weeks
    assert pending(outbox) == list(range(1, 126)), "all 124 reports queued under the wrong clock are kept"


def test_reports_that_really_waited_longer_than_the_bound_are_dropped(state_dir: Path) -> None:
    mono = Monotonic()
    outbox = Outbox(state_dir / OUTBOX_FILE, "ag_test", "boot-1", monotonic=mono)
    outbox.put([heartbeat()], now=T0)
    mono.seconds += 15 * 86400
    outbox.put([heartbeat()], now=T0 + timedelta(days=15))
    assert pending(outbox) == [2]


def test_across_a_reboot_the_wall_clock_tells_how_long_the_pc_was_off(state_dir: Path) -> None:
    mono = Monotonic()
    before = Outbox(state_dir / OUTBOX_FILE, "ag_test", "boot-1", monotonic=mono)
    before.put([heartbeat()], now=T0)
    before.close()
    mono.seconds = 5.0  # a new boot: the monotonic clock started again
    after = Outbox(state_dir / OUTBOX_FILE, "ag_test", "boot-2", monotonic=mono)
    after.put([heartbeat()], now=T0 + timedelta(days=15))
    assert pending(after) == [2], "off for 15 days: the old report is past the 14-day bound"


def test_a_clock_stepped_back_does_not_make_reports_younger(state_dir: Path) -> None:
    mono = Monotonic()
    outbox = Outbox(state_dir / OUTBOX_FILE, "ag_test", "boot-1", monotonic=mono)
    outbox.put([heartbeat()], now=T0 + timedelta(days=30))  # a clock a month ahead
    mono.seconds += 15 * 86400
    outbox.put([heartbeat()], now=T0 + timedelta(days=15))  # corrected back, 15 days of real time later
    assert pending(outbox) == [2]
