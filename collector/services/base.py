"""What every service holds: the store, the clock, and how to wake the live feed after a commit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from collector.store import Store, Tx
from shared.clock import Clock


def nobody() -> None:
    """No feed to wake (the admin CLI: a running collector reads the events from the database)."""


class Service:
    """A domain's operations over one store and one clock."""

    def __init__(self, store: Store, clock: Clock, wake: Callable[[], None] = nobody) -> None:
        self.store = store
        self.clock = clock
        # Called once after each committed change that appended feed events.
        self.wake = wake

    async def publish(self, tx: Tx, type: str, data: dict[str, Any]) -> None:
        """Add a change to the live feed, in the change's own transaction."""
        await tx.append_feed(self.clock(), type, data)
