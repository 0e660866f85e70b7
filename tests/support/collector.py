"""Helpers for a collector under test: the technician's token, enrolment and simple reports through the API."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp.test_utils import TestClient

from collector import keys
from collector.auth import token_hash
from collector.store import Store
from shared.disk_health import DiskHealth, FilesystemFacts
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock

TECH = {"Authorization": "Bearer tech-secret"}
GIB = 1 << 30


def store_of(client: TestClient) -> Store:
    """The store of the collector app under test."""
    return client.app[keys.STORE]


async def new_token(client: TestClient, token: str = "tok", **kwargs: object) -> str:
    """An enrolment token for Acme Tooling's main office (`expires_at`, `uses` as given); returns it."""
    async with store_of(client).transaction() as tx:
        site = await tx.site("Acme Tooling", "Main office")
        await tx.add_enrolment_token(token_hash(token), site, datetime.now(UTC), kwargs.get("expires_at"),
                                     kwargs.get("uses"))
    return token


async def enrolled(client: TestClient, hostname: str = "RECEPTION-01") -> SimAgent:
    """A simulated PC of Acme Tooling, enrolled through the real endpoint, on the collector's clock."""
    agent = SimAgent(hostname, clock=client.app[keys.CLOCK])
    response = await client.post("/api/v1/enrol", json=agent.enrol_body(await new_token(client, hostname)))
    assert response.status == 201, await response.text()
    body = await response.json()
    assert (body["client"], body["site"]) == ("Acme Tooling", "Main office")
    agent.agent_id = body["agent_id"]
    return agent


async def report_free(client: TestClient, agent: SimAgent, clock: Clock, free_gib: int) -> None:
    """The device reports its C: volume with this much of 100 GiB free (below 10 GiB is a warning)."""
    volume = FilesystemFacts(mount="C:", device="C:", fstype="ntfs", total_bytes=100 * GIB,
                             used_bytes=(100 - free_gib) * GIB, free_bytes=free_gib * GIB)
    body = agent.body(agent.envelope([DiskHealth(collected_at=clock.now, filesystems=[volume])]))
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 200, await response.text()
