"""End to end with real restic: a failed backup becomes a critical alert, the next good one resolves it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.e2e.harness import Agent, Collector, FeedReader, wait_until
from tests.tooling import requires_tool


def restic(repo: Path, password: Path, *args: str | Path) -> None:
    """Run real restic for the test's own set-up."""
    subprocess.run(["restic", "--repo", repo, "--password-file", password, *map(str, args)],
                   check=True, capture_output=True, env={**os.environ, "RESTIC_CACHE_DIR": str(repo) + "-cache"})


@requires_tool("restic")
async def test_a_failed_backup_alerts_and_the_next_good_one_resolves_it(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    repo, password, data = tmp_path / "nas" / "restic", tmp_path / "restic.pw", tmp_path / "ledger"
    password.write_text("correct horse\n")
    data.mkdir()
    (data / "payroll.csv").write_text("name,amount\nanna,2100\n")
    restic(repo, password, "init")
    restic(repo, password, "backup", data)
    job = {"name": "bookkeeping", "tool": "restic", "repository": str(repo), "password_file": str(password),
           "schedule": "daily"}
    agent = Agent(tmp_path / "agent", collector, checks={"backup_results": {"interval_seconds": 1, "jobs": [job]}})
    agents.append(agent)
    agent_id = agent.enroll()
    async with FeedReader(collector) as feed:
        agent.start()
        wait_until(lambda: collector.observations(agent_id, "backup_results") >= 1, 30, "a backup report")
        assert collector.alerts(agent_id, "backup_results") == [], "a good backup raises nothing"
        password.write_text("wrong guess\n")
        alert = await feed.wait_for("alert.opened", within=30, agent_id=agent_id, rule="backup_results")
        assert (alert["subject"], alert["severity"]) == ("backup:bookkeeping", "critical")
        assert "bookkeeping" in alert["summary"]
        password.write_text("correct horse\n")
        restic(repo, password, "backup", data)
        resolved = await feed.wait_for("alert.resolved", within=30, agent_id=agent_id, rule="backup_results")
        assert resolved["alert_id"] == alert["alert_id"]
