"""The collector's edge: enrolment, authentication, validation and idempotent ingest, against a real app."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.auth import token_hash
from collector.settings import Settings
from collector.store import FeedEvent
from shared.signing import SIGNATURE_HEADER
from tests.support.agents import REPORTS, SimAgent
from tests.support.collector import TECH, enrolled, new_token, store_of


@pytest.fixture
async def client(database: str) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret", max_body_bytes=64 * 1024)
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def stored_reports(client: TestClient, agent: SimAgent) -> int:
    async with store_of(client).transaction() as tx:
        return len(await tx.observations(agent.agent_id, "heartbeat", 1000))


async def test_it_enrols_and_accepts_a_signed_report(client: TestClient) -> None:
    agent = await enrolled(client)
    body = agent.body(agent.envelope())
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 200
    assert await response.json() == {"accepted": [1], "duplicates": []}
    devices = await (await client.get("/api/v1/devices", headers=TECH)).json()
    assert [(d["hostname"], d["client"], d["online"]) for d in devices["devices"]] == [
        ("RECEPTION-01", "Acme Tooling", True)
    ]


async def test_a_resent_envelope_is_acknowledged_and_stored_once(client: TestClient) -> None:
    agent = await enrolled(client)
    first = agent.envelope()
    body = agent.body(first)
    assert (await (await client.post(REPORTS, data=body, headers=agent.headers(body))).json())["accepted"] == [1]
    again = agent.body(first, agent.envelope())
    response = await client.post(REPORTS, data=again, headers=agent.headers(again))
    assert await response.json() == {"accepted": [2], "duplicates": [1]}
    assert await stored_reports(client, agent) == 2


@pytest.mark.parametrize(
    ("reason", "expected"),
    [("unknown", "unknown enrolment token"), ("expired", "expired"), ("used", "used up")],
)
async def test_it_refuses_bad_enrolment_tokens(client: TestClient, reason: str, expected: str) -> None:
    agent = SimAgent("PC-02")
    if reason == "expired":
        await new_token(client, "old", expires_at=datetime.now(UTC) - timedelta(minutes=1))
        token = "old"
    elif reason == "used":
        token = await new_token(client, "once", uses=1)
        first = await client.post("/api/v1/enrol", json=SimAgent("PC-01").enrol_body(token))
        assert first.status == 201
    else:
        token = "never-issued"
    response = await client.post("/api/v1/enrol", json=agent.enrol_body(token))
    assert response.status == 401
    said = (await response.json())["error"]
    assert expected in said and "a new token is made with `fieldpost-collector token create`" in said


async def test_malformed_json_gets_422_and_stores_nothing(client: TestClient) -> None:
    agent = await enrolled(client)
    body = b'{"envelopes": [{"schema_version": 1,'
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 422
    assert (await response.json())["error"].startswith("malformed JSON")
    assert await stored_reports(client, agent) == 0


async def test_a_wrong_schema_version_gets_422_naming_the_field(client: TestClient) -> None:
    agent = await enrolled(client)
    good = agent.envelope()
    bad = {**agent.envelope(), "schema_version": 7, "colour": "blue"}
    body = agent.body(good, bad)
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 422
    problems = {p["field"]: p["message"] for p in (await response.json())["problems"]}
    assert "unsupported schema version 7" in problems["envelopes.1.schema_version"]
    assert "envelopes.1.colour" in problems
    assert await stored_reports(client, agent) == 0, "nothing of a bad batch is stored, not even its good part"


async def test_an_unknown_agent_gets_401(client: TestClient) -> None:
    stranger = SimAgent("INTRUDER", agent_id="ag_nobody")
    body = stranger.body(stranger.envelope())
    response = await client.post(REPORTS, data=body, headers=stranger.headers(body))
    assert response.status == 401
    assert "unknown agent" in (await response.json())["error"]


async def test_a_revoked_agent_gets_401(client: TestClient) -> None:
    agent = await enrolled(client)
    async with store_of(client).transaction() as tx:
        assert await tx.revoke_agent(agent.agent_id, datetime.now(UTC)) is True
    body = agent.body(agent.envelope())
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 401
    assert "revoked" in (await response.json())["error"]
    assert await stored_reports(client, agent) == 0


async def test_a_forged_or_altered_request_gets_401(client: TestClient) -> None:
    agent = await enrolled(client)
    forger = SimAgent("RECEPTION-01", agent_id=agent.agent_id)  # same id, another key
    body = forger.body(forger.envelope())
    forged = await client.post(REPORTS, data=body, headers=forger.headers(body))
    assert forged.status == 401
    signed = agent.body(agent.envelope())
    altered = signed.replace(b"RECEPTION-01", b"RECEPTION-99")
    tampered = await client.post(REPORTS, data=altered, headers=agent.headers(signed))
    assert tampered.status == 401
    assert "signature does not match" in (await tampered.json())["error"]
    assert await stored_reports(client, agent) == 0


@pytest.mark.parametrize("signature", ["not base64!", "c2hvcnQ=", "A" * 88, ""])
async def test_a_malformed_signature_gets_401_not_an_error(client: TestClient, signature: str) -> None:
    agent = await enrolled(client)
    body = agent.body(agent.envelope())
    response = await client.post(REPORTS, data=body, headers={**agent.headers(body), SIGNATURE_HEADER: signature})
    assert response.status == 401
    assert await stored_reports(client, agent) == 0


async def test_a_replay_outside_the_clock_window_gets_401_and_inside_it_stores_nothing_twice(
    client: TestClient,
) -> None:
    agent = await enrolled(client)
    body = agent.body(agent.envelope())
    headers = agent.headers(body)
    assert (await client.post(REPORTS, data=body, headers=headers)).status == 200
    replay = await client.post(REPORTS, data=body, headers=headers)
    assert await replay.json() == {"accepted": [], "duplicates": [1]}
    old = agent.headers(body, timestamp=int(time.time()) - 3600)
    stale = await client.post(REPORTS, data=body, headers=old)
    assert stale.status == 401
    assert "clock" in (await stale.json())["error"]
    assert await stored_reports(client, agent) == 1


async def test_an_oversized_body_gets_413_and_stores_nothing(client: TestClient) -> None:
    agent = await enrolled(client)
    body = b'{"envelopes": [' + b" " * (70 * 1024) + b"]}"
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 413
    assert "larger than the collector accepts" in (await response.json())["error"]
    assert await stored_reports(client, agent) == 0


async def test_envelopes_naming_another_agent_are_refused(client: TestClient) -> None:
    agent = await enrolled(client)
    other = await enrolled(client, "PC-02")
    body = agent.body({**agent.envelope(), "agent_id": other.agent_id})
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 422
    assert await stored_reports(client, other) == 0


async def test_technician_endpoints_refuse_requests_without_the_token(client: TestClient) -> None:
    for path in ("/api/v1/alerts", "/api/v1/devices", "/api/v1/clients", "/api/v1/feed"):
        response = await client.get(path, headers={"Authorization": "Bearer wrong"})
        assert response.status == 401, path
    assert (await client.get("/healthz")).status == 200


async def test_the_feed_resumes_after_last_event_id(client: TestClient) -> None:
    await enrolled(client, "PC-01")
    await enrolled(client, "PC-02")
    response = await client.get("/api/v1/feed", headers={**TECH, "Last-Event-ID": "1"})
    assert response.status == 200
    seen = []
    while len(seen) < 1:
        line = (await response.content.readline()).decode()
        if line.startswith("data: "):
            seen.append(json.loads(line[6:]))
    response.close()
    assert seen[0]["hostname"] == "PC-02"


async def test_a_clients_own_thresholds_decide_its_verdicts(database: str) -> None:
    from shared.disk_health import DiskHealth, FilesystemFacts

    gib = 1 << 30
    settings = Settings(
        db=database, admin_token="tech-secret",
        client_rules={"Acme Tooling": {"disk_health": {"fs_warning_free_percent": 20}}},
    )
    volume = FilesystemFacts(mount="C:", device="\\\\?\\Volume{1}", fstype="ntfs", total_bytes=100 * gib,
                             used_bytes=85 * gib, free_bytes=15 * gib)
    async with TestClient(TestServer(create_app(settings))) as strict:
        agent = await enrolled(strict)
        signal = DiskHealth(collected_at=datetime.now(UTC), filesystems=[volume])
        body = agent.body(agent.envelope([signal]))
        assert (await strict.post(REPORTS, data=body, headers=agent.headers(body))).status == 200
        alerts = (await (await strict.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    assert [(a["subject"], a["severity"]) for a in alerts] == [("fs:C:", "warning")], "15 % free < 20 % for Acme"
    assert Settings(rules={"disk_health": {"a": 1, "b": 2}}, client_rules={"X": {"disk_health": {"b": 3}}}
                    ).rule_settings("X") == {"disk_health": {"a": 1, "b": 3}}


async def test_two_pcs_of_a_site_seeing_one_address_conflict_share_one_alert(client: TestClient) -> None:
    from tests.collector.test_printer_ip_conflict import BROTHER, FUJI, PRINTER, probe, report

    first, second = await enrolled(client, "RECEPTION-01"), await enrolled(client, "OFFICE-02")
    for agent in (first, second):
        now = datetime.now(UTC)
        signal = report(agent.hostname, now, probes=[probe(PRINTER, BROTHER, FUJI, at=now)]).signal
        body = agent.body(agent.envelope([signal]))
        assert (await client.post(REPORTS, data=body, headers=agent.headers(body))).status == 200
    alerts = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    conflicts = [a for a in alerts if a["rule"] == "printer_ip_conflict"]
    assert [(a["subject"], a["severity"], a["occurrences"]) for a in conflicts] == [(f"ip:{PRINTER}", "critical", 2)]
    assert "IP address conflict at 192.0.2.50" in conflicts[0]["summary"]


async def test_a_second_collectors_feed_shows_what_the_first_one_wrote(database: str, client: TestClient) -> None:
    from collector import keys

    # PostgreSQL wakes the other collector at once (LISTEN/NOTIFY): a 30 s poll would be far too late.
    # SQLite cannot tell other processes' writes, so there the feed's own poll must find them.
    poll = 30.0 if database.startswith("postgresql") else 0.5
    settings = Settings(db=database, admin_token="tech-secret")
    async with TestClient(TestServer(create_app(settings))) as other:
        feed = other.app[keys.FEED]
        after = await feed.latest_id()
        events = feed.follow(after, poll_seconds=poll)

        async def first_event() -> FeedEvent:
            async for event in events:
                if event is not None:  # None is the keep-alive after a quiet poll
                    return event
            raise AssertionError("the feed ended")

        waiting = asyncio.ensure_future(first_event())
        await asyncio.sleep(0.2)  # the follower is waiting before anything happens
        agent = await enrolled(client, "PC-ON-THE-OTHER-COLLECTOR")
        event = await asyncio.wait_for(waiting, 5)
        await events.aclose()
    assert (event.type, event.data["agent_id"]) == ("device.enrolled", agent.agent_id)


async def test_it_judges_enrolment_and_request_times_by_its_own_clock_not_the_machines(
    database: str,
) -> None:
    # A collector whose clock says 2031: whatever today's date is, only its clock counts.
    now = datetime(2031, 5, 5, 12, 0, tzinfo=UTC)

    def clock() -> datetime:
        return now

    settings = Settings(db=database, admin_token="tech-secret")
    async with TestClient(TestServer(create_app(settings, clock=clock))) as client:
        async with store_of(client).transaction() as tx:
            site = await tx.site("Acme Tooling", "Main office")
            await tx.add_enrolment_token(token_hash("tok"), site, now, now + timedelta(hours=1), None)
        agent = SimAgent("RECEPTION-01", clock=clock)
        response = await client.post("/api/v1/enrol", json=agent.enrol_body("tok"))
        assert response.status == 201, await response.text()
        agent.agent_id = (await response.json())["agent_id"]
        body = agent.body(agent.envelope())
        assert (await client.post(REPORTS, data=body, headers=agent.headers(body))).status == 200
        wall = agent.headers(body, timestamp=int(time.time()))
        assert (await client.post(REPORTS, data=body, headers=wall)).status == 401, "signed by the wall clock"
        now += timedelta(hours=2)
        late = await client.post("/api/v1/enrol", json=SimAgent("RECEPTION-02").enrol_body("tok"))
        assert late.status == 401
        assert "expired at 2031-05-05T13:00:00+00:00" in (await late.json())["error"]


async def test_a_device_that_uploads_too_often_gets_429_and_slows_no_other_device(database: str) -> None:
    settings = Settings(db=database, admin_token="tech-secret", agent_upload_burst=3, agent_uploads_per_minute=6)
    async with TestClient(TestServer(create_app(settings))) as client:
        noisy, quiet = await enrolled(client, "RECEPTION-01"), await enrolled(client, "OFFICE-02")
        statuses = []
        for _ in range(4):
            body = noisy.body(noisy.envelope())
            response = await client.post(REPORTS, data=body, headers=noisy.headers(body))
            statuses.append(response.status)
        assert statuses == [200, 200, 200, 429]
        assert 1 <= int(response.headers["Retry-After"]) <= 10
        assert "too many uploads from this device" in (await response.json())["error"]
        body = quiet.body(quiet.envelope())
        response = await client.post(REPORTS, data=body, headers=quiet.headers(body))
        assert response.status == 200
