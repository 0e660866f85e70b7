"""Real agent processes whose outbox was truncated or overwritten go on reporting, and the device shows it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.outbox import OUTBOX_FILE
from tests.e2e.harness import Agent, Collector, wait_until


def truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 2)


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


@pytest.mark.parametrize("damage", [truncate, garbage])
def test_an_agent_with_a_damaged_outbox_goes_on_reporting_and_the_device_is_warned(
    tmp_path: Path, collector: Collector, agents: list[Agent], damage: object
) -> None:
    agent = Agent(tmp_path / "pc1", collector)
    agents.append(agent)
    agent_id = agent.enroll()
    agent.start()
    wait_until(lambda: len(collector.reports(agent_id)) >= 3, 20, "the first reports")
    agent.stop()
    before = len(collector.reports(agent_id))
    damage(agent.state_dir / OUTBOX_FILE)  # type: ignore[operator]
    agent.start()
    wait_until(lambda: len(collector.reports(agent_id)) >= before + 3, 20, "reports after the damage")
    assert agent.process is not None and agent.process.poll() is None, "the agent runs on"
    wait_until(lambda: collector.alerts(agent_id, "heartbeat.outbox") == ["open"], 20, "the device's warning")
    agent.stop()
    assert "OUTBOX DAMAGED" in (agent.workdir / "agent.log").read_text()
    assert any(".damaged-" in p.name for p in agent.state_dir.iterdir())


def test_an_agent_whose_outbox_was_deleted_has_every_new_report_stored(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    agent = Agent(tmp_path / "pc1", collector)
    agents.append(agent)
    agent_id = agent.enroll()
    agent.start()
    wait_until(lambda: len(collector.reports(agent_id)) >= 8, 30, "the first reports")
    agent.stop()
    before = len(collector.reports(agent_id))
    for name in (OUTBOX_FILE, OUTBOX_FILE + "-wal", OUTBOX_FILE + "-shm"):
        (agent.state_dir / name).unlink(missing_ok=True)
    agent.start()
    wait_until(lambda: agent.outbox() is not None and agent.outbox().next_seq > 6, 30, "new reports")
    agent.stop()
    stats = agent.outbox()
    produced, waiting = stats.next_seq - 1, stats.pending  # what waits is sent at the next start
    stored = len(collector.reports(agent_id)) - before
    print(f"outbox deleted: produced {produced}, stored {stored}, waiting {waiting}, "
          f"lost {produced - stored - waiting}")
    assert stored == produced - waiting, "seq 1.. of the new stream are new reports, not duplicates"
