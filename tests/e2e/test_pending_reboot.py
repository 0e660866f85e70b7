"""End to end: a PC whose kernel update waits for a reboot raises an alert once it has waited too long."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from tests.e2e.harness import Agent, Collector, FeedReader, wait_until

DAY = 86400


def boot(root: Path, booted: float) -> None:
    """The /proc files of a Linux PC that booted at `booted` (Unix time), with a fresh boot id."""
    kernel = root / "proc/sys/kernel"
    (kernel / "random").mkdir(parents=True, exist_ok=True)
    (kernel / "osrelease").write_text("6.1.0-13-amd64\n")
    (kernel / "random/boot_id").write_text(f"{uuid.uuid4()}\n")
    (root / "proc/stat").write_text(f"cpu  1 2 3 4\nbtime {int(booted)}\nprocesses 812\n")


def flag_reboot(root: Path, since: float) -> None:
    """Debian's flag files, as apt writes them after a kernel update, dated `since`."""
    (root / "run").mkdir(exist_ok=True)
    for name, text in (("reboot-required", "*** System restart required ***\n"),
                       ("reboot-required.pkgs", "linux-image-6.1.0-13-amd64\n")):
        path = root / "run" / name
        path.write_text(text)
        os.utime(path, (since, since))


async def test_a_reboot_pending_too_long_alerts_and_a_reboot_resolves_it(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    root = tmp_path / "reception-pc"
    now = time.time()
    boot(root, now - 10 * DAY)
    flag_reboot(root, now - 1 * DAY)
    agent = Agent(tmp_path / "agent", collector, root=root, checks={"pending_reboot": {"interval_seconds": 1}})
    agents.append(agent)
    agent_id = agent.enroll()
    async with FeedReader(collector) as feed:
        agent.start()
        # A day pending is within the default three days: reported, but no alert yet.
        wait_until(lambda: collector.observations(agent_id, "pending_reboot") >= 2, 20, "pending_reboot reports")
        assert collector.alerts(agent_id, "pending_reboot") == []
        flag_reboot(root, now - 4 * DAY)
        alert = await feed.wait_for("alert.opened", agent_id=agent_id, rule="pending_reboot")
        assert feed.count("alert.opened", agent_id=agent_id, rule="pending_reboot") == 1
        assert alert["severity"] == "warning"
        assert "linux-image-6.1.0-13-amd64" in alert["summary"]
        boot(root, time.time())
        resolved = await feed.wait_for("alert.resolved", agent_id=agent_id, rule="pending_reboot")
        assert resolved["alert_id"] == alert["alert_id"]
