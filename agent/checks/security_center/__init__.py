"""The security_center check: antivirus products and detections, firewalls and OS protections, per platform."""

from __future__ import annotations

from typing import ClassVar, Protocol, cast

from agent.checks import CheckContext, ProviderCheck, platform_provider
from agent.commands import CommandResult
from shared.base import Signal
from shared.security_center import SecurityCenter

# Each tool gets this long; the check's budget covers all of them.
TOOL_TIMEOUT = 60.0


class Provider(Protocol):
    """One platform's way of reading the security state."""

    def collect(self) -> SecurityCenter: ...


def said(result: CommandResult) -> str:
    """What a command printed, stdout then stderr, on one line, for a technician."""
    return " ".join(f"{result.stdout.strip()} {result.stderr.strip()}".split())[:500]


def provider_for(platform: str, context: CheckContext) -> Provider:
    """The provider for `platform` (a sys.platform value)."""
    names = {"windows": "WindowsProvider", "darwin": "DarwinProvider", "linux": "LinuxProvider"}
    return cast(Provider, platform_provider(__name__, names, platform, context))


class SecurityCenterCheck(ProviderCheck[Provider]):
    """Reports antivirus state and detections, firewalls and OS protections."""

    provider_for = staticmethod(provider_for)
    kind: ClassVar[str] = "security_center"
    timeout: ClassVar[float] = 240.0
    # Every 15 minutes: a burst of detections on a site is judged within the hour.
    default_interval: ClassVar[float] = 900.0


    def collect(self) -> list[Signal]:
        """One security_center signal."""
        return [self.provider.collect()]
