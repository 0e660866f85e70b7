"""The service wiring: checks chosen from config, a run that reports to a collector and stops cleanly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.checks.registry import all_checks
from agent.config import parse_config
from agent.identity import Identity
from agent.outbox import OUTBOX_FILE, read_stats
from agent.service import UnknownCheck, build_checks, run
from shared.wire import Heartbeat
from tests.agent.support import FakeCollector


def only(*kinds: str) -> str:
    """Config lines that disable every check but `kinds`."""
    return "".join(f"[checks.{kind}]\nenabled = false\n" for kind in all_checks() if kind not in kinds)


def test_it_builds_the_enabled_checks_or_the_named_ones() -> None:
    assert list(build_checks(parse_config(only("heartbeat", "updates"), "agent.toml"))) == ["heartbeat", "updates"]
    disabled = parse_config(only(), "agent.toml")
    assert build_checks(disabled) == {}
    assert list(build_checks(disabled, ["heartbeat"])) == ["heartbeat"]
    with pytest.raises(UnknownCheck, match=r"unknown check 'hartbeat' \(known: .*heartbeat"):
        build_checks(disabled, ["hartbeat"])


async def test_a_running_agent_reports_its_heartbeat_and_stops_cleanly(
    state_dir: Path, identity: Identity, collector: FakeCollector
) -> None:
    config = parse_config(f"""
[agent]
collector_url = "{collector.url}"
state_dir = "{state_dir}"
[schedule]
splay_seconds = 0
jitter_seconds = 0
[upload]
interval_seconds = 0.05
{only("heartbeat")}""", "agent.toml")
    stop = asyncio.Event()
    service = asyncio.create_task(run(config, identity, stop))
    await asyncio.wait_for(collector.received.wait(), 10)
    stop.set()
    await asyncio.wait_for(service, 10)
    [envelope] = collector.batches[0].envelopes
    assert (envelope.agent_id, envelope.seq) == (identity.agent_id, 1)
    assert isinstance(envelope.signals[0], Heartbeat)
    stats = read_stats(state_dir / OUTBOX_FILE)
    assert stats is not None
    assert (stats.pending, stats.next_seq) == (0, 2)
    assert stats.last_upload_result == "sent 1 envelopes"
