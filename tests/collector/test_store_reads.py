"""Reads on the store's read-only view do not wait for the writer, and a commit with feed events wakes the feed."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from collector.feed import Feed
from collector.store import Store

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


async def test_a_read_completes_while_a_write_transaction_is_held_open(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.append_feed(T0, "committed", {})
    async with store.transaction() as writer:
        await writer.append_feed(T0, "uncommitted", {})
        await writer.set_meta("held", "yes")

        async def look() -> tuple[int, str | None]:
            async with store.read() as reader:
                return await reader.feed_last_id(), await reader.get_meta("held")

        # The writer holds its transaction (and on SQLite the write lock) all through this read.
        last_id, held = await asyncio.wait_for(look(), timeout=5)
    assert (last_id, held) == (1, None)
    async with store.read() as reader:
        assert await reader.get_meta("held") == "yes"


async def test_the_read_view_refuses_writes(store: Store) -> None:
    with pytest.raises(Exception, match=r"(?i)read.?only"):
        async with store.read() as reader:
            await reader.set_meta("key", "value")
    async with store.read() as reader:
        assert await reader.get_meta("key") is None


async def test_a_committed_feed_event_wakes_a_waiting_feed_client_without_a_manual_notify(store: Store) -> None:
    feed = Feed(store)
    store.on_feed_events(feed.notify)
    # Polling alone would take far longer than the test waits.
    events = feed.follow(0, poll_seconds=60)
    first = asyncio.ensure_future(anext(events))
    await asyncio.sleep(0.2)
    assert not first.done()
    async with store.transaction() as tx:
        await tx.append_feed(T0, "alert_opened", {"client": "Acme Tooling"})
    try:
        event = await asyncio.wait_for(first, timeout=5)
    finally:
        await events.aclose()
    assert event is not None
    assert (event.event_id, event.type) == (1, "alert_opened")


async def test_a_commit_without_feed_events_and_a_rolled_back_one_wake_nobody(store: Store) -> None:
    woken: list[str] = []
    store.on_feed_events(lambda: woken.append("woken"))
    async with store.transaction() as tx:
        await tx.set_meta("key", "value")
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.append_feed(T0, "alert_opened", {})
            raise RuntimeError("changed my mind")
    assert woken == []
    async with store.transaction() as tx:
        await tx.append_feed(T0, "alert_opened", {})
    assert woken == ["woken"]



async def test_a_read_or_write_cancelled_at_any_step_leaves_the_store_usable(store: Store) -> None:
    # A feed client that closes its stream cancels the handler wherever it stands: even mid-BEGIN,
    # with the statement already running on the database thread. Where that lands varies, so try many.
    async def read() -> None:
        async with store.read() as reader:
            await reader.feed_last_id()
            await reader.get_meta("key")

    async def write() -> None:
        async with store.transaction() as tx:
            await tx.set_meta("key", "cancelled")
            await tx.append_feed(T0, "cancelled", {})

    for steps in range(40):
        for work in (read, write):
            task = asyncio.ensure_future(work())
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            async with store.transaction() as tx:
                await tx.set_meta("after", f"{work.__name__} {steps}")
            async with store.read() as reader:
                assert await reader.get_meta("after") == f"{work.__name__} {steps}"
