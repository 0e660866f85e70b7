"""The `encryption` signal: which volumes are encrypted, which one holds the OS, and whether a recovery
protector exists; the recovery passwords only when the client turned escrow on, and then only sealed to the
collector's escrow key."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import SerializerFunctionWrapHandler, model_serializer

from shared.base import Signal, WireModel, fact
from shared.escrow import Escrow

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
    escrow: Escrow | None = fact("Recovery passwords sealed to the collector's escrow key; absent unless the "
                                 "client turned escrow on", default=None)

    @model_serializer(mode="wrap")
    def _no_escrow_field_when_off(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without escrow the report carries no escrow field at all (and an older collector accepts it)."""
        data: dict[str, Any] = handler(self)
        if self.escrow is None:
            data.pop("escrow", None)
        return data

    def stored_json(self) -> str:
        """The signal as kept with the device's reports: which keys were escrowed, never the sealed keys (they
        are kept apart, where a purge removes them)."""
        return self.model_dump_json(exclude={"escrow": {"keys": {"__all__": {"sealed"}}}})

    def system_volume(self) -> Volume | None:
        """The volume holding the OS, or None when the check could not tell which it is."""
        return next((volume for volume in self.volumes if volume.system), None)
