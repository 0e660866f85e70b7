"""End to end with real curl: a backup script reports through its push URL to a running collector."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.e2e.harness import BIN, Agent, Collector, FeedReader
from tests.tooling import requires_tool


def curl(*args: str | Path) -> tuple[int, dict[str, str], str]:
    """Run real curl; returns the HTTP status, the response headers (lower-case names) and the body."""
    done = subprocess.run(["curl", "-sS", "-m", "10", "-D", "-", *map(str, args)],
                          capture_output=True, text=True, check=True, timeout=20)
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    status_line, *lines = head.splitlines()
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), headers, body


def backup_job(collector: Collector, *args: str) -> str:
    """Run `fieldpost-collector backup-job` on the collector's database; returns what it printed."""
    return subprocess.run([BIN / "fieldpost-collector", "--db", collector.db, "backup-job", *args],
                          capture_output=True, text=True, check=True).stdout


def create_push_job(collector: Collector, agent_id: str) -> str:
    """A push job made with the collector's CLI; returns the printed push URL."""
    printed = backup_job(collector, "create", "--device", agent_id, "--name", "nas-sync",
                         "--schedule", "daily", "--collector-url", collector.url)
    heading, url, *instructions = printed.splitlines()
    assert heading.startswith("push job 'nas-sync' for ")
    assert any(f"curl -fsS -m 10 --retry 3 -X POST {url}/start" in line for line in instructions)
    return url


@requires_tool("curl")
async def test_a_script_reports_with_curl_and_a_failure_alerts(
    tmp_path: Path, collector: Collector, agents: list[Agent]
) -> None:
    agent = Agent(tmp_path / "agent", collector)
    agents.append(agent)
    agent_id = agent.enroll()
    url = create_push_job(collector, agent_id)
    assert url.startswith(collector.url + "/api/v1/push/fp_push_")
    log = tmp_path / "backup.log"
    log.write_text("rsync: connection unexpectedly closed (0 bytes received so far) [sender]\n"
                   "rsync error: error in rsync protocol data stream (code 12) at io.c(231)\n")

    async with FeedReader(collector) as feed:
        status, _, _ = curl("-X", "POST", url + "/start")
        assert status == 200
        status, _, body = curl("--data-binary", f"@{log}", url + "/fail")
        assert status == 200
        assert json.loads(body)["status"] == "critical"
        alert = await feed.wait_for("alert.opened", within=10, agent_id=agent_id, rule="backup_results")
    assert (alert["subject"], alert["severity"]) == ("backup:nas-sync", "critical")
    assert alert["summary"].endswith("(code 12) at io.c(231)")

    status, _, body = curl(url + "?bytes=1048576")  # GET, for tools that can only GET
    assert (status, json.loads(body)["status"]) == (200, "ok")

    status, _, body = curl("-X", "POST", collector.url + "/api/v1/push/fp_push_never-issued")
    assert (status, json.loads(body)) == (404, {"error": "unknown backup job token"})

    # Three pings so far; the token's budget is six a minute.
    for _ in range(3):
        assert curl("-X", "POST", url)[0] == 200
    status, headers, body = curl("-X", "POST", url)
    assert status == 429
    assert int(headers["retry-after"]) >= 1
    assert "too many pings" in json.loads(body)["error"]

    assert f"({agent_id}): nas-sync, daily (UTC); last ping success at " in backup_job(collector, "list")
