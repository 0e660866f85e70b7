"""The pending_reboot rule: age thresholds on high-confidence reasons, who is on, resolution on reboot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.rules import History
from collector.rules.pending_reboot import CRITICAL_DAYS, WARNING_DAYS, evaluate
from shared.pending_reboot import InteractiveSession, PendingReboot, PolicyReboot, RebootReason

NOW = datetime(2024, 11, 20, 9, 0, tzinfo=UTC)
BOOT = datetime(2024, 11, 1, 8, 0, tzinfo=UTC)
DAY = timedelta(days=1)
KERNEL = RebootReason(source="reboot-required-file", confidence="high", detail="linux-image-6.1.0-13-amd64")
RENAMES = RebootReason(source="PendingFileRenameOperations", confidence="low", detail="3 path(s)")
ALICE = InteractiveSession(user="alice", terminal="tty2", started=BOOT, idle_seconds=190)


def signal(
    *reasons: RebootReason,
    at: datetime = NOW,
    since: datetime | None = None,
    boot_id: str = "b1",
    sessions: tuple[InteractiveSession, ...] = (),
) -> PendingReboot:
    return PendingReboot(
        collected_at=at,
        pending=any(r.confidence == "high" for r in reasons),
        reasons=list(reasons),
        pending_since=since,
        boot_time=BOOT,
        boot_id=boot_id,
        sessions=list(sessions),
    )


def history(*previous: PendingReboot, **settings: int) -> History:
    return History(now=NOW, hostname="RECEPTION-01", previous=previous, settings={"pending_reboot": settings})


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (2 * DAY, "ok"),
        (3 * DAY, "warning"),
        (13 * DAY, "warning"),
        (14 * DAY, "critical"),
    ],
)
def test_it_warns_after_three_days_and_goes_critical_after_fourteen(age: timedelta, status: str) -> None:
    verdict, _ = evaluate(signal(KERNEL, since=NOW - age), history())
    assert (verdict.rule, verdict.subject, verdict.status) == ("pending_reboot", "reboot", status)


def test_it_takes_thresholds_from_settings() -> None:
    verdict, _ = evaluate(signal(KERNEL, since=NOW - 2 * DAY), history(**{WARNING_DAYS: 1, CRITICAL_DAYS: 2}))
    assert verdict.status == "critical"


def test_its_summary_says_why_and_who_is_logged_on() -> None:
    verdict, _ = evaluate(
        signal(KERNEL, RENAMES, since=NOW - 4 * DAY - timedelta(hours=5), sessions=(ALICE,)), history()
    )
    assert verdict.summary == "reboot pending since 2024-11-16 (linux-image-6.1.0-13-amd64); alice logged on"
    assert [reason["source"] for reason in verdict.details["reasons"]] == [
        "reboot-required-file",
        "PendingFileRenameOperations",
    ]


def test_low_confidence_reasons_alone_never_alert() -> None:
    verdict, _ = evaluate(signal(RENAMES, since=NOW - 60 * DAY), history())
    assert verdict.status == "ok"


def test_it_resolves_when_the_reason_clears() -> None:
    verdict, _ = evaluate(signal(), history(signal(KERNEL, at=NOW - DAY, since=NOW - 20 * DAY)))
    assert verdict.status == "ok"


def test_without_an_os_date_it_counts_from_the_first_pending_signal_of_this_boot() -> None:
    previous = [signal(KERNEL, at=NOW - n * DAY) for n in range(1, 6)]
    verdict, _ = evaluate(signal(KERNEL), history(*previous))
    assert (verdict.status, verdict.details["pending_seconds"]) == ("warning", int((5 * DAY).total_seconds()))


def test_a_new_boot_id_restarts_the_count_and_so_resolves_the_alert() -> None:
    old_boot = [signal(KERNEL, at=NOW - n * DAY, boot_id="b0") for n in range(1, 6)]
    verdict, _ = evaluate(signal(KERNEL, at=NOW, boot_id="b1"), history(*old_boot))
    assert verdict.status == "ok"


def test_a_date_from_before_this_boot_counts_from_the_boot() -> None:
    verdict, _ = evaluate(signal(KERNEL, since=BOOT - 30 * DAY), history())
    assert verdict.details["pending_since"] == BOOT.isoformat()


PINNED = RebootReason(
    source="newer-kernel", confidence="high", detail="running kernel 6.1.0-9, newest installed 6.1.0-13"
)


def test_a_reason_the_policys_reboot_did_not_clear_raises_its_own_alert() -> None:
    stuck = signal(PINNED, since=NOW - DAY).model_copy(
        update={"policy_reboot": PolicyReboot(rebooted_at=NOW - DAY, not_cleared=[PINNED])}
    )
    _, verdict = evaluate(stuck, history())
    assert (verdict.rule, verdict.subject, verdict.status) == (
        "pending_reboot.not_cleared", "reboot-not-cleared", "warning"
    )
    assert verdict.summary == (
        "reboot did not clear running kernel 6.1.0-9, newest installed 6.1.0-13 "
        "(rebooted by the policy 2024-11-19 09:00 UTC); not rebooting again until a technician looks"
    )
    assert verdict.details["not_cleared"] == [PINNED.model_dump()]


def test_the_not_cleared_alert_resolves_once_the_reason_is_gone() -> None:
    _, verdict = evaluate(signal(), history())
    assert (verdict.rule, verdict.status) == ("pending_reboot.not_cleared", "ok")


def test_the_summary_stays_the_same_hour_after_hour_so_no_message_goes_out() -> None:
    def at(hours: int) -> str:
        later = NOW + timedelta(hours=hours)
        user = ALICE.model_copy(update={"idle_seconds": 190 + hours * 3600})
        state = signal(KERNEL, at=later, since=NOW - 4 * DAY, sessions=(user,))
        verdict, _ = evaluate(state, History(now=later, hostname="RECEPTION-01"))
        return verdict.summary

    assert {at(hours) for hours in range(12)} == {at(0)}
    assert "ago" not in at(0)


def test_pending_since_is_the_earliest_of_this_boot_not_reset_by_a_later_install() -> None:
    earlier = [signal(KERNEL, at=NOW - n * DAY, since=NOW - 5 * DAY) for n in range(1, 4)]
    reinstalled = signal(KERNEL, since=NOW - timedelta(hours=1))  # another package rewrote the flag

    verdict, _ = evaluate(reinstalled, history(*earlier))

    assert verdict.details["pending_since"] == (NOW - 5 * DAY).isoformat()
    assert verdict.status == "warning"
