"""A camera recorder on a real (namespaced) LAN, probed by two PCs' real checks with unprivileged ICMP echo:
silent to every PC → one critical alert; silent to one PC only → that PC's network, no device alert.

The technician declares the recorder through the collector's API; each PC fetches the signed site document as
its agent does and keeps it; the check runs inside the PC's namespace with `ip netns exec` exactly as
`collect()` runs in the service, and its report goes to the collector signed by that PC.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.identity import Identity
from agent.site_config import accept
from collector import keys
from collector.app import create_app
from collector.settings import Settings
from shared.reachability import Reachability, Target
from shared.signing import sign_headers
from tests.e2e.test_printer_ip_conflict_netns import Lan
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 and os.environ.get("CI") != "true",
    reason="network namespaces need root (CI=true runs them regardless)",
)

REPO = Path(__file__).resolve().parents[2]
RECORDER_IP = "192.0.2.20"
CHECK = """
import sys
from datetime import datetime
from pathlib import Path
from agent.checks import CheckContext
from agent.checks.reachability import ReachabilityCheck
now = datetime.fromisoformat(sys.argv[2])
context = CheckContext(settings={"count": 2, "wait_seconds": 0.5}, state_dir=Path(sys.argv[1]), clock=lambda: now)
[signal] = ReachabilityCheck(context, platform="linux").collect()
print(signal.model_dump_json())
"""


@pytest.fixture
def lan() -> Iterator[Lan]:
    """Two PCs and a recorder on one bridge; the PCs' group may open unprivileged ICMP sockets."""
    built = Lan()
    try:
        for n in (1, 2):
            ns = built.add_host(f"pc{n}", f"02:00:00:00:00:1{n}", f"192.0.2.1{n}/24")
            subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 0"],
                           check=True, capture_output=True)
        built.add_host("recorder", "02:00:00:00:00:20", f"{RECORDER_IP}/24")
        yield built
    finally:
        built.close()


@pytest.fixture
async def client(tmp_path: Path, clock: Clock) -> AsyncIterator[TestClient]:
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret", clock_skew_seconds=10**9)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


class Pc:
    """A PC of the site: its namespace, its agent's identity at the collector, its state directory."""

    def __init__(self, ns: str, agent: SimAgent, state_dir: Path) -> None:
        self.ns, self.agent, self.state_dir = ns, agent, state_dir

    async def fetch_document(self, client: TestClient) -> None:
        """Fetch, verify and keep the site document as the agent's site_config does."""
        stamp = int(self.agent.clock().timestamp())
        headers = sign_headers(self.agent.key, self.agent.agent_id, "GET", "/api/v1/site-config", b"", stamp)
        body = await (await client.get("/api/v1/site-config", headers=headers)).read()
        identity = Identity(self.agent.agent_id, "http://collector", "Acme Tooling", "Main office",
                            self.agent.clock(), self.agent.key)
        accept(self.state_dir, body, identity)

    async def check_and_report(self, client: TestClient) -> Reachability:
        """Run the real check in the PC's namespace and send its signal to the collector."""
        done = await asyncio.to_thread(
            subprocess.run,
            ["ip", "netns", "exec", self.ns, sys.executable, "-c", CHECK, str(self.state_dir),
             self.agent.clock().isoformat()],
            cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        )
        assert done.returncode == 0, done.stderr
        signal = Reachability.model_validate_json(done.stdout)
        body = self.agent.body(self.agent.envelope([signal]))
        response = await client.post(REPORTS, data=body, headers=self.agent.headers(body))
        assert response.status == 200, await response.text()
        return signal


async def site(lan: Lan, client: TestClient, tmp_path: Path) -> list[Pc]:
    """The recorder declared by the technician; both PCs enrolled, holding the site document."""
    pcs = []
    for n, ns in enumerate(lan.hosts[:2], start=1):
        state_dir = tmp_path / f"pc{n}"
        state_dir.mkdir()
        pcs.append(Pc(ns, await enrolled(client, f"PC-{n}"), state_dir))
    recorder = Target(name="Recorder", address=RECORDER_IP, kind="camera_recorder", probe="icmp")
    created = await client.post("/api/v1/sites/Acme Tooling/Main office/network-devices",
                                json=recorder.model_dump(exclude_none=True), headers=TECH)
    assert created.status == 201, await created.text()
    for pc in pcs:
        await pc.fetch_document(client)
    return pcs


async def device_alerts(client: TestClient) -> list[dict[str, object]]:
    listed = (await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json())["alerts"]
    return [a for a in listed if a["rule"] == "reachability"]


async def test_a_recorder_silent_to_every_pc_is_one_critical_alert(
    lan: Lan, client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    pcs = await site(lan, client, tmp_path)
    for pc in pcs:
        [seen] = (await pc.check_and_report(client)).results
        assert (seen.state, seen.how, seen.received) == ("up", "icmp", 2), seen
        assert seen.latency_ms is not None
    assert await device_alerts(client) == []

    lan.set_link(lan.hosts[2], up=False)  # the recorder loses power
    clock.advance(minutes=5)
    [seen] = (await pcs[0].check_and_report(client)).results
    assert (seen.state, seen.received, seen.loss_percent) == ("down", 0, 100.0)
    assert await device_alerts(client) == []  # PC-2's newest report still reached it
    await pcs[1].check_and_report(client)
    [alert] = await device_alerts(client)
    assert (alert["severity"], alert["subject"], alert["state"]) == ("critical", "device:Recorder", "open")
    assert "answers none of the 2 devices" in str(alert["summary"])
    clock.advance(minutes=5)
    await pcs[0].check_and_report(client)
    assert len(await device_alerts(client)) == 1  # one alert for the site, whoever reports


async def test_a_recorder_silent_to_one_pc_only_is_no_device_alert(
    lan: Lan, client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    pcs = await site(lan, client, tmp_path)
    for pc in pcs:
        await pc.check_and_report(client)
    # PC-1's own network is wrong: a stale neighbour entry sends its packets for the recorder nowhere.
    lan.ip("-n", pcs[0].ns, "neigh", "replace", RECORDER_IP, "lladdr", "02:00:00:00:00:99", "dev", "eth0",
           "nud", "permanent")
    for _ in range(2):
        clock.advance(minutes=5)
        [seen] = (await pcs[0].check_and_report(client)).results
        assert seen.state == "down"
        [other] = (await pcs[1].check_and_report(client)).results
        assert other.state == "up"
    assert await device_alerts(client) == []
    async with client.app[keys.STORE].read() as tx:
        alerts = await tx.alerts(None)
    assert [a.rule for a in alerts if a.rule.startswith("reachability")] == []
