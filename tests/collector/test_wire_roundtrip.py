"""Property tests on both backends: any report the schema accepts is stored and read back equal (NUL
characters and all), and shown by the API and the device's page; a report with any value out of bounds
gets 422, never a 5xx."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, example, given, settings
from pydantic import ValidationError

from collector import keys
from collector.app import create_app
from collector.services.technicians import Technicians
from collector.settings import Settings
from collector.store.unreadable import parse_signal
from shared.wire import ReportBatch
from tests.support.agents import REPORTS, SimAgent, heartbeat
from tests.support.clock import START, Clock
from tests.support.collector import TECH, enrolled, store_of
from tests.support.wire_strategies import INFINITY, hostile, signals
from tests.web.conftest import NAME, PASSWORD, log_in

EXAMPLES = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large])


@pytest.fixture
async def client(database: str) -> AsyncIterator[TestClient]:
    settings_ = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9,
                         agent_uploads_per_minute=0, notify_interval_seconds=0, startup_grace_seconds=0)
    async with TestClient(TestServer(create_app(settings_, clock=Clock()))) as test_client:
        await Technicians(test_client.app[keys.STORE], Clock()).add(NAME, PASSWORD)
        await log_in(test_client)
        yield test_client


@pytest.fixture
async def agent(client: TestClient) -> SimAgent:
    """The PC whose reports are generated, on the collector's clock."""
    return await enrolled(client)


async def upload(client: TestClient, agent: SimAgent, signal: dict[str, Any]) -> tuple[int, bytes, Any]:
    """Send one envelope with the signal (infinity written as JSON numbers overflow); status, body, answer."""
    envelope = agent.envelope()
    envelope["signals"] = [signal]
    body = agent.body(envelope).replace(f'"{INFINITY}"'.encode(), b"1e999")
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    return response.status, body, await response.json()


NUL = "\x00"
# NUL characters in a backup job's name (an alert's subject and summary: PostgreSQL's text cannot hold NUL)
# and in free texts of the payload. A hostname with a control character is refused (422).
WITH_NUL = [
    {**heartbeat("PC-01", START).model_dump(mode="json"), "os_version": f"10{NUL}", "os_name": NUL},
    {"kind": "backup_results", "collected_at": START.isoformat(), "jobs": [
        {"name": f"night{NUL}ly", "tool": f"restic{NUL}", "schedule": "daily", "last_result": "failed",
         "error": f"disk{NUL}full", "detail": {NUL: NUL}},
    ]},
]


@EXAMPLES
@given(signal=signals(START))
@example(signal=WITH_NUL[0])
@example(signal=WITH_NUL[1])
@example(signal={**WITH_NUL[0], "hostname": f"PC{NUL}01"})
async def test_any_report_the_schema_accepts_is_stored_and_read_back_equal(
    client: TestClient, agent: SimAgent, signal: dict[str, Any]
) -> None:
    status, body, answer = await upload(client, agent, signal)
    try:
        [envelope] = ReportBatch.model_validate_json(body, context={"now": START}).envelopes
    except ValidationError:
        assert status == 422, answer  # a bound the generator does not know (e.g. two values that disagree)
        return
    assert status == 200, answer
    [sent] = envelope.signals
    async with store_of(client).read() as tx:
        [stored] = await tx.observations(agent.agent_id, sent.kind, 1)
    assert stored.seq == envelope.seq
    assert stored.collected_at == sent.collected_at
    # Kept as the kind keeps it: an encryption report's sealed recovery keys are stored apart, never with it.
    assert parse_signal(stored.payload) == parse_signal(json.loads(sent.stored_json()))
    assert store_of(client).unreadable.count() == 0
    devices = await client.get("/api/v1/devices", headers=TECH)
    assert devices.status == 200
    [device] = (await devices.json())["devices"]
    if sent.kind == "heartbeat":
        assert device["hostname"] == sent.hostname  # type: ignore[attr-defined]
    page = await client.get(f"/devices/{agent.agent_id}")
    assert page.status == 200, await page.text()


@EXAMPLES
@given(signal=hostile(START))
async def test_a_report_with_any_value_out_of_bounds_gets_422(
    client: TestClient, agent: SimAgent, signal: dict[str, Any]
) -> None:
    status, _, answer = await upload(client, agent, signal)
    assert status == 422, (answer, json.dumps(signal)[:500])
    assert answer["problems"], answer
