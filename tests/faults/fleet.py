"""Many agents in one process: each the real agent code (its own config, state directory, identity, outbox,
scheduler and uploader, signing and HTTP), run side by side in one event loop, since a hundred agent
processes are more than a 2-core test machine runs.

    python -m tests.faults.fleet DIR COUNT COLLECTOR_URL REPORT_URL TOKEN

enrols COUNT agents under DIR (at COLLECTOR_URL, with a token of as many uses), runs them reporting to
REPORT_URL (a proxy) until SIGTERM, then stops them as the agent service stops, and exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from agent.checks.registry import all_checks
from agent.config import AgentConfig, parse_config
from agent.identity import Identity, enrol
from agent.service import run

CHECKS = "".join(f"[checks.{kind}]\nenabled = false\n" for kind in all_checks() if kind != "heartbeat")


def config(state_dir: Path, url: str) -> AgentConfig:
    """Shortened intervals, as the fault suite's agent processes have: heartbeats every second."""
    return parse_config(
        f'[agent]\ncollector_url = "{url}"\nstate_dir = "{state_dir}"\n'
        "[schedule]\nsplay_seconds = 0\njitter_seconds = 0\n"
        "[upload]\ninterval_seconds = 0.5\ntimeout_seconds = 10\nbackoff_cap_seconds = 8\n"
        f"[checks.heartbeat]\ninterval_seconds = 1\n{CHECKS}", "fleet")


async def main(root: Path, count: int, collector: str, report_url: str, token: str) -> None:
    """Enrol the agents one after another, run them all until SIGTERM, stop them all."""
    agents: list[tuple[AgentConfig, Identity]] = []
    for n in range(count):
        state_dir = root / f"agent{n}" / "state"  # where tests.e2e.harness.Agent looks
        identity = await enrol(state_dir, collector, token, hostname=f"{root.name}-{n}")
        agents.append((config(state_dir, report_url), identity))
    (root / "agents").write_text("".join(f"{identity.agent_id} {cfg.agent.state_dir}\n" for cfg, identity in agents))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await asyncio.gather(*(run(cfg, identity, stop) for cfg, identity in agents))


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:6]))
