"""The unknown rule: a check that could not look is an `unknown` alert naming the check, cleared when it collects."""

from __future__ import annotations

from datetime import UTC, datetime

from collector.rules import History, evaluate, rules_by_kind
from shared.wire import Heartbeat, Unknown

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_a_check_that_could_not_look_is_unknown_and_clears_when_it_collects_again() -> None:
    rules = rules_by_kind()
    history = History(now=NOW, hostname="PC-07")
    failed = Unknown(collected_at=NOW, check="heartbeat", error="psutil exploded")
    [verdict] = evaluate(rules["unknown"], failed, history)
    assert (verdict.rule, verdict.subject, verdict.status) == ("unknown", "heartbeat", "unknown")
    assert "psutil exploded" in verdict.summary
    beat = Heartbeat(
        collected_at=NOW, hostname="PC-07", os_name="Linux", os_version="6.1", agent_version="0.1.0",
        boot_time=NOW, uptime_seconds=1, cpu_count=1, cpu_percent=0, memory_total_bytes=1, memory_used_percent=1,
    )
    statuses = {(e.rule, e.subject): e.status for e in evaluate(rules["heartbeat"], beat, history)}
    assert statuses == {("heartbeat.offline", "device"): "ok", ("heartbeat.refused", "reports"): "ok",
                        ("heartbeat.outbox", "outbox"): "ok", ("unknown", "heartbeat"): "ok"}
