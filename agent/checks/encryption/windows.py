"""Windows provider: `Get-BitLockerVolume`, reduced inside PowerShell to states and protector types.

The script never selects a key protector's RecoveryPassword or key file. Only with escrow on (the verified
site document) does `manage-bde -protectors -get` read a volume's recovery passwords, which the check seals at
once to the collector's escrow key: the plaintext reaches neither the outbox nor the log.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from agent.checks import CheckContext
from agent.checks.encryption import checked_run
from agent.commands import CommandNotFound, powershell
from shared.encryption import Encryption, Volume, VolumeState

# Enumerations written as their names ("$(...)"): Windows PowerShell 5.1's ConvertTo-Json would write numbers.
SCRIPT = """
$volumes = @(Get-BitLockerVolume -ErrorAction Stop | ForEach-Object {
  @{ MountPoint = $_.MountPoint; VolumeType = "$($_.VolumeType)"; VolumeStatus = "$($_.VolumeStatus)";
     ProtectionStatus = "$($_.ProtectionStatus)"; EncryptionMethod = "$($_.EncryptionMethod)";
     EncryptionPercentage = $_.EncryptionPercentage;
     KeyProtectorTypes = @(foreach ($p in $_.KeyProtector) { "$($p.KeyProtectorType)" }) }
})
ConvertTo-Json -InputObject $volumes -Compress -Depth 3
"""
# BitLockerVolumeStatus names; "Suspended" here is a paused conversion, not suspended protection.
CONVERSION: dict[str, VolumeState] = {
    "FullyEncrypted": "encrypted",
    "FullyEncryptedWipeInProgress": "encrypted",
    "FullyEncryptedWipeSuspended": "encrypted",
    "FullyDecrypted": "not_encrypted",
    "EncryptionInProgress": "encrypting",
    "EncryptionSuspended": "encrypting",
    "DecryptionInProgress": "decrypting",
    "DecryptionSuspended": "decrypting",
}
# A recovery password (48 digits) or a recovery key file (.bek on a USB stick) unlocks the volume when the TPM
# will not; protector types by their KeyProtectorType names.
RECOVERY_PROTECTORS = frozenset({"RecoveryPassword", "ExternalKey"})
# manage-bde's words are translated with Windows; its protector ids ({GUID}) and 48-digit passwords are not.
PROTECTOR_ID = re.compile(r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}")
RECOVERY_PASSWORD = re.compile(r"(?<![\d-])\d{6}(?:-\d{6}){7}(?![\d-])")


def manage_bde(volume: str) -> list[str]:
    """The argv that lists a volume's recovery password protectors with their passwords."""
    return ["manage-bde.exe", "-protectors", "-get", volume, "-Type", "RecoveryPassword"]


def parse_protectors(stdout: str) -> list[tuple[str, str]]:
    """(protector id, recovery password) pairs from `manage-bde -protectors -get V: -Type RecoveryPassword`:
    each password belongs to the id printed before it (whatever the display language)."""
    found: list[tuple[str, str]] = []
    protector: str | None = None
    for line in stdout.splitlines():
        if (ids := PROTECTOR_ID.search(line)) is not None:
            protector = ids[0].upper()
        elif (password := RECOVERY_PASSWORD.search(line)) is not None and protector is not None:
            found.append((protector, password[0]))
            protector = None
    return found


def volume_state(volume: dict[str, Any]) -> VolumeState:
    """The state of one volume: an encrypted volume whose protection is off has its key in the clear."""
    state = CONVERSION.get(str(volume.get("VolumeStatus")), "unknown")
    if state == "encrypted" and volume.get("ProtectionStatus") == "Off":
        return "suspended"
    return state


def parse_volumes(stdout: str) -> list[Volume]:
    """The volumes from SCRIPT's JSON (one object or an array); only states and protector types are read."""
    answer = json.loads(stdout or "[]")
    volumes = []
    for volume in answer if isinstance(answer, list) else [answer]:
        method = str(volume.get("EncryptionMethod") or "")
        types = {str(kind) for kind in volume.get("KeyProtectorTypes") or []}
        state = volume_state(volume)
        percent = volume.get("EncryptionPercentage")
        volumes.append(Volume(
            name=str(volume.get("MountPoint") or "?"),
            mount_point=volume.get("MountPoint") or None,
            system=volume.get("VolumeType") == "OperatingSystem",
            state=state,
            method=method if method not in ("", "None") else None,
            percent_encrypted=float(percent) if isinstance(percent, int | float) else None,
            recovery_protector=bool(types & RECOVERY_PROTECTORS) if state != "not_encrypted" else None,
        ))
    return volumes


class BitLockerProvider:
    """BitLocker state of every volume Windows knows."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def collect(self, now: datetime) -> Encryption:
        """Run the script; a missing BitLocker module (Windows Home) fails, and the check reports unknown."""
        result = checked_run(self.context.run, powershell(SCRIPT), timeout=90.0)
        return Encryption(collected_at=now, mechanism="bitlocker", volumes=parse_volumes(result.stdout))

    def recovery_passwords(self, volume: str) -> list[tuple[str, str]]:
        """The volume's recovery password protectors (id, password), for sealing; RuntimeError saying why not
        (never with the tool's output, which may hold a password)."""
        try:
            result = self.context.run(manage_bde(volume), timeout=60.0)
        except CommandNotFound as exc:
            raise RuntimeError(f"{exc}: recovery password not escrowed") from exc
        if result.returncode != 0:
            raise RuntimeError(f"manage-bde -protectors -get {volume} failed ({result.returncode}): recovery "
                               "password not escrowed")
        found = parse_protectors(result.stdout)
        if not found:
            raise RuntimeError(f"manage-bde listed no recovery password for {volume}: not escrowed")
        return found
