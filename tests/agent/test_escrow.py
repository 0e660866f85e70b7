"""Recovery-key escrow on the device: off unless the verified site document says on; then BitLocker's recovery
passwords (recorded manage-bde outputs) are sealed to the collector's key, once per protector and round, and
the plaintext never reaches the report or the disk; FileVault and LUKS say why they cannot escrow."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.signing import SigningKey

from agent.checks import CheckContext
from agent.checks.encryption import EncryptionCheck
from agent.checks.encryption.linux import LSBLK
from agent.checks.encryption.windows import SCRIPT, manage_bde, parse_protectors
from agent.commands import powershell
from agent.identity import Identity, save_identity
from agent.site_config import accept
from shared.encryption import Encryption
from shared.escrow import new_private_key, open_sealed, public_of
from shared.reachability import SiteConfig, sign_document
from tests.agent.recorded_runs import FIXTURES, Recorded

NOW = datetime(2026, 11, 20, 2, 40, tzinfo=UTC)
WINDOWS = FIXTURES / "windows"
PASSWORD = "318428-051524-632841-229471-615340-075823-409167-551287"
PROTECTOR = "{4D3E9C2A-6B1F-4E8A-9C7D-2F5B8A1E0C34}"
CONFIG_KEY = Ed25519PrivateKey.generate()
ESCROW_KEY = new_private_key()
LAPTOP = {tuple(powershell(SCRIPT)): ("windows/bitlocker_laptop.json", 0),
          tuple(manage_bde("C:")): ("windows/manage-bde-protectors-recoverypassword.txt", 0)}


def test_it_reads_each_recovery_password_with_its_protector_id() -> None:
    assert parse_protectors((WINDOWS / "manage-bde-protectors-recoverypassword.txt").read_text()) == [
        (PROTECTOR, PASSWORD)]


def test_it_reads_manage_bde_in_another_display_language_with_two_protectors() -> None:
    found = parse_protectors((WINDOWS / "manage-bde-protectors-two-de.txt").read_text())
    assert [protector for protector, _ in found] == ["{8B0E6F14-2C3D-4A5B-9E8F-7A6B5C4D3E2F}",
                                                      "{1F2E3D4C-5B6A-4978-8695-A4B3C2D1E0F9}"]
    assert found[1][1] == "037719-474936-617540-305305-148676-216414-672265-540716"


def test_a_volume_without_a_recovery_password_gives_none() -> None:
    assert parse_protectors((WINDOWS / "manage-bde-protectors-none.txt").read_text()) == []


def enrolled_state(state_dir: Path, escrow: bool, round: int = 1, version: int = 1) -> None:
    """An enrolled agent's state directory with a verified site document (escrow on or off)."""
    identity = Identity("ag_laptop", "http://collector", "Acme Tooling", "Main office", NOW,
                        SigningKey.generate())
    save_identity(state_dir, identity)
    config = SiteConfig(version=version, client="Acme Tooling", site="Main office", issued_at=NOW, escrow=escrow,
                        escrow_key=public_of(ESCROW_KEY) if escrow else None, escrow_round=round)
    accept(state_dir, sign_document(CONFIG_KEY, config), identity)


def files_in(folder: Path) -> list[bytes]:
    """Every file's bytes under `folder`."""
    return [path.read_bytes() for path in folder.rglob("*") if path.is_file()]


async def collect(state_dir: Path, answers: dict[tuple[str, ...], tuple[str, int]],
                  platform: str = "win32") -> tuple[Encryption, Recorded]:
    run = Recorded(answers)
    [signal] = await EncryptionCheck(CheckContext(run=run, clock=lambda: NOW, state_dir=state_dir),
                                     platform=platform).run()
    assert isinstance(signal, Encryption), signal
    return signal, run


async def test_with_escrow_off_no_password_is_read_and_no_escrow_field_is_sent(tmp_path: Path) -> None:
    enrolled_state(tmp_path, escrow=False)
    signal, run = await collect(tmp_path, LAPTOP)

    assert not any(call[0] == "manage-bde.exe" for call in run.calls)
    assert signal.escrow is None and "escrow" not in signal.model_dump_json()


async def test_with_escrow_on_each_password_is_sealed_once_per_round(tmp_path: Path) -> None:
    enrolled_state(tmp_path, escrow=True)
    signal, _ = await collect(tmp_path, LAPTOP)

    assert signal.escrow is not None and signal.escrow.round == 1
    [key] = signal.escrow.keys
    assert (key.volume, key.protector_id) == ("C:", PROTECTOR) and key.sealed is not None
    assert open_sealed(ESCROW_KEY, "ag_laptop", "C:", PROTECTOR, key.sealed) == PASSWORD
    wire = signal.model_dump_json()
    assert PASSWORD not in wire and PASSWORD.replace("-", "") not in wire
    # Nothing of the password lands on disk: only protector ids are kept.
    assert not any(b"051524" in kept for kept in files_in(tmp_path))

    again, _ = await collect(tmp_path, LAPTOP)
    assert again.escrow is not None
    assert [(k.protector_id, k.sealed) for k in again.escrow.keys] == [(PROTECTOR, None)]

    enrolled_state(tmp_path, escrow=True, round=2, version=2)  # a new round (turned on again, or purged)
    third, _ = await collect(tmp_path, LAPTOP)
    assert third.escrow is not None and third.escrow.keys[0].sealed is not None


async def test_a_failing_manage_bde_is_said_in_the_report_without_its_output(tmp_path: Path) -> None:
    enrolled_state(tmp_path, escrow=True)
    answers = {**LAPTOP, tuple(manage_bde("C:")): ("windows/manage-bde-protectors-recoverypassword.txt", 1)}
    signal, _ = await collect(tmp_path, answers)

    assert signal.escrow is not None and signal.escrow.keys == []
    assert signal.escrow.note is not None and "failed (1)" in signal.escrow.note
    assert "051524" not in signal.model_dump_json()


@pytest.mark.parametrize(("platform", "answers", "note"), [
    ("darwin", {("fdesetup", "status"): ("macos/fdesetup_status_on.txt", 0),
                ("fdesetup", "haspersonalrecoverykey"): ("macos/fdesetup_true.txt", 0),
                ("fdesetup", "hasinstitutionalrecoverykey"): ("macos/fdesetup_false.txt", 0)},
     "not escrowable"),
    ("linux", {tuple(LSBLK): ("encryption/lsblk-luks-lvm.json", 0),
               ("cryptsetup", "status"): ("encryption/cryptsetup-status-luks2.txt", 0)},
     "escrow not applicable"),
])
async def test_filevault_and_luks_say_why_they_cannot_escrow(
    tmp_path: Path, platform: str, answers: dict[tuple[str, ...], tuple[str, int]], note: str
) -> None:
    enrolled_state(tmp_path, escrow=True)
    signal, _ = await collect(tmp_path, answers, platform)

    assert signal.escrow is not None and signal.escrow.keys == []
    assert signal.escrow.note is not None and signal.escrow.note.startswith(note)
