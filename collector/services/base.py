"""What every service holds: the store and the clock (the store wakes the live feed after a commit)."""

from __future__ import annotations

from typing import Any

from collector.store import Store, Tx
from shared.clock import Clock


class Service:
    """A domain's operations over one store and one clock."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    async def publish(self, tx: Tx, type: str, data: dict[str, Any]) -> None:
        """Add a change to the live feed, in the change's own transaction."""
        await tx.append_feed(self.clock(), type, data)
