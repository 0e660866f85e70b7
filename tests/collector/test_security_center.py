"""The security_center rule: protection off or stale, detections not remediated, blocked ones in the feed,
and a site's burst of detections as one site alert; pure, then through the real collector (both stores)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.checks import CheckContext
from agent.checks.security_center import SecurityCenterCheck
from collector.app import create_app
from collector.rules import History, SiteReport
from collector.rules.security_center import BLOCKED_EVENT, evaluate
from collector.settings import Settings
from shared.security_center import AntivirusProduct, Detection, Firewall, Protection, SecurityCenter
from tests.agent.test_security_center import DROP_INPUT, daily_cld, in_own_netns, needs_clamav, needs_netns
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, store_of

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def defender(updated: datetime = NOW - timedelta(hours=5), **facts: Any) -> AntivirusProduct:
    base: dict[str, Any] = {"enabled": True, "real_time": True, "up_to_date": True}
    return AntivirusProduct(name="Microsoft Defender Antivirus", source="defender",
                            signatures_updated_at=updated, **{**base, **facts})


def detection(id: str, remediated: bool = True, at: datetime = NOW - timedelta(minutes=10),
              threat: str = "Virus:DOS/EICAR_Test_File") -> Detection:
    return Detection(id=id, threat=threat, path="E:\\setup\\eicar.com", action="quarantined" if remediated
                     else "remove failed", remediated=remediated, user="RECEPTION-PC\\guest", detected_at=at)


def windows(*products: AntivirusProduct, detections: tuple[Detection, ...] = (), at: datetime = NOW,
            public: bool | None = True, **facts: Any) -> SecurityCenter:
    return SecurityCenter(collected_at=at, platform="windows", antivirus=list(products), detections=list(detections),
                          firewalls=[Firewall(name="Public", enabled=public)], **facts)


def verdicts(signal: SecurityCenter, *previous: SecurityCenter, site: tuple[SiteReport, ...] = (),
             **settings: Any) -> dict[str, tuple[str, str]]:
    history = History(now=signal.collected_at, hostname="RECEPTION-PC", previous=previous, agent_id="a1",
                      settings={"security_center": settings}, site=site)
    return {f"{v.rule}|{v.subject}": (v.status, v.summary) for v in evaluate(signal, history)}


def statuses(found: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {key: status for key, (status, _) in found.items()}


def test_a_protected_device_is_all_ok() -> None:
    assert set(statuses(verdicts(windows(defender()))).values()) == {"ok"}


@pytest.mark.parametrize(("product", "words"), [
    (defender(enabled=False), "Microsoft Defender Antivirus is switched off"),
    (defender(real_time=False), "real-time protection of Microsoft Defender Antivirus is off"),
    (defender(up_to_date=False), "Microsoft Defender Antivirus says its signatures are out of date"),
    (defender(updated=NOW - 4 * DAY), "Microsoft Defender Antivirus signatures are 4 days old"),
])
def test_protection_off_or_stale_signatures_are_a_warning(product: AntivirusProduct, words: str) -> None:
    status, summary = verdicts(windows(product))["security_center.protection|antivirus:Microsoft Defender Antivirus"]
    assert (status, summary) == ("warning", words)


def test_the_signature_age_is_a_setting() -> None:
    key = "security_center.protection|antivirus:Microsoft Defender Antivirus"
    assert verdicts(windows(defender(updated=NOW - 2 * DAY)))[key][0] == "ok"
    assert verdicts(windows(defender(updated=NOW - 2 * DAY)), signature_warning_days=1)[key][0] == "warning"


def test_defender_off_beside_a_healthy_third_party_antivirus_is_fine() -> None:
    sophos = AntivirusProduct(name="Sophos Intercept X", source="security-center", enabled=True, up_to_date=True)
    found = statuses(verdicts(windows(defender(enabled=False, real_time=None), sophos)))
    assert found["security_center.protection|antivirus:Microsoft Defender Antivirus"] == "ok"


def test_a_windows_pc_without_antivirus_and_a_firewall_off_are_warnings() -> None:
    found = statuses(verdicts(windows(public=False)))
    assert found["security_center.protection|antivirus"] == "warning"
    assert found["security_center.protection|firewall:Public"] == "warning"
    assert statuses(verdicts(windows(public=False), firewall_required=False))[
        "security_center.protection|firewall:Public"] == "ok"


def test_what_could_not_be_read_is_unknown_never_ok() -> None:
    broken = AntivirusProduct(name="Security Center", source="security-center", error="Invalid namespace")
    signal = windows(broken, public=None, detections_error="Get-MpThreatDetection: access denied")
    found = statuses(verdicts(signal))
    assert found["security_center.protection|antivirus:Security Center"] == "unknown"
    assert found["security_center.protection|firewall:Public"] == "unknown"
    assert found["security_center.detection|detections"] == "unknown"
    mac = SecurityCenter(collected_at=NOW, platform="macos", protections=[Protection(name="sip", enabled=None)])
    assert statuses(verdicts(mac))["security_center.protection|sip"] == "unknown"


def test_a_detection_not_remediated_is_critical_and_resolves_once_it_is() -> None:
    active = windows(defender(), detections=(detection("d1", remediated=False),))
    status, summary = verdicts(active)["security_center.detection|detection:d1"]
    assert status == "critical"
    assert summary == ("malware not remediated (remove failed): Virus:DOS/EICAR_Test_File in E:\\setup\\eicar.com "
                       "on RECEPTION-PC (user RECEPTION-PC\\guest)")
    later = windows(defender(), detections=(detection("d1"),), at=NOW + timedelta(minutes=15))
    assert verdicts(later, active)["security_center.detection|detection:d1"][0] == "ok"


def events(signal: SecurityCenter, *previous: SecurityCenter) -> list[str]:
    history = History(now=signal.collected_at, hostname="RECEPTION-PC", previous=previous)
    return [v.subject for v in evaluate(signal, history) if v.details.get("event") == BLOCKED_EVENT]


def test_a_new_blocked_detection_is_one_event_and_old_ones_are_not_told_again() -> None:
    first = windows(defender(), detections=(detection("d1"), detection("old", at=NOW - 40 * DAY)))
    assert events(first) == ["detection:d1"]
    again = windows(defender(), detections=(detection("d1"), detection("d2")), at=NOW + timedelta(minutes=15))
    assert events(again, first) == ["detection:d2"]


def site_report(agent: str, *detections: Detection) -> SiteReport:
    return SiteReport(agent, agent.upper(), NOW, windows(defender(), detections=detections))


def test_a_burst_of_detections_on_a_site_is_one_site_alert() -> None:
    signal = windows(defender(), detections=(detection("d1"),))
    quiet = verdicts(signal, site=(site_report("a2", detection("x1")),))
    assert quiet["security_center.burst|detections-burst"][0] == "ok"
    site = (site_report("a2", detection("x1")), site_report("a3", detection("y1", at=NOW - timedelta(minutes=50))),
            site_report("a1", detection("d1")))  # the device's own earlier report counts once
    status, summary = verdicts(signal, site=site)["security_center.burst|detections-burst"]
    assert status == "warning"
    assert summary == "3 malware detections on 3 devices within an hour (Virus:DOS/EICAR_Test_File)"
    old = (site_report("a2", detection("x1")), site_report("a3", detection("y1", at=NOW - timedelta(minutes=70))))
    assert verdicts(signal, site=old)["security_center.burst|detections-burst"][0] == "ok"
    assert verdicts(signal, site=old, burst_detections=2)["security_center.burst|detections-burst"][0] == "warning"


# Through the running collector, signed batches as agents post them.

@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


async def report(client: TestClient, agent: SimAgent, signal: SecurityCenter) -> None:
    body = agent.body(agent.envelope([signal]))
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 200, await response.text()


async def alerts(client: TestClient) -> dict[str, dict[str, Any]]:
    body = await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json()
    return {f"{a['rule']}|{a['hostname']}|{a['subject']}": a for a in body["alerts"]}


async def blocked_events(client: TestClient) -> list[dict[str, Any]]:
    async with store_of(client).transaction() as tx:
        return [e.data for e in await tx.feed_since(0, 1000) if e.type == f"device.{BLOCKED_EVENT}"]


async def test_collector_warns_on_stale_signatures_and_goes_critical_on_an_active_detection(
    client: TestClient, clock: Clock
) -> None:
    agent = await enrolled(client, "RECEPTION-PC")
    stale = defender(updated=clock.now - 5 * DAY)
    await report(client, agent, windows(stale, at=clock.now))
    clock.advance(minutes=15)
    trojan = detection("t1", remediated=False, at=clock.now - timedelta(minutes=5), threat="Trojan:Win32/Wacatac.B!ml")
    await report(client, agent, windows(stale, detections=(trojan,), at=clock.now))
    found = await alerts(client)
    protection = found["security_center.protection|RECEPTION-PC|antivirus:Microsoft Defender Antivirus"]
    assert (protection["severity"], protection["state"]) == ("warning", "open")
    active = found["security_center.detection|RECEPTION-PC|detection:t1"]
    assert (active["severity"], active["state"]) == ("critical", "open")
    clock.advance(minutes=15)
    cleaned = trojan.model_copy(update={"remediated": True, "action": "removed"})
    await report(client, agent, windows(defender(updated=clock.now), detections=(cleaned,), at=clock.now))
    assert (await alerts(client))["security_center.detection|RECEPTION-PC|detection:t1"]["state"] == "resolved"
    assert await blocked_events(client) == [], "a detection that was critical is not told as blocked afterwards"


async def test_collector_tells_a_blocked_detection_once_in_the_feed(client: TestClient, clock: Clock) -> None:
    agent = await enrolled(client, "GUEST-LAPTOP")
    eicar = detection("e1", at=clock.now - timedelta(minutes=3))
    for _ in range(3):
        await report(client, agent, windows(defender(updated=clock.now), detections=(eicar,), at=clock.now))
        clock.advance(minutes=15)
    [event] = await blocked_events(client)
    assert (event["hostname"], event["threat"], event["action"]) == ("GUEST-LAPTOP", eicar.threat, "quarantined")
    assert event["summary"] == ("blocked malware (quarantined): Virus:DOS/EICAR_Test_File in E:\\setup\\eicar.com "
                                "on GUEST-LAPTOP (user RECEPTION-PC\\guest)")
    assert not [key for key in await alerts(client) if key.startswith("security_center.detection")]


async def test_collector_opens_one_site_alert_for_a_burst_across_devices(client: TestClient, clock: Clock) -> None:
    laptops = [await enrolled(client, f"LAPTOP-{n}") for n in range(4)]
    for n, laptop in enumerate(laptops):
        found = detection(f"d{n}", at=clock.now - timedelta(minutes=2))
        await report(client, laptop, windows(defender(updated=clock.now), detections=(found,), at=clock.now))
        clock.advance(minutes=5)
    bursts = [a for key, a in (await alerts(client)).items() if key.startswith("security_center.burst")]
    [burst] = bursts
    assert (burst["severity"], burst["state"], burst["hostname"], burst["agent_id"]) == (
        "warning", "open", "site-wide", None)
    assert burst["summary"].startswith("4 malware detections on 4 devices within an hour")
    assert len(await blocked_events(client)) == 4


@needs_clamav
@needs_netns
async def test_a_real_linux_check_with_old_clamav_signatures_warns_and_its_firewall_is_fine(
    client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    database = daily_cld(tmp_path / "clamav", clock.now - 5 * DAY)
    context = CheckContext(settings={"clamav_database": str(database)}, run=in_own_netns(DROP_INPUT),
                           clock=lambda: clock.now)
    [signal] = await SecurityCenterCheck(context, platform="linux").run()
    assert isinstance(signal, SecurityCenter), signal
    agent = await enrolled(client, "FILESERVER")
    await report(client, agent, signal)
    found = await alerts(client)
    stale = found["security_center.protection|FILESERVER|antivirus:ClamAV"]
    assert (stale["severity"], stale["summary"]) == ("warning", "ClamAV signatures are 5 days old")
    assert not [key for key in found if "firewall" in key]
