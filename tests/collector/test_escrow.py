"""Recovery-key escrow end to end on the real collector (SQLite and PostgreSQL): a technician turns it on per
client, agents learn it from the signed site document only, a real encryption check on recorded BitLocker
outputs seals the password, the real outbox and uploader send it, the collector keeps it sealed, and a
technician's reveal opens it and is recorded; off sends no key field at all; a purge is explicit."""

from __future__ import annotations

import stat
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.checks import CheckContext
from agent.checks.encryption import EncryptionCheck
from agent.checks.encryption.windows import SCRIPT, manage_bde
from agent.commands import powershell
from agent.identity import Identity, save_identity
from agent.outbox import OUTBOX_FILE, Outbox
from agent.site_config import accept
from agent.uploader import Uploader
from collector import keys
from collector.api.wiring import escrow_key_path
from collector.app import create_app
from collector.rules import History
from collector.rules.encryption import evaluate
from collector.services.escrow import EscrowKey
from collector.settings import Settings
from shared.encryption import Encryption, Volume
from shared.escrow import Escrow, EscrowedKey, public_of, seal
from shared.signing import sign_headers
from technician.alerts import feed_line
from tests.agent.recorded_runs import Recorded
from tests.support.agents import SimAgent
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled

PASSWORD = "318428-051524-632841-229471-615340-075823-409167-551287"
PROTECTOR = "{4D3E9C2A-6B1F-4E8A-9C7D-2F5B8A1E0C34}"
ESCROW = "/api/v1/clients/Acme Tooling/escrow"
LAPTOP = {tuple(powershell(SCRIPT)): ("windows/bitlocker_laptop.json", 0),
          tuple(manage_bde("C:")): ("windows/manage-bde-protectors-recoverypassword.txt", 0)}


@pytest.fixture
async def client(database: str, clock: Clock, tmp_path: Path) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9,
                        escrow_key_file=tmp_path / "escrow-key")
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


class Laptop:
    """A real agent's parts on a temporary state directory: identity, site document, check, outbox, uploader."""

    def __init__(self, client: TestClient, agent: SimAgent, state_dir: Path, clock: Clock) -> None:
        self.client, self.agent, self.state_dir, self.clock = client, agent, state_dir, clock
        self.identity = Identity(agent.agent_id, str(client.make_url("")), "Acme Tooling", "Main office",
                                 clock.now, agent.key)
        save_identity(state_dir, self.identity)
        self.outbox = Outbox(state_dir / OUTBOX_FILE, agent.agent_id, "boot-1")
        self.run = Recorded(LAPTOP)

    async def fetch_document(self) -> bytes:
        """The site document as the agent fetches it, verified and kept (in `document`)."""
        path = "/api/v1/site-config"
        headers = sign_headers(self.agent.key, self.agent.agent_id, "GET", path, b"", int(self.clock().timestamp()))
        response = await self.client.get(path, headers=headers)
        assert response.status == 200, await response.text()
        body = await response.read()
        self.document = accept(self.state_dir, body, self.identity)
        return body

    async def check_and_send(self) -> bytes:
        """One encryption check into the outbox, then one upload; returns the envelopes exactly as sent."""
        self.clock.advance(hours=6)
        context = CheckContext(run=self.run, clock=self.clock, state_dir=self.state_dir)
        signals = await EncryptionCheck(context, platform="win32").run()
        self.outbox.put(signals, now=self.clock())
        wire = "".join(envelope for _, envelope in self.outbox.pending(1 << 20)).encode()
        uploader = Uploader(self.outbox, self.identity, self.identity.collector_url, clock=self.clock)
        await uploader.upload_once()
        await uploader.close()
        assert self.outbox.pending(1 << 20) == [], "the collector took the report"
        return wire


