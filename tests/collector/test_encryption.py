"""The encryption rule: a system volume not encrypted, judged by device class and the client's policy; and
the same through the real collector on both stores, a key-carrying document refused."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.rules import History
from collector.rules.encryption import evaluate
from collector.settings import Settings
from shared.device_class import DeviceClass
from shared.encryption import Encryption, Volume, VolumeState
from tests.support.agents import REPORTS, SimAgent, heartbeat
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, store_of

NOW = datetime(2024, 11, 20, 9, 0, tzinfo=UTC)
KEY = "318427-051524-632841-229471-615340-075823-409162-551287"


def encryption(state: VolumeState = "not_encrypted", recovery: bool | None = None, at: datetime = NOW,
               system: bool = True, errors: tuple[str, ...] = ()) -> Encryption:
    volume = Volume(name="C:", mount_point="C:", system=system, state=state,
                    method=None if state == "not_encrypted" else "XtsAes128", recovery_protector=recovery)
    return Encryption(collected_at=at, mechanism="bitlocker", volumes=[volume], errors=list(errors))


def verdicts(signal: Encryption, device_class: DeviceClass | None = "laptop",
             **policy: str) -> dict[str, tuple[str, str]]:
    history = History(now=NOW, hostname="LAPTOP-03", settings={"encryption": policy}, device_class=device_class)
    return {v.rule: (v.status, v.summary) for v in evaluate(signal, history)}


def test_an_unencrypted_laptop_system_volume_is_a_warning() -> None:
    assert verdicts(encryption())["encryption"] == (
        "warning", "LAPTOP-03 (laptop): system volume C: is not encrypted")


@pytest.mark.parametrize(("device_class", "policy", "status"), [
    ("laptop", {}, "warning"),
    ("laptop", {"laptop": "critical"}, "critical"),
    ("laptop", {"laptop": "ignore"}, "ok"),
    # Desktops and servers stay behind a locked door: by default their encryption is not asked for.
    ("workstation", {}, "ok"),
    ("server", {}, "ok"),
    ("workstation", {"workstation": "warning"}, "warning"),
    ("server", {"server": "critical"}, "critical"),
    # A device whose class is not known yet is judged the strict way.
    (None, {}, "warning"),
])
def test_the_clients_policy_sets_the_verdict_per_device_class(
    device_class: DeviceClass | None, policy: dict[str, str], status: str
) -> None:
    assert verdicts(encryption(), device_class, **policy)["encryption"][0] == status


@pytest.mark.parametrize(("state", "status", "words"), [
    ("encrypted", "ok", "system volume C: is encrypted (BitLocker)"),
    ("encrypting", "ok", "BitLocker is encrypting system volume C:"),
    ("suspended", "warning", "protection is suspended (the key is stored in the clear)"),
    ("decrypting", "warning", "is being decrypted"),
    ("unknown", "unknown", "could not tell whether the system volume is encrypted"),
])
def test_it_tells_the_volume_states_apart(state: VolumeState, status: str, words: str) -> None:
    found_status, summary = verdicts(encryption(state, recovery=True))["encryption"]
    assert found_status == status and words in summary


def test_a_system_volume_the_check_could_not_find_is_unknown_never_fine() -> None:
    signal = encryption(system=False, errors=("/ is not on a block device lsblk lists",))
    status, summary = verdicts(signal)["encryption"]
    assert status == "unknown" and summary.endswith("/ is not on a block device lsblk lists")


def test_an_encrypted_system_volume_without_a_recovery_protector_is_a_warning() -> None:
    assert verdicts(encryption("encrypted", recovery=False))["encryption.recovery"][0] == "warning"
    assert verdicts(encryption("encrypted", recovery=True))["encryption.recovery"][0] == "ok"
    assert verdicts(encryption("encrypted", recovery=False), recovery="ignore")["encryption.recovery"] == (
        "ok", "system volume C: has no recovery protector, which the client's policy allows")
    assert verdicts(encryption("encrypted", recovery=False), recovery="critical")["encryption.recovery"][0] == (
        "critical")
    # Where the mechanism has no such thing (LUKS) or it could not be read, nothing is said.
    assert "encryption.recovery" not in verdicts(encryption("encrypted", recovery=None))
    assert "encryption.recovery" not in verdicts(encryption("not_encrypted", recovery=False))


@pytest.mark.parametrize(("policy", "error"), [
    ({"laptop": "critcal"}, "'critcal' is not one of warning, critical, ignore"),
    ({"desktop": "warning"}, "unknown key 'desktop' (use server, workstation, laptop or recovery)"),
])
def test_a_misspelt_policy_is_refused_when_the_settings_load(policy: dict[str, str], error: str) -> None:
    with pytest.raises(ValueError, match=error.replace("(", r"\(").replace(")", r"\)")):
        Settings(client_rules={"Acme Tooling": {"encryption": policy}})


# Through the real collector, on SQLite and PostgreSQL.

@pytest.fixture
async def client(database: str, clock: Clock, request: pytest.FixtureRequest) -> AsyncIterator[TestClient]:
    policy = getattr(request, "param", {})
    settings = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9,
                        client_rules={"Acme Tooling": {"encryption": policy}} if policy else {})
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


async def report(client: TestClient, agent: SimAgent, *signals: Any) -> Any:
    body = agent.body(agent.envelope(list(signals)))
    return await client.post(REPORTS, data=body, headers=agent.headers(body))


async def encryption_alerts(client: TestClient) -> dict[str, tuple[str, str, str]]:
    body = await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json()
    return {a["rule"]: (a["state"], a["severity"], a["summary"]) for a in body["alerts"]
            if a["rule"].startswith("encryption")}


async def new_device(client: TestClient, clock: Clock, hostname: str, device_class: DeviceClass) -> SimAgent:
    agent = await enrolled(client, hostname)
    beat = heartbeat(hostname, clock.now).model_copy(update={"device_class": device_class})
    assert (await report(client, agent, beat)).status == 200
    return agent


async def test_a_laptop_left_unencrypted_opens_a_warning_that_encryption_resolves(
    client: TestClient, clock: Clock
) -> None:
    agent = await new_device(client, clock, "LAPTOP-03", "laptop")
    assert (await report(client, agent, encryption(at=clock.now))).status == 200
    assert await encryption_alerts(client) == {
        "encryption": ("open", "warning", "LAPTOP-03 (laptop): system volume C: is not encrypted")}

    for _ in range(2):  # two good reports resolve it (the lifecycle's hysteresis)
        clock.advance(hours=6)
        assert (await report(client, agent, encryption("encrypted", recovery=True, at=clock.now))).status == 200
    assert (await encryption_alerts(client))["encryption"][0] == "resolved"


async def test_a_workstation_says_nothing_by_default_until_the_technician_calls_it_a_laptop(
    client: TestClient, clock: Clock
) -> None:
    agent = await new_device(client, clock, "RECEPTION-01", "workstation")
    assert (await report(client, agent, encryption(at=clock.now))).status == 200
    assert await encryption_alerts(client) == {}

    response = await client.put(f"/api/v1/devices/{agent.agent_id}/class", json={"device_class": "laptop"},
                                headers=TECH)
    assert response.status == 200, await response.text()
    clock.advance(hours=6)
    assert (await report(client, agent, encryption(at=clock.now))).status == 200
    assert (await encryption_alerts(client))["encryption"][:2] == ("open", "warning")


@pytest.mark.parametrize("client", [{"laptop": "critical"}], indirect=True)
async def test_a_client_policy_makes_an_unencrypted_laptop_critical(client: TestClient, clock: Clock) -> None:
    agent = await new_device(client, clock, "LAPTOP-04", "laptop")
    assert (await report(client, agent, encryption(at=clock.now))).status == 200
    assert (await encryption_alerts(client))["encryption"][:2] == ("open", "critical")


async def test_a_document_carrying_a_recovery_key_is_refused_and_the_key_kept_nowhere(
    client: TestClient, clock: Clock
) -> None:
    agent = await new_device(client, clock, "LAPTOP-05", "laptop")
    signal = encryption("encrypted", recovery=True, at=clock.now).model_dump(mode="json")
    signal["volumes"][0]["recovery_password"] = KEY
    envelope = agent.envelope()
    envelope["signals"] = [signal]
    body = agent.body(envelope)
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))

    assert response.status == 422
    answer = await response.text()
    assert "recovery_password" in answer and KEY not in answer
    async with store_of(client).transaction() as tx:
        assert await tx.observations(agent.agent_id, "encryption", 10) == [], "nothing of it is stored"
    assert KEY not in json.dumps(await encryption_alerts(client))


async def test_the_value_report_counts_the_laptops_with_an_encrypted_system_disk(
    client: TestClient, clock: Clock
) -> None:
    reported: list[tuple[str, DeviceClass, VolumeState | None]] = [
        ("LAPTOP-01", "laptop", "encrypted"), ("LAPTOP-02", "laptop", "encrypted"),
        ("LAPTOP-03", "laptop", "suspended"), ("LAPTOP-04", "laptop", None),  # never reported encryption
        ("RECEPTION-01", "workstation", "encrypted"),
    ]
    for hostname, device_class, state in reported:
        agent = await new_device(client, clock, hostname, device_class)
        if state is not None:
            assert (await report(client, agent, encryption(state, at=clock.now))).status == 200

    response = await client.get(f"/api/v1/clients/Acme%20Tooling/report?month={clock.now:%Y-%m}", headers=TECH)
    assert response.status == 200, await response.text()
    tiles = dict((label.strip(), value) for value, label in
                 re.findall(r'<div class="tile"><b>([^<]+)</b>([^<]+)</div>', await response.text()))
    assert tiles["laptops with an encrypted system disk"] == "2 of 4"
