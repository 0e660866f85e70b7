"""The `encryption` signal: which volumes are encrypted, which one holds the OS, and whether a recovery
protector exists (never the recovery key itself)."""

from __future__ import annotations

from typing import Literal

from shared.base import Signal, WireModel, fact

MAX_VOLUMES = 64
Mechanism = Literal["bitlocker", "filevault", "luks"]
# encrypted: fully encrypted and protected; encrypting/decrypting: a conversion under way; suspended: encrypted
# but the key is stored in the clear (BitLocker protection off), so it protects nothing; not_encrypted: plain;
# unknown: the tool could not say.
VolumeState = Literal["encrypted", "encrypting", "decrypting", "suspended", "not_encrypted", "unknown"]


class Volume(WireModel):
    """One volume and its encryption state."""

    name: str = fact("Volume as the OS names it (C:, /dev/nvme0n1p3, the FileVault system volume)",
                     max_length=256)
    mount_point: str | None = fact("Where it is mounted (C:, /); null when not mounted", default=None,
                                   max_length=1024)
    system: bool = fact("It holds the running operating system (the volume a stolen laptop gives away first)")
    state: VolumeState = fact("encrypted, encrypting, decrypting, suspended (key in the clear), not_encrypted "
                              "or unknown")
    method: str | None = fact("Encryption method or cipher (XtsAes256, aes-xts-plain64); null when plain or "
                              "not told", default=None, max_length=128)
    percent_encrypted: float | None = fact("How much of the volume is encrypted; null where the tool does not say",
                                           "percent", default=None, ge=0, le=100)
    recovery_protector: bool | None = fact(
        "A recovery password or recovery key exists for it (whether it exists, never its value); null where "
        "the mechanism has none or it could not be read", default=None,
    )


class Encryption(Signal):
    """The device's disk encryption: its volumes, which one is the system volume, and what could not be read."""

    kind: Literal["encryption"] = "encryption"
    mechanism: Mechanism = fact("What was asked: bitlocker (Windows), filevault (macOS) or luks (Linux)")
    volumes: list[Volume] = fact("The volumes looked at, the system volume among them when it was found",
                                 default_factory=list, max_length=MAX_VOLUMES)
    errors: list[str] = fact("What could not be read beside what was (e.g. cryptsetup not installed)",
                             default_factory=list, max_length=16)

    def system_volume(self) -> Volume | None:
        """The volume holding the OS, or None when the check could not tell which it is."""
        return next((volume for volume in self.volumes if volume.system), None)
