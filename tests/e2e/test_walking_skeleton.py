"""End to end with real processes: enrol, report, go offline and come back, survive outages and crashes."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

from tests.e2e.harness import Agent, Collector, FeedReader, wait_until


async def test_a_device_goes_offline_when_its_agent_stops_and_resolves_when_it_returns(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    agent = Agent(tmp_path / "pc1", collector)
    agents.append(agent)
    agent_id = agent.enroll()
    async with FeedReader(collector) as feed:
        await feed.wait_for("device.enrolled", agent_id=agent_id)
        agent.start()
        online = await feed.wait_for("device.online", agent_id=agent_id)
        assert online["client"] == "Acme Tooling"
        agent.stop()
        offline = await feed.wait_for("alert.opened", agent_id=agent_id, rule="heartbeat.offline")
        assert offline["severity"] == "critical"
        assert "is offline" in offline["summary"]
        agent.start()
        resolved = await feed.wait_for("alert.resolved", agent_id=agent_id, rule="heartbeat.offline")
        assert resolved["alert_id"] == offline["alert_id"]
        assert feed.count("alert.opened", agent_id=agent_id, rule="heartbeat.offline") == 1


def delivered(collector: Collector, agent: Agent, agent_id: str) -> int:
    """Check that the stopped agent's envelopes arrived in order, none twice, and that any that did not are
    still in its outbox (it reports until it stops, so the last may wait for its next run); how many arrived."""
    after = agent.outbox()
    stored = collector.reports(agent_id)
    assert stored == list(range(1, len(stored) + 1)), "every envelope arrived in order, none twice"
    assert len(stored) + after.pending == after.next_seq - 1, "what did not arrive is still kept"
    return len(stored)


async def test_envelopes_queued_while_the_collector_is_down_all_arrive_once(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    agent = Agent(tmp_path / "pc1", collector)
    agents.append(agent)
    agent_id = agent.enroll()
    agent.start()
    wait_until(lambda: len(collector.reports(agent_id)) >= 2, 20, "the first reports")
    collector.stop()
    before = agent.outbox().next_seq
    wait_until(lambda: agent.outbox().next_seq >= before + 4, 20, "reports queued while the collector is down")
    collector.start(startup_grace_seconds=30)
    wait_until(lambda: agent.outbox().pending == 0, 30, "the outbox to drain")
    agent.stop()
    # The outbox drained with the envelopes numbered before + 3 and later: at least those arrived.
    assert delivered(collector, agent, agent_id) >= before + 3


async def test_a_killed_agent_loses_nothing_it_had_written(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    agent = Agent(tmp_path / "pc1", collector)
    agents.append(agent)
    agent_id = agent.enroll()
    collector.stop()
    agent.start()
    wait_until(lambda: (agent.outbox() or None) is not None and agent.outbox().pending >= 3, 20,
               "envelopes written but not sent")
    agent.stop(signal.SIGKILL)
    written = agent.outbox().next_seq - 1
    collector.start()
    agent.start()
    wait_until(lambda: set(range(1, written + 1)) <= set(collector.reports(agent_id)), 30,
               "the envelopes written before the crash to arrive")
    agent.stop()
    assert delivered(collector, agent, agent_id) >= written


async def test_the_technician_cli_follows_the_feed(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    from tests.e2e.harness import BIN, TECH_TOKEN

    follower = await asyncio.create_subprocess_exec(
        BIN / "fieldpost", "--url", collector.url, "--token", TECH_TOKEN, "alerts", "--follow", "--count", "2",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    await asyncio.sleep(1)  # the follower starts at the newest event, so let it connect first
    agent = Agent(tmp_path / "pc1", collector)
    agents.append(agent)
    agent.enroll()
    agent.start()
    began = time.monotonic()
    out, err = await asyncio.wait_for(follower.communicate(), 30)
    lines = out.decode().splitlines()
    assert follower.returncode == 0, err.decode()
    assert [line.split()[3] for line in lines] == ["device.enrolled", "device.online"]
    assert all("Acme Tooling / Main office" in line for line in lines)
    assert time.monotonic() - began < 30
