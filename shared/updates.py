"""The `updates` signal: which OS updates are available (security and other), and update freshness."""

from __future__ import annotations

from typing import Literal

from shared.base import Int, Signal, Timestamp, WireModel, fact

MAX_ITEMS = 1000


class AvailableUpdate(WireModel):
    """One update the OS offers but has not installed."""

    name: str = fact("Package name, update title or label")
    version: str | None = fact("Version that would be installed", default=None)
    security: bool = fact("The update fixes a security problem, by the update source's own classification")
    origin: str | None = fact(
        "Where it comes from (archive, repository, advisory id, KB number)", default=None
    )
    restart: bool | None = fact(
        "Installing it needs a restart (an available update, not a pending reboot); null where the source does "
        "not say",
        default=None,
    )


class Updates(Signal):
    """Available updates of one update mechanism, and when it last refreshed and installed."""

    kind: Literal["updates"] = "updates"
    manager: str = fact("Update mechanism looked at (apt, dnf, windows-update, softwareupdate)")
    security_count: Int = fact("Available security updates", "count", ge=0)
    other_count: Int = fact("Available updates that are not security updates", "count", ge=0)
    items: list[AvailableUpdate] = fact(
        "The available updates, security first; may be cut at 1000",
        default_factory=list,
        max_length=MAX_ITEMS,
    )
    index_refreshed_at: Timestamp | None = fact(
        "Last successful refresh of the package index or update catalogue; null where the OS does not say",
        "ISO 8601 timestamp",
        default=None,
    )
    last_install_at: Timestamp | None = fact(
        "Last time updates were installed, where the OS records it",
        "ISO 8601 timestamp",
        default=None,
    )
