"""End to end: a failing disk, as smartctl really reported it, becomes a critical alert in the live feed."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

from tests.e2e.harness import Agent, Collector, FeedReader

FIXTURES = Path(__file__).parents[1] / "fixtures" / "smartctl"


def replaying_smartctl(bin_dir: Path, recording: Path) -> None:
    """A `smartctl` on PATH that answers the agent's real calls with a recorded output and exit status."""
    bin_dir.mkdir()
    report = json.loads(recording.read_text())
    scan = {"devices": [report["device"]]}
    script = bin_dir / "smartctl"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        f"if '--scan-open' in sys.argv:\n    print({json.dumps(json.dumps(scan))})\n    sys.exit(0)\n"
        f"sys.stdout.write(open({str(recording)!r}).read())\n"
        f"sys.exit({report['smartctl']['exit_status']})\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


async def test_a_failing_disk_raises_a_critical_alert_naming_the_disk_and_the_reason(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    bin_dir = tmp_path / "bin"
    replaying_smartctl(bin_dir, FIXTURES / "smart-fail2.json")
    agent = Agent(tmp_path / "bookkeeping-pc", collector, checks={"disk_health": {"interval_seconds": 60}},
                  env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    agents.append(agent)
    agent_id = agent.enroll()
    async with FeedReader(collector) as feed:
        agent.start()
        alert = await feed.wait_for("alert.opened", agent_id=agent_id, rule="disk_health",
                                    subject="disk:MSK423Y20S3HBC")
    assert alert["severity"] == "critical"
    assert alert["summary"].startswith("Hitachi HDS721050DLE630 (serial MSK423Y20S3HBC) in /dev/sdc: ")
    assert "SMART overall-health self-assessment: FAILED" in alert["details"]["reasons"]
