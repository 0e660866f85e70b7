"""The reachability rule judges a device without an agent from every vantage point of its site; the
technician declares such devices through the API, and the site's agents get a signed, versioned document."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.identity import Identity
from agent.site_config import accept
from collector import keys
from collector.app import create_app
from collector.rules import History, SiteReport
from collector.rules.reachability import evaluate
from collector.settings import Settings
from shared.printer_ip_conflict import NeighbourEntry, PrinterIpConflict
from shared.reachability import (
    MAX_DOCUMENT_BYTES,
    MAX_TARGETS,
    DocumentRefused,
    ProbeResult,
    Reachability,
    SiteConfig,
    Target,
    public_key_text,
    sign_document,
    verify_document,
)
from shared.signing import sign_headers
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, new_token

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
RECORDER = Target(name="Recorder", address="192.0.2.20", kind="camera_recorder", probe="icmp")
CAMERA = Target(name="Camera yard", address="192.0.2.21", kind="camera", probe="tcp", port=554)
DEVICES = "/api/v1/sites/Acme Tooling/Main office/network-devices"


def seen(target: Target, state: str, error: str | None = None) -> ProbeResult:
    answered = 3 if state == "up" else 0
    return ProbeResult(target=target, how=target.how(), state=state,  # type: ignore[arg-type]
                       sent=3 if state != "could_not_look" else 0, received=answered,
                       latency_ms=1.5 if answered else None, error=error)


def report(*results: ProbeResult, at: datetime = NOW, version: int = 1) -> Reachability:
    return Reachability(collected_at=at, config_version=version, results=list(results))


def verdicts(signal: Reachability, *others: tuple[str, Reachability], previous: tuple[Reachability, ...] = (),
             client_zone: str | None = None, **settings: Any) -> dict[str, tuple[str, str]]:
    site = tuple(SiteReport(f"id-{host}", host, s.collected_at, s) for host, s in others)
    history = History(now=signal.collected_at, hostname="RECEPTION-PC", agent_id="id-RECEPTION-PC", site=site,
                      previous=previous, settings={"reachability": settings}, client_zone=client_zone)
    return {f"{v.rule}|{v.subject}": (v.status, v.summary) for v in evaluate(signal, history) if v.rule != "unknown"}


def test_a_recorder_no_device_of_the_site_reaches_is_critical() -> None:
    found = verdicts(report(seen(RECORDER, "down", "no echo reply within 2 s")),
                     ("OFFICE-PC", report(seen(RECORDER, "down"), at=NOW - timedelta(minutes=3))))
    status, summary = found["reachability|device:Recorder"]
    assert status == "critical"
    assert "answers none of the 2 devices" in summary and "camera recorder" in summary


def test_a_single_camera_no_device_reaches_is_a_warning() -> None:
    assert verdicts(report(seen(CAMERA, "down")))["reachability|device:Camera yard"][0] == "warning"


def test_a_device_one_pc_cannot_reach_while_another_can_is_that_pcs_network_not_an_alert() -> None:
    found = verdicts(report(seen(RECORDER, "down")), ("OFFICE-PC", report(seen(RECORDER, "up"))))
    status, summary = found["reachability|device:Recorder"]
    assert status == "ok"
    assert "answers OFFICE-PC" in summary and "not from RECEPTION-PC (their network" in summary


def test_a_pc_that_could_not_look_is_no_vantage_point() -> None:
    could_not = seen(RECORDER, "could_not_look", "unprivileged ICMP echo not allowed here")
    assert verdicts(report(could_not))["reachability|device:Recorder"][0] == "unknown"
    # Another PC that looked and got no answer decides: the one that could not look counts for nothing.
    found = verdicts(report(could_not), ("OFFICE-PC", report(seen(RECORDER, "down"))))
    assert found["reachability|device:Recorder"][0] == "critical"


def test_only_each_pcs_newest_report_counts() -> None:
    older = report(seen(RECORDER, "up"), at=NOW - timedelta(minutes=10))
    newer = report(seen(RECORDER, "down"), at=NOW - timedelta(minutes=5))
    found = verdicts(report(seen(RECORDER, "down")), ("OFFICE-PC", older), ("OFFICE-PC", newer))
    assert found["reachability|device:Recorder"][0] == "critical"


def test_outside_its_expected_hours_a_silent_device_is_no_alert() -> None:
    shop_hours = Target(**{**RECORDER.model_dump(), "hours": "07:00-09:00"})
    status, summary = verdicts(report(seen(shop_hours, "down")))["reachability|device:Recorder"]
    assert status == "ok" and "outside its hours" in summary
    # The same hours in a time zone where it is 08:00 now: expected to answer.
    assert verdicts(report(seen(shop_hours, "down")), timezone="America/Sao_Paulo"
                    )["reachability|device:Recorder"][0] == "critical"


# Europe/Berlin moves from CET (UTC+1) to CEST (UTC+2) on 29 March 2026: 05:30 UTC is 06:30 in Berlin the
# day before, 07:30 the day after.
BEFORE_DST = datetime(2026, 3, 28, 5, 30, tzinfo=UTC)
AFTER_DST = datetime(2026, 3, 30, 5, 30, tzinfo=UTC)
DAYTIME_CAMERA = Target(**{**CAMERA.model_dump(), "hours": "07:00-19:00"})


def test_expected_hours_are_read_in_the_clients_own_time_zone_across_a_dst_change() -> None:
    def status(at: datetime, **zones: Any) -> str:
        return verdicts(report(seen(DAYTIME_CAMERA, "down"), at=at), **zones)["reachability|device:Camera yard"][0]

    assert status(BEFORE_DST, client_zone="Europe/Berlin") == "ok"  # 06:30 in Berlin: not open yet
    assert status(AFTER_DST, client_zone="Europe/Berlin") == "warning"  # 07:30 in Berlin (summer time)
    # The client's zone wins over the rules setting, which stays the fallback for a client without one.
    assert status(AFTER_DST, client_zone="Europe/Berlin", timezone="America/Sao_Paulo") == "warning"
    assert status(AFTER_DST, timezone="America/Sao_Paulo") == "ok"  # 02:30 in Sao Paulo
    assert status(AFTER_DST) == "ok"  # 05:30 UTC


def test_a_certificate_expiring_within_the_declared_days_warns() -> None:
    nas = Target(name="NAS", address="192.0.2.30", kind="nas", probe="http", url="https://192.0.2.30/",
                 tls_days=30)
    result = ProbeResult(target=nas, how=nas.how(), state="up", sent=3, received=3, latency_ms=4.0,
                         http_status=200, tls_days_left=12.5)
    status, summary = verdicts(report(result))["reachability.certificate|certificate:NAS"]
    assert status == "warning" and "expires in 12 days" in summary


def test_a_device_no_longer_declared_resolves_as_gone() -> None:
    before = report(seen(RECORDER, "down"), seen(CAMERA, "up"), at=NOW - timedelta(minutes=5))
    found = verdicts(report(seen(CAMERA, "up"), version=2), previous=(before,))
    assert found["reachability|device:Recorder"] == ("ok", "Recorder is no longer watched")


def test_a_declaration_needs_what_its_probe_needs() -> None:
    for bad in ({"probe": "tcp"}, {"probe": "http"}, {"probe": "icmp", "tls_days": 10},
                {"address": "10.0.0.1; rm -rf /"}, {"kind": "toaster"}, {"hours": "25:00-26:00"}):
        with pytest.raises(ValueError):
            Target(**{**RECORDER.model_dump(), **bad})


def test_the_largest_site_document_the_bounds_allow_is_accepted() -> None:
    key = Ed25519PrivateKey.generate()
    longest = [Target(name=f"{n:03d}" + "N" * 97, address="a" * 253, kind="camera_recorder", probe="http",
                      url="https://" + "u" * 1016, expect_status=599, tls_days=3650, hours="23:59-00:00")
               for n in range(MAX_TARGETS)]
    config = SiteConfig(version=2**63 - 1, client="C" * 200, site="S" * 200, issued_at=NOW, targets=longest)
    body = sign_document(key, config)
    assert len(body) <= MAX_DOCUMENT_BYTES
    assert verify_document(body, public_key_text(key)) == config
    with pytest.raises(DocumentRefused, match="refused"):
        verify_document(body + b" " * MAX_DOCUMENT_BYTES, public_key_text(key))


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


async def site_document(client: TestClient, agent: SimAgent) -> bytes:
    stamp = int(agent.clock().timestamp())
    response = await client.get("/api/v1/site-config",
                                headers=sign_headers(agent.key, agent.agent_id, "GET", "/api/v1/site-config", b"",
                                                     stamp))
    assert response.status == 200, await response.text()
    return await response.read()


async def test_technician_declares_devices_and_agents_get_a_signed_versioned_document(
    client: TestClient, tmp_path: Path
) -> None:
    agent = SimAgent("RECEPTION-PC", clock=client.app[keys.CLOCK])
    enrolment = await client.post("/api/v1/enrol", json=agent.enrol_body(await new_token(client)))
    issued = await enrolment.json()
    agent.agent_id = issued["agent_id"]
    # The key handed out at enrolment is the one that signs the site's documents.
    first = verify_document(await site_document(client, agent), issued["config_key"])
    assert (first.version, first.targets) == (0, [])

    created = await client.post(DEVICES, json=RECORDER.model_dump(exclude_none=True), headers=TECH)
    assert created.status == 201, await created.text()
    assert (await created.json())["how"] == "icmp"
    assert (await client.post(DEVICES, json=CAMERA.model_dump(exclude_none=True), headers=TECH)).status == 201
    again = await client.post(DEVICES, json=RECORDER.model_dump(exclude_none=True), headers=TECH)
    assert again.status == 409
    bad = await client.post(DEVICES, json={"name": "X", "address": "192.0.2.9", "kind": "nas", "probe": "tcp"},
                            headers=TECH)
    assert bad.status == 422 and "a tcp probe needs a port" in (await bad.json())["error"]
    missing = await client.get("/api/v1/sites/Acme Tooling/Nowhere/network-devices", headers=TECH)
    assert missing.status == 404
    listed = await (await client.get(DEVICES, headers=TECH)).json()
    assert [d["name"] for d in listed["network_devices"]] == ["Camera yard", "Recorder"]

    body = await site_document(client, agent)
    identity = Identity(agent.agent_id, "http://collector", "Acme Tooling", "Main office", NOW, agent.key)
    kept = accept(tmp_path, body, identity)
    assert kept.version == 2 and {t.name for t in kept.targets} == {"Recorder", "Camera yard"}
    removed = await client.delete(DEVICES + "/Camera yard", headers=TECH)
    assert removed.status == 200
    assert accept(tmp_path, await site_document(client, agent), identity).version == 3
    # The older document again (a replay): refused, the newer copy stays.
    with pytest.raises(DocumentRefused, match="older"):
        accept(tmp_path, body, identity)
    # Changed on the way: refused.
    wrapper = json.loads(body)
    wrapper["document"] = wrapper["document"].replace("192.0.2.20", "192.0.2.99")
    with pytest.raises(DocumentRefused, match="not signed"):
        accept(tmp_path, json.dumps(wrapper).encode(), identity)
    # For another site: refused.
    elsewhere = Identity(agent.agent_id, "http://collector", "Acme Tooling", "Warehouse", NOW, agent.key)
    with pytest.raises(DocumentRefused, match="this agent belongs to"):
        accept(tmp_path / "other", body, elsewhere)


async def test_a_stranger_gets_no_site_document(client: TestClient) -> None:
    stranger = SimAgent("STRANGER")
    stranger.agent_id = "ag_nobody"
    response = await client.get("/api/v1/site-config", headers=stranger.headers(b"", path="/api/v1/site-config"))
    assert response.status == 401


async def test_a_recorder_silent_to_every_pc_opens_one_critical_and_resolves_when_it_answers(
    client: TestClient, clock: Clock
) -> None:
    pcs = [await enrolled(client, name) for name in ("RECEPTION-PC", "OFFICE-PC")]

    async def send(agent: SimAgent, state: str) -> None:
        body = agent.body(agent.envelope([report(seen(RECORDER, state), at=clock.now)]))
        response = await client.post(REPORTS, data=body, headers=agent.headers(body))
        assert response.status == 200, await response.text()

    for pc in pcs:
        await send(pc, "up")
    clock.advance(minutes=5)
    await send(pcs[0], "down")  # OFFICE-PC's newest report still reaches it: RECEPTION-PC's network
    listed = (await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json())["alerts"]
    assert [a for a in listed if a["rule"] == "reachability"] == []
    clock.advance(minutes=5)
    await send(pcs[1], "down")
    listed = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    [alert] = [a for a in listed if a["rule"] == "reachability"]
    assert (alert["severity"], alert["subject"]) == ("critical", "device:Recorder")
    await send(pcs[0], "down")  # the other PC agrees: still one alert
    listed = (await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json())["alerts"]
    assert len([a for a in listed if a["rule"] == "reachability"]) == 1
    for _ in range(3):  # it answers again: resolved after the usual good streak
        clock.advance(minutes=5)
        for pc in pcs:
            await send(pc, "up")
    listed = (await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json())["alerts"]
    assert [a["state"] for a in listed if a["rule"] == "reachability"] == ["resolved"]


async def test_a_camera_at_a_berlin_client_is_judged_in_berlin_time_through_ingest(
    client: TestClient, clock: Clock
) -> None:
    clock.now = BEFORE_DST
    pc = await enrolled(client, "RECEPTION-PC")

    async def camera_alerts() -> list[dict[str, Any]]:
        body = pc.body(pc.envelope([report(seen(DAYTIME_CAMERA, "down"), at=clock.now)]))
        response = await client.post(REPORTS, data=body, headers=pc.headers(body))
        assert response.status == 200, await response.text()
        listed = (await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json())["alerts"]
        return [a for a in listed if a["rule"] == "reachability"]

    zone = await client.put("/api/v1/clients/Acme Tooling/hours", json={"timezone": "Europe/Berlin"}, headers=TECH)
    assert zone.status == 200, await zone.text()
    assert await camera_alerts() == []  # 06:30 in Berlin, before its hours
    clock.now = AFTER_DST
    [alert] = await camera_alerts()  # 07:30 in Berlin: the same UTC time, now within its hours
    assert (alert["severity"], alert["state"]) == ("warning", "open")


CANDIDATES = "/api/v1/sites/Acme Tooling/Main office/network-device-candidates"


async def report_neighbours(client: TestClient, agent: SimAgent, at: datetime, *entries: tuple[str, str]) -> None:
    neighbours = [NeighbourEntry(ip=ip, mac=mac) for ip, mac in entries]
    body = agent.body(agent.envelope([PrinterIpConflict(collected_at=at, neighbours=neighbours)]))
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 200, await response.text()


async def test_candidates_are_listed_adopted_and_dismissed_through_the_api(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client, "RECEPTION-PC")
    await report_neighbours(client, agent, clock.now, ("192.0.2.31", "44:19:b6:12:34:56"),  # Hikvision
                            ("192.0.2.40", "00:11:32:aa:bb:cc"),  # Synology
                            ("192.0.2.50", "24:5e:be:01:02:03"),  # QNAP
                            ("192.0.2.77", "02:11:22:33:44:55"))  # a laptop: no known maker

    async def offered() -> list[str]:
        response = await client.get(CANDIDATES, headers=TECH)
        assert response.status == 200, await response.text()
        return [c["address"] for c in (await response.json())["candidates"]]

    listed = (await (await client.get(CANDIDATES, headers=TECH)).json())["candidates"]
    assert listed[0] == {"address": "192.0.2.31", "mac": "44:19:b6:12:34:56", "vendor": "Hikvision",
                         "kind": "camera", "seen_by": ["RECEPTION-PC"]}
    assert await offered() == ["192.0.2.31", "192.0.2.40", "192.0.2.50"]

    unknown = await client.post(f"{CANDIDATES}/192.0.2.77/adopt", json={}, headers=TECH)
    assert unknown.status == 404
    assert "'192.0.2.77' is not among the devices of Main office not monitored yet" in (await unknown.json())["error"]
    assert (await client.post(f"{CANDIDATES}/192.0.2.77/dismiss", headers=TECH)).status == 404
    no_site = await client.get("/api/v1/sites/Acme Tooling/Nowhere/network-device-candidates", headers=TECH)
    assert no_site.status == 404
    incomplete = await client.post(f"{CANDIDATES}/192.0.2.31/adopt", json={"probe": "tcp"}, headers=TECH)
    assert incomplete.status == 422 and "a tcp probe needs a port" in (await incomplete.json())["error"]
    stray = await client.post(f"{CANDIDATES}/192.0.2.31/adopt", json={"address": "192.0.2.99"}, headers=TECH)
    assert stray.status == 422 and "address" in (await stray.json())["error"]

    adopted = await client.post(f"{CANDIDATES}/192.0.2.31/adopt",
                                json={"name": "Camera yard", "probe": "tcp", "port": 554}, headers=TECH)
    assert adopted.status == 201, await adopted.text()
    assert {k: v for k, v in (await adopted.json()).items() if k in ("name", "address", "kind", "how")} == {
        "name": "Camera yard", "address": "192.0.2.31", "kind": "camera", "how": "tcp:554"}
    # Its maker's name and kind and an echo where the technician says nothing; by hardware address, as
    # Windows writes it.
    nas = await client.post(f"{CANDIDATES}/24-5E-BE-01-02-03/adopt", headers=TECH)
    assert nas.status == 201, await nas.text()
    assert {k: v for k, v in (await nas.json()).items() if k in ("name", "kind", "how")} == {
        "name": "QNAP 192.0.2.50", "kind": "nas", "how": "icmp"}
    declared = (await (await client.get(DEVICES, headers=TECH)).json())["network_devices"]
    assert [d["name"] for d in declared] == ["Camera yard", "QNAP 192.0.2.50"]

    dismissed = await client.post(f"{CANDIDATES}/00:11:32:aa:bb:cc/dismiss", headers=TECH)
    assert dismissed.status == 200, await dismissed.text()
    assert (await dismissed.json())["dismissed"]["vendor"] == "Synology"
    assert await offered() == []
    again = await client.post(f"{CANDIDATES}/00:11:32:aa:bb:cc/dismiss", headers=TECH)
    assert again.status == 404
    # Seen again at another address the next day: still dismissed, by its hardware address.
    clock.advance(days=1)
    await report_neighbours(client, agent, clock.now, ("192.0.2.41", "00:11:32:aa:bb:cc"))
    assert await offered() == []
    async with client.app[keys.STORE].read() as tx:
        recorded = [e.data for e in await tx.feed_since(0, 1000) if e.type == "network_device.candidate_dismissed"]
    assert recorded == [{"client": "Acme Tooling", "site": "Main office", "address": "192.0.2.40",
                         "mac": "00:11:32:aa:bb:cc", "vendor": "Synology"}]
