"""The device-offline rule: silence past N intervals is offline, except during the collector's grace period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.alerts.dedupe import owner_of
from collector.rules import History, fingerprint
from collector.rules.heartbeat import (
    REFUSED_RULE,
    RULE,
    SITE_RULE,
    SITE_SUBJECT,
    SUBJECT,
    evaluate,
    evaluate_silence,
)
from collector.store import AgentRow, Store
from shared.wire import Heartbeat

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
UP = NOW - timedelta(hours=1)
MIN = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("silent", "up_since", "expected"),
    [
        (2 * MIN, UP, "ok"),
        (3 * MIN, UP, "critical"),
        (90 * MIN, UP, "critical"),
        (90 * MIN, NOW - MIN, None),  # the collector itself just came back: wait out the grace period
        (90 * MIN, NOW - 2 * MIN, "critical"),
    ],
)
def test_it_declares_offline_after_the_configured_silence(
    silent: timedelta, up_since: datetime, expected: str | None
) -> None:
    verdict = evaluate_silence("PC-07", NOW - silent, NOW, 3 * MIN, up_since, 2 * MIN)
    assert (verdict.status if verdict else None) == expected


def test_its_summary_does_not_change_while_the_device_stays_offline() -> None:
    first = evaluate_silence("PC-07", NOW - 5 * MIN, NOW, 3 * MIN, UP, MIN)
    later = evaluate_silence("PC-07", NOW - 5 * MIN, NOW + 30 * MIN, 3 * MIN, UP, MIN)
    assert first is not None and later is not None
    assert first.summary == later.summary == "PC-07 is offline: last heartbeat 2026-11-23 08:55 UTC"


async def test_the_sweep_judges_only_devices_whose_silence_disagrees_with_their_alert(store: Store) -> None:
    """Steady devices are not candidates: only a newly silent one, one back with its alert open, and every
    device of a site whose site-wide alert is open (its verdict counts them all)."""
    cutoff = NOW - 3 * MIN
    devices = {  # name: (site, silent, offline alert open)
        "steady": ("Office", False, False), "still-offline": ("Office", True, True),
        "depot-steady": ("Depot", False, False), "gone": ("Depot", True, False),
        "back": ("Shop", False, True), "shop-steady": ("Shop", False, False),
        "lab-1": ("Lab", True, False), "lab-2": ("Lab", False, False),
    }
    async with store.transaction() as tx:
        for name, (site, silent, alert_open) in devices.items():
            agent = AgentRow(name, b"\x01" * 32, name, await tx.site("Acme", site), NOW - 30 * MIN)
            await tx.add_agent(agent)
            await tx.touch_agent(name, cutoff - MIN if silent else cutoff + MIN, 1, name)
            if alert_open:
                await tx.insert_alert(fingerprint(RULE, name, SUBJECT), RULE, owner_of(agent, "device"), SUBJECT,
                                      "critical", f"{name} is offline", {}, NOW)
            if name == "lab-1":
                await tx.insert_alert(fingerprint(SITE_RULE, f"site:{agent.site.site_id}", SITE_SUBJECT), SITE_RULE,
                                      owner_of(agent, "site"), SITE_SUBJECT, "critical", "Lab is down", {}, NOW)
        candidates = {agent.agent_id: alert_open for agent, alert_open in
                      await tx.offline_candidates(RULE, SITE_RULE, cutoff)}
    # Whole sites are returned (Depot for "gone", Shop for "back", Lab for its site alert); Office has no candidate.
    assert candidates == {"depot-steady": False, "gone": False, "back": True, "shop-steady": False,
                          "lab-1": False, "lab-2": False}


@pytest.mark.parametrize(
    ("refused", "queued_ago", "expected"),
    [
        (0, None, "ok"),
        (1, 5 * MIN, "warning"),  # the collector refused a report of this device a few minutes ago
        (3, 23 * 60 * MIN, "warning"),
        (3, 25 * 60 * MIN, "ok"),  # no refusal for a day: the newer reports are accepted again
    ],
)
def test_reports_the_collector_refused_are_a_warning_for_a_day(
    refused: int, queued_ago: timedelta | None, expected: str
) -> None:
    signal = Heartbeat(collected_at=NOW, hostname="PC-07", os_name="Windows", os_version="10", agent_version="0.1",
                       boot_time=UP, uptime_seconds=3600, cpu_count=4, cpu_percent=1, memory_total_bytes=1 << 30,
                       memory_used_percent=10, refused_reports=refused,
                       last_refusal="422 envelopes.0.signals.0.updates.items: List should have at most 1024 items",
                       last_refusal_queued_at=NOW - queued_ago if queued_ago else None)
    [online, verdict, _outbox] = evaluate(signal, History(now=NOW, hostname="PC-07"))
    assert (online.rule, verdict.rule, verdict.status) == (RULE, REFUSED_RULE, expected)
    if expected == "warning":
        assert "refused" in verdict.summary and "List should have at most 1024 items" in verdict.summary
