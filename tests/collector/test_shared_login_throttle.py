"""The login throttle keeps its count in the database, on either backend: what one collector process counted,
another refuses, and a day later it is forgotten."""

from __future__ import annotations

from collector.store import Store
from collector.web.throttle import FORGET_AFTER, FREE_PER_ACCOUNT, LoginThrottle
from tests.support.clock import Clock


async def test_failures_one_process_counts_lock_the_account_for_another(store: Store) -> None:
    clock = Clock()
    counting, other = LoginThrottle(store), LoginThrottle(store)
    for _ in range(FREE_PER_ACCOUNT + 1):
        assert await other.lock("Anna", "192.0.2.7", clock()) is None
        await counting.failed("anna", "192.0.2.7", clock())
    lock = await other.lock(" ANNA", "198.51.100.1", clock())
    assert lock is not None and lock.subject == "for this account" and (lock.until - clock()).total_seconds() == 2
    await other.succeeded("anna")
    assert await counting.lock("anna", "192.0.2.7", clock()) is None, "the address's failures are still free"

    for _ in range(FREE_PER_ACCOUNT + 1):
        await counting.failed("ben", "192.0.2.8", clock())
    clock.advance(seconds=FORGET_AFTER.total_seconds() + 1)
    await counting.failed("ben", "192.0.2.8", clock())
    assert await other.lock("ben", "192.0.2.8", clock()) is None, "a day-old run of failures starts over"