async def test_escrow_off_sends_nothing_on_seals_reveal_opens_and_purge_forgets(
    client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    laptop = Laptop(client, await enrolled(client, "LAPTOP-7"), tmp_path / "agent", clock)
    assert (await (await client.get(ESCROW, headers=TECH)).json()) == {
        "enabled": False, "changed_at": None, "changed_by": None}

    # Off (the default): the document names no escrow, the check reads no password, the wire has no key field.
    off_document = await laptop.fetch_document()
    assert b"escrow" not in off_document
    off_version = laptop.document.version
    wire = await laptop.check_and_send()
    assert b"escrow" not in wire and b"sealed" not in wire and b"051524" not in wire
    assert not any(call[0] == "manage-bde.exe" for call in laptop.run.calls)

    # On: recorded (who, when), the site document grows a version and carries the escrow key.
    turned = await client.put(ESCROW, json={"enabled": True}, headers=TECH)
    assert turned.status == 200, await turned.text()
    assert (await turned.json())["enabled"] is True and (await turned.json())["changed_by"] == "API token"
    on_document = await laptop.fetch_document()
    assert laptop.document.version > off_version, "agents see the change as a newer document"
    assert b'\\"escrow\\":true' in on_document and b"escrow_key" in on_document
    wire = await laptop.check_and_send()
    assert b'"sealed":{' in wire and b"051524" not in wire and PASSWORD.replace("-", "").encode() not in wire
    outbox_bytes = (tmp_path / "agent" / OUTBOX_FILE).read_bytes()
    assert b"051524" not in outbox_bytes

    device = f"/api/v1/devices/{laptop.agent.agent_id}/escrow"
    [kept] = (await (await client.get(device, headers=TECH)).json())["keys"]
    assert (kept["volume"], kept["protector_id"]) == ("C:", PROTECTOR) and "recovery_password" not in kept
    # The report kept with the device's observations names the protector, never the sealed key.
    async with client.app[keys.STORE].read() as tx:
        stored = [row.payload for row in await tx.observations(laptop.agent.agent_id, "encryption", 10)]
    assert "sealed" not in str(stored) and PROTECTOR in str(stored)

    revealed = await client.post(device + "/reveal", json={"volume": "c:"}, headers=TECH)
    assert revealed.status == 200, await revealed.text()
    assert [k["recovery_password"] for k in (await revealed.json())["keys"]] == [PASSWORD]
    assert revealed.headers["Cache-Control"] == "no-store"
    audit = (await (await client.get("/api/v1/audit", headers=TECH)).json())["entries"]
    [entry] = [e for e in audit if e["action"].endswith("/escrow/reveal")]
    assert entry["actor"] == "API token" and entry["detail"] == {"volume": "c:"}
    async with client.app[keys.STORE].read() as tx:
        feed = await tx.recent_feed("escrow.revealed", clock.now - timedelta(days=1), 10)
    assert [(e.data["agent_id"], e.data["volume"], e.data["by"]) for e in feed] == [
        (laptop.agent.agent_id, "C:", "API token")]
    line = feed_line("escrow.revealed", {"at": feed[0].at.isoformat(), **feed[0].data})
    assert "Acme Tooling / Main office / LAPTOP-7: recovery key of C: revealed to API token" in line

    # Six hours later the same protector is not sent again.
    wire = await laptop.check_and_send()
    assert b'"sealed":{' not in wire and PROTECTOR.encode() in wire

    # Off deletes nothing; the purge does, and says how many.
    assert (await client.put(ESCROW, json={"enabled": False}, headers=TECH)).status == 200
    assert b"escrow" not in await laptop.fetch_document()
    assert len((await (await client.get(device, headers=TECH)).json())["keys"]) == 1
    purged = await client.post(ESCROW + "/purge", headers=TECH)
    assert (await purged.json()) == {"deleted": 1}
    gone = await client.post(device + "/reveal", json={"volume": "C:"}, headers=TECH)
    assert gone.status == 404 and "no recovery key escrowed" in (await gone.json())["error"]


async def test_the_escrow_key_is_an_owner_only_file_apart_from_the_database(
    client: TestClient, tmp_path: Path, backend: str
) -> None:
    await enrolled(client, "LAPTOP-7")
    assert not (tmp_path / "escrow-key").exists(), "made when escrow is first turned on, not before"
    assert (await client.put(ESCROW, json={"enabled": True}, headers=TECH)).status == 200
    key_file = tmp_path / "escrow-key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    private = key_file.read_text().strip()
    if backend == "sqlite":
        database = Path(client.app[keys.SETTINGS].db)
        assert private.encode() not in b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
    # Turning it on again keeps the key (sealed keys stay openable).
    assert (await client.put(ESCROW, json={"enabled": True}, headers=TECH)).status == 200
    assert key_file.read_text().strip() == private


async def test_escrow_on_postgresql_without_a_key_file_is_refused_with_what_to_set(
    database: str, clock: Clock, backend: str
) -> None:
    settings = Settings(db=database, admin_token="tech-secret")
    async with TestClient(TestServer(create_app(settings, clock=clock))) as client:
        await enrolled(client, "LAPTOP-7")
        response = await client.put(ESCROW, json={"enabled": True}, headers=TECH)
        said = await response.json()
    if backend == "sqlite":
        assert response.status == 200  # the key goes next to the database file
    else:
        assert response.status == 409 and "collector.escrow_key_file" in said["error"]


async def test_escrow_of_an_unknown_client_is_not_found(client: TestClient) -> None:
    response = await client.put("/api/v1/clients/Nobody/escrow", json={"enabled": True}, headers=TECH)
    assert response.status == 404
    refused = await client.put(ESCROW, json={"enabled": "maybe"}, headers=TECH)
    assert refused.status == 422


def escrow_verdicts(escrow: Escrow | None, mechanism: str = "bitlocker",
                    device_class: str | None = "laptop") -> list[tuple[str, str]]:
    volume = Volume(name="C:", mount_point="C:", system=True, state="encrypted", recovery_protector=True)
    signal = Encryption(collected_at=Clock().now, mechanism=mechanism, volumes=[volume],  # type: ignore[arg-type]
                        escrow=escrow)
    history = History(now=signal.collected_at, hostname="LAPTOP-7", device_class=device_class)  # type: ignore[arg-type]
    return [(v.status, v.summary) for v in evaluate(signal, history) if v.rule == "encryption.escrow"]


def test_a_laptop_whose_key_was_not_escrowed_is_a_warning_never_silent() -> None:
    [(status, summary)] = escrow_verdicts(Escrow(round=1, note="manage-bde -protectors -get C: failed (1)"))
    assert status == "warning" and "escrow is on but the recovery key of system volume C:" in summary
    assert "failed (1)" in summary
    [(status, _)] = escrow_verdicts(Escrow(round=1, keys=[EscrowedKey(volume="C:", protector_id=PROTECTOR)]))
    assert status == "ok"


def test_escrow_off_a_desktop_or_luks_raise_no_escrow_alert() -> None:
    assert escrow_verdicts(None) == []
    assert escrow_verdicts(Escrow(round=1), device_class="workstation") == []
    [(status, summary)] = escrow_verdicts(Escrow(round=1, note="escrow not applicable: LUKS has no recovery "
                                                 "password (keyslots only)"), mechanism="luks")
    assert status == "ok" and "not applicable" in summary


async def test_a_sealed_key_replayed_onto_another_device_does_not_open(client: TestClient, clock: Clock) -> None:
    laptop, other = await enrolled(client, "LAPTOP-7"), await enrolled(client, "LAPTOP-8")
    assert (await client.put(ESCROW, json={"enabled": True}, headers=TECH)).status == 200
    key = EscrowKey(escrow_key_path(client.app[keys.SETTINGS]))
    sealed = seal(public_of(key.private()), laptop.agent_id, "C:", PROTECTOR, PASSWORD)
    async with client.app[keys.STORE].transaction() as tx:
        await tx.save_escrowed_keys(other.agent_id, [("C:", PROTECTOR, sealed.model_dump_json())], clock.now)

    response = await client.post(f"/api/v1/devices/{other.agent_id}/escrow/reveal", json={"volume": "C:"},
                                 headers=TECH)
    said = await response.json()
    assert response.status == 409 and "sealed for another device" in said["error"] and PASSWORD not in str(said)


async def test_a_purge_while_escrow_is_on_asks_the_devices_for_their_keys_again(
    client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    laptop = Laptop(client, await enrolled(client, "LAPTOP-7"), tmp_path / "agent", clock)
    turned = await (await client.put(ESCROW, json={"enabled": True}, headers=TECH)).json()
    await laptop.fetch_document()
    await laptop.check_and_send()
    round_before = laptop.document.escrow_round

    assert (await (await client.post(ESCROW + "/purge", headers=TECH)).json()) == {"deleted": 1}
    await laptop.fetch_document()
    assert laptop.document.escrow_round == round_before + 1
    wire = await laptop.check_and_send()
    assert b'"sealed":{' in wire, "sent again for the new round"
    device = f"/api/v1/devices/{laptop.agent.agent_id}/escrow"
    assert len((await (await client.get(device, headers=TECH)).json())["keys"]) == 1
    assert (await (await client.get(ESCROW, headers=TECH)).json()) == turned, "who turned it on stays"
