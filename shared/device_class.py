"""Device classes (server, workstation, laptop): what the agent reports, and how it tells them apart."""

from __future__ import annotations

from typing import Literal, get_args

DeviceClass = Literal["server", "workstation", "laptop"]
DEVICE_CLASSES: tuple[str, ...] = get_args(DeviceClass)


def classify(os_name: str, os_version: str, has_battery: bool, has_desktop: bool = True) -> DeviceClass:
    """The device's class from what its agent sees: a server OS (Windows Server, or a Linux with no desktop)
    is a server, a machine with a battery a laptop, anything else a workstation."""
    if "server" in os_version.lower() or (os_name == "Linux" and not has_desktop):
        return "server"
    return "laptop" if has_battery else "workstation"
