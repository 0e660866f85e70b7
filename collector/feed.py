"""The live feed: events are stored with the change that caused them, then subscribers are woken.

Subscribers read from the store (on its read-only view, so a poll never queues behind ingest), not
from memory, so a client that reconnects with `Last-Event-ID` gets exactly what it missed. The store
wakes the feed after each commit that added events; events written by another collector process on
the same database arrive by LISTEN/NOTIFY on PostgreSQL, or by polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from collector.store import FeedEvent, Store

POLL_SECONDS = 2.0
BATCH = 500


class Feed:
    """Wakes subscribers when new feed events were committed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiters: set[asyncio.Event] = set()

    def notify(self) -> None:
        """Tell subscribers that new events were committed."""
        for waiter in self._waiters:
            waiter.set()

    async def latest_id(self) -> int:
        """The id of the newest event (0 when the feed is empty)."""
        async with self._store.read() as tx:
            return await tx.feed_last_id()

    async def follow(self, after_id: int, poll_seconds: float = POLL_SECONDS) -> AsyncIterator[FeedEvent | None]:
        """Events after `after_id`, forever; yields None when nothing happened for `poll_seconds`."""
        woken = asyncio.Event()
        self._waiters.add(woken)
        try:
            while True:
                # Cleared before reading, so a notify that lands during the read is not lost.
                woken.clear()
                async with self._store.read() as tx:
                    events = await tx.feed_since(after_id, BATCH)
                for event in events:
                    after_id = event.event_id
                    yield event
                if len(events) == BATCH:
                    continue
                try:
                    await asyncio.wait_for(woken.wait(), poll_seconds)
                except TimeoutError:
                    yield None
        finally:
            self._waiters.discard(woken)
