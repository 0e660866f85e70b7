"""Linux provider: the block device tree from `lsblk --json`, and each dm-crypt mapping's `cryptsetup status`.

A mounted volume is encrypted when a `crypt` device lies between it and its disk (LUKS or plain dm-crypt,
with LVM or not in between); the system volume is the one mounted at `/`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from agent.checks import CheckContext
from agent.checks.encryption import checked_run
from agent.commands import CommandNotFound
from shared.encryption import Encryption, Volume

LSBLK = ["lsblk", "--json", "-o", "NAME,TYPE,MOUNTPOINT,FSTYPE"]
FIELD = re.compile(r"^\s*(type|cipher|keysize|mode):\s*(.+?)\s*$", re.MULTILINE)
NOT_VOLUMES = frozenset({"[SWAP]", ""})


def mounted(devices: list[dict[str, Any]], above: tuple[dict[str, Any], ...] = ()) -> Iterator[
        tuple[dict[str, Any], tuple[dict[str, Any], ...]]]:
    """Each mounted device with the devices it sits on (its disk first)."""
    for device in devices:
        if (device.get("mountpoint") or "") not in NOT_VOLUMES:
            yield device, above
        yield from mounted(device.get("children") or [], (*above, device))


def parse_lsblk(stdout: str) -> list[tuple[Volume, str | None]]:
    """Mounted volumes from `lsblk --json`, each with the name of the crypt device it sits on (None: plain)."""
    volumes = []
    for device, above in mounted(json.loads(stdout).get("blockdevices") or []):
        crypt = next((d["name"] for d in reversed((*above, device)) if d.get("type") == "crypt"), None)
        mount_point = device["mountpoint"]
        volumes.append((Volume(name=device["name"], mount_point=mount_point, system=mount_point == "/",
                               state="encrypted" if crypt else "not_encrypted"), crypt))
    return volumes


def parse_cryptsetup_status(stdout: str) -> dict[str, str]:
    """type, cipher, keysize and mode of an active mapping from `cryptsetup status`."""
    return dict(FIELD.findall(stdout))


def describe(fields: dict[str, str]) -> str | None:
    """A method in one phrase: `LUKS2 aes-xts-plain64, 512 bits`."""
    parts = " ".join(part for part in (fields.get("type"), fields.get("cipher")) if part)
    return ", ".join(part for part in (parts, fields.get("keysize")) if part) or None


class LuksProvider:
    """dm-crypt/LUKS state of the mounted volumes."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def method(self, crypt: str, errors: list[str]) -> str | None:
        """The cipher of one crypt mapping, or None with the reason in `errors` (it stays encrypted)."""
        try:
            result = self.context.run(["cryptsetup", "status", crypt], timeout=30.0)
        except CommandNotFound as exc:
            errors.append(f"{exc}: encryption method not read")
            return None
        if result.returncode != 0:
            errors.append(f"cryptsetup status {crypt} failed ({result.returncode}): {result.stderr.strip()[:200]}")
            return None
        return describe(parse_cryptsetup_status(result.stdout))

    def collect(self, now: datetime) -> Encryption:
        """Read the device tree; a root that lsblk does not list is named in `errors` (no system volume)."""
        found = parse_lsblk(checked_run(self.context.run, LSBLK, timeout=30.0).stdout)
        errors: list[str] = []
        methods: dict[str, str | None] = {}
        volumes = []
        for volume, crypt in found:
            if crypt is not None:
                if crypt not in methods:
                    methods[crypt] = self.method(crypt, errors)
                volume = volume.model_copy(update={"method": methods[crypt]})
            volumes.append(volume)
        if not any(volume.system for volume in volumes):
            errors.append("/ is not on a block device lsblk lists (a container, ZFS or a network root): "
                          "its encryption is unknown")
        return Encryption(collected_at=now, mechanism="luks", volumes=volumes, errors=errors)
