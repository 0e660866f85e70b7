"""The encryption check: BitLocker, FileVault and LUKS outputs parsed, the system volume found, no key sent."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.checks import CheckContext
from agent.checks.encryption import EncryptionCheck
from agent.checks.encryption.darwin import parse_status
from agent.checks.encryption.linux import LSBLK, parse_cryptsetup_status, parse_lsblk
from agent.checks.encryption.windows import SCRIPT, parse_volumes
from agent.commands import CommandResult, powershell
from shared.encryption import Encryption
from shared.wire import Envelope, Unknown
from tests.agent.recorded_runs import FIXTURES, Recorded

NOW = datetime(2024, 11, 20, 2, 40, tzinfo=UTC)
WINDOWS = FIXTURES / "windows"
MACOS = FIXTURES / "macos"
LINUX = FIXTURES / "encryption"


def context(run: Recorded) -> CheckContext:
    return CheckContext(run=run, clock=lambda: NOW)


async def collect(platform: str, answers: dict[tuple[str, ...], tuple[str, int]]) -> Encryption | Unknown:
    [signal] = await EncryptionCheck(context(Recorded(answers)), platform=platform).run()
    assert isinstance(signal, Encryption | Unknown)
    return signal


def bitlocker(fixture: str, code: int = 0) -> dict[tuple[str, ...], tuple[str, int]]:
    return {tuple(powershell(SCRIPT)): (f"windows/{fixture}", code)}


def test_it_reads_a_bitlocker_laptop_system_volume_and_a_plain_data_volume() -> None:
    system, data = parse_volumes((WINDOWS / "bitlocker_laptop.json").read_text())

    assert (system.name, system.system, system.state, system.method) == ("C:", True, "encrypted", "XtsAes128")
    assert (system.percent_encrypted, system.recovery_protector) == (100.0, True)
    assert (data.name, data.system, data.state, data.method, data.recovery_protector) == (
        "D:", False, "not_encrypted", None, None)


@pytest.mark.parametrize(("fixture", "state", "recovery"), [
    ("bitlocker_plain.json", "not_encrypted", None),
    # One object, not an array; encrypted but protection off: the key lies in the clear on the disk.
    ("bitlocker_suspended.json", "suspended", False),
    ("bitlocker_encrypting.json", "encrypting", True),
])
def test_it_tells_bitlocker_states_apart(fixture: str, state: str, recovery: bool | None) -> None:
    [volume] = parse_volumes((WINDOWS / fixture).read_text())
    assert (volume.system, volume.state, volume.recovery_protector) == (True, state, recovery)


def test_the_bitlocker_script_selects_protector_types_never_recovery_passwords() -> None:
    assert "$p.KeyProtectorType" in SCRIPT
    assert ".RecoveryPassword" not in SCRIPT and "KeyProtectorId" not in SCRIPT and "Select-Object *" not in SCRIPT


async def test_no_recovery_password_reaches_the_wire_document() -> None:
    # Even if the script's output carried a protector's key, the wire document cannot.
    key = json.loads((WINDOWS / "bitlocker_with_key_fields.json").read_text())[0]["KeyProtector"][0]
    signal = await collect("win32", bitlocker("bitlocker_with_key_fields.json"))
    assert isinstance(signal, Encryption)
    assert signal.volumes[0].recovery_protector is True

    document = Envelope(schema_version=1, agent_id="ag_1", seq=1, boot_id="b", sent_at=NOW,
                        signals=[signal]).model_dump_json()
    digits = key["RecoveryPassword"]
    assert digits not in document and digits.replace("-", "") not in document
    assert key["KeyProtectorId"] not in document
    assert not any(group in document for group in digits.split("-")), "no part of the key either"


async def test_a_windows_without_the_bitlocker_module_is_unknown_not_unencrypted() -> None:
    signal = await collect("win32", bitlocker("bitlocker_plain.json", code=1))
    assert isinstance(signal, Unknown) and signal.check == "encryption"
    assert "failed (1)" in signal.error


@pytest.mark.parametrize(("fixture", "state", "percent"), [
    ("fdesetup_status_on.txt", "encrypted", 100.0),
    ("fdesetup_status_off.txt", "not_encrypted", 0.0),
    ("fdesetup_status_encrypting.txt", "encrypting", 42.5),
    ("fdesetup_status_deferred.txt", "not_encrypted", 0.0),
])
def test_it_reads_fdesetup_status(fixture: str, state: str, percent: float) -> None:
    assert parse_status((MACOS / fixture).read_text()) == (state, percent)


def test_words_fdesetup_never_printed_are_unknown() -> None:
    assert parse_status("Die FileVault-Verschlüsselung ist aktiviert.\n") == ("unknown", None)


async def test_a_filevault_mac_reports_its_startup_volume_and_its_recovery_key() -> None:
    signal = await collect("darwin", {
        ("fdesetup", "status"): ("macos/fdesetup_status_on.txt", 0),
        ("fdesetup", "haspersonalrecoverykey"): ("macos/fdesetup_false.txt", 0),
        ("fdesetup", "hasinstitutionalrecoverykey"): ("macos/fdesetup_true.txt", 0),
    })
    assert isinstance(signal, Encryption) and signal.mechanism == "filevault"
    [volume] = signal.volumes
    assert (volume.system, volume.state, volume.recovery_protector) == (True, "encrypted", True)


async def test_a_mac_whose_recovery_key_cannot_be_asked_says_so() -> None:
    signal = await collect("darwin", {
        ("fdesetup", "status"): ("macos/fdesetup_status_on.txt", 0),
        ("fdesetup", "haspersonalrecoverykey"): ("", 1),
        ("fdesetup", "hasinstitutionalrecoverykey"): ("", 1),
    })
    assert isinstance(signal, Encryption)
    assert signal.volumes[0].recovery_protector is None
    assert len(signal.errors) == 2


def test_it_finds_the_root_inside_luks_and_lvm() -> None:
    found = {volume.mount_point: (volume.name, volume.system, volume.state, crypt)
             for volume, crypt in parse_lsblk((LINUX / "lsblk-luks-lvm.json").read_text())}
    assert found == {
        "/boot/efi": ("nvme0n1p1", False, "not_encrypted", None),
        "/boot": ("nvme0n1p2", False, "not_encrypted", None),
        "/": ("laptop--vg-root", True, "encrypted", "nvme0n1p3_crypt"),
        "/media/usb": ("sda1", False, "not_encrypted", None),
    }, "swap is no volume"


def test_it_reads_the_cipher_of_a_luks_mapping() -> None:
    fields = parse_cryptsetup_status((LINUX / "cryptsetup-status-luks2.txt").read_text())
    assert (fields["type"], fields["cipher"], fields["keysize"]) == ("LUKS2", "aes-xts-plain64", "512 bits")


async def test_a_luks_laptop_reports_its_encrypted_root_with_its_cipher() -> None:
    signal = await collect("linux", {
        tuple(LSBLK): ("encryption/lsblk-luks-lvm.json", 0),
        ("cryptsetup", "status", "nvme0n1p3_crypt"): ("encryption/cryptsetup-status-luks2.txt", 0),
    })
    assert isinstance(signal, Encryption) and signal.errors == []
    root = signal.system_volume()
    assert root is not None and (root.state, root.method) == ("encrypted", "LUKS2 aes-xts-plain64, 512 bits")


async def test_without_cryptsetup_the_root_is_still_known_encrypted() -> None:
    signal = await collect("linux", {tuple(LSBLK): ("encryption/lsblk-luks-lvm.json", 0)})
    assert isinstance(signal, Encryption)
    root = signal.system_volume()
    assert root is not None and (root.state, root.method) == ("encrypted", None)
    assert signal.errors == ["cryptsetup is not installed or not on PATH: encryption method not read"]


async def test_a_root_lsblk_does_not_list_leaves_the_system_volume_unknown() -> None:
    # A container's overlay root, or ZFS: lsblk lists the disks but nothing of them is mounted at /.
    tree = '{"blockdevices": [{"name": "vda", "type": "disk", "mountpoint": "/srv", "fstype": "ext4"}]}'

    def run(argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
        return CommandResult(tuple(argv), 0, tree, "")

    [signal] = await EncryptionCheck(CheckContext(run=run, clock=lambda: NOW), platform="linux").run()
    assert isinstance(signal, Encryption) and signal.system_volume() is None
    assert [v.mount_point for v in signal.volumes] == ["/srv"]
    assert signal.errors[0].startswith("/ is not on a block device lsblk lists")


async def test_a_failing_lsblk_is_unknown() -> None:
    signal = await collect("linux", {tuple(LSBLK): ("", 32)})
    assert isinstance(signal, Unknown) and "lsblk --json failed (32)" in signal.error


async def test_the_real_lsblk_of_this_machine_gives_a_signal() -> None:
    if shutil.which("lsblk") is None:
        pytest.skip("lsblk is not installed")
    [signal] = await EncryptionCheck(CheckContext(clock=lambda: NOW), platform="linux").run()
    assert isinstance(signal, Encryption), signal
    # Either the root was found among the block devices, or the signal says it could not be.
    assert signal.system_volume() is not None or any(error.startswith("/ is not") for error in signal.errors)


def test_the_recorded_lsblk_of_the_build_machine_is_a_plain_disk() -> None:
    [(volume, crypt)] = parse_lsblk((LINUX / "lsblk-vm-plain.json").read_text())
    assert (volume.name, volume.system, volume.state, crypt) == ("vda", True, "not_encrypted", None)


@pytest.fixture
def mounted_loop(tmp_path: Path) -> Iterator[Path]:
    """A real ext4 file system on a loop device, mounted under tmp_path (root only)."""
    if os.geteuid() != 0 or not all(shutil.which(tool) for tool in ("losetup", "mkfs.ext4", "mount")):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with losetup, mkfs.ext4 and mount")
        pytest.skip("needs root, losetup, mkfs.ext4 and mount")
    image, target = tmp_path / "disk.img", tmp_path / "mnt"
    target.mkdir()
    with image.open("wb") as handle:
        handle.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
    loop = subprocess.run(["losetup", "--find", "--show", str(image)], check=True, capture_output=True,
                          text=True).stdout.strip()
    try:
        subprocess.run(["mount", loop, str(target)], check=True)
        try:
            yield target
        finally:
            subprocess.run(["umount", str(target)], check=True)
    finally:
        subprocess.run(["losetup", "--detach", loop], check=True)


async def test_a_real_plain_volume_is_reported_not_encrypted(mounted_loop: Path) -> None:
    [signal] = await EncryptionCheck(CheckContext(clock=lambda: NOW), platform="linux").run()
    assert isinstance(signal, Encryption), signal
    [volume] = [v for v in signal.volumes if v.mount_point == str(mounted_loop)]
    assert volume.name.startswith("loop") and (volume.system, volume.state) == (False, "not_encrypted")
