"""The updates check: available OS updates, security and other, and when the index last refreshed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import ClassVar, Protocol

from agent.checks import CheckContext, ProviderCheck
from agent.checks.rootfs import below
from shared.base import Signal
from shared.updates import MAX_ITEMS, AvailableUpdate, Updates


class Provider(Protocol):
    """One update mechanism's way of listing available updates."""

    def collect(self, now: datetime) -> Updates: ...


def updates_signal(
    manager: str,
    now: datetime,
    items: Iterable[AvailableUpdate],
    index_refreshed_at: datetime | None,
    last_install_at: datetime | None,
) -> Updates:
    """The wire signal: counts over all items, the list security first and cut to the wire's limit."""
    ordered = sorted(items, key=lambda item: (not item.security, item.name))
    security = sum(item.security for item in ordered)
    return Updates(
        collected_at=now,
        manager=manager,
        security_count=security,
        other_count=len(ordered) - security,
        items=ordered[:MAX_ITEMS],
        index_refreshed_at=index_refreshed_at,
        last_install_at=last_install_at,
    )


class NoUpdateMechanism:
    """A Linux host without a supported package manager: the check reports unknown, never 'no updates'."""

    def collect(self, now: datetime) -> Updates:
        """Always fails with what was looked for."""
        raise RuntimeError("no supported package manager found (looked for apt-get and dnf)")


def provider_for(platform: str, context: CheckContext) -> Provider:
    """The provider for `platform` (a sys.platform value); on Linux, by the package manager installed."""
    if platform == "win32":
        from agent.checks.updates.windows import WindowsUpdateProvider

        return WindowsUpdateProvider(context)
    if platform == "darwin":
        from agent.checks.updates.darwin import SoftwareUpdateProvider

        return SoftwareUpdateProvider(context)
    if below(context.root, "/usr/bin/apt-get").exists():
        from agent.checks.updates.apt import AptProvider

        return AptProvider(context)
    if below(context.root, "/usr/bin/dnf").exists():
        from agent.checks.updates.dnf import DnfProvider

        return DnfProvider(context)
    return NoUpdateMechanism()


class UpdatesCheck(ProviderCheck[Provider]):
    """Reports available updates (security and other), the last index refresh and the last install."""

    provider_for = staticmethod(provider_for)
    kind: ClassVar[str] = "updates"
    # A Windows Update search or a dnf metadata refresh can take minutes.
    timeout: ClassVar[float] = 900.0
    default_interval: ClassVar[float] = 6 * 3600.0


    def collect(self) -> list[Signal]:
        """One updates signal."""
        return [self.provider.collect(self.context.clock())]
