"""A group commit reads its devices once, in the storing transaction: a device revoked or unknown by then is
refused while the rest of the group is stored, and a report whose verdicts can change nothing costs no
alert read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from collector.auth import AuthError
from collector.ingest import Ingest, IngestResult
from collector.store import AgentRow, Store, Tx
from shared.wire import Unknown
from tests.collector.test_ingest_bounds import batch, device
from tests.support.agents import heartbeat
from tests.support.clock import START


class AlertReadCounting:
    """The real store, counting the reads of a device's open alerts its transactions make."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.alert_reads: list[str] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.store.transaction() as tx:
            yield _CountingTx(tx, self.alert_reads)


class _CountingTx:
    """A real transaction whose open-alert reads are written down."""

    def __init__(self, tx: Tx, reads: list[str]) -> None:
        self._tx, self._reads = tx, reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    async def open_alerts_of(self, agent_id: str) -> Any:
        self._reads.append(agent_id)
        return await self._tx.open_alerts_of(agent_id)


async def test_a_group_stores_its_devices_reports_and_refuses_a_revoked_or_unknown_one(store: Store) -> None:
    good, revoked = await device(store, "GOOD-01"), await device(store, "GONE-01")
    now = START + timedelta(minutes=5)
    async with store.transaction() as tx:
        assert await tx.revoke_agent(revoked.agent_id, now)
    ingest = Ingest(store)
    answers = await asyncio.gather(
        ingest.ingest(good.agent_id, batch(good, 1, heartbeat("GOOD-01", now)), now),
        ingest.ingest(revoked.agent_id, batch(revoked, 1, heartbeat("GONE-01", now)), now),
        ingest.ingest("ag_nobody", batch(revoked, 1, heartbeat("NOBODY", now)), now),
        return_exceptions=True,
    )
    assert not isinstance(answers[0], BaseException) and answers[0].accepted == [1]
    assert isinstance(answers[1], AuthError) and str(answers[1]) == "agent 'ag_gone-01' was revoked"
    assert isinstance(answers[2], AuthError) and "unknown agent 'ag_nobody'" in str(answers[2])
    async with store.read() as tx:
        assert [row.seq for row in await tx.observations(good.agent_id, "heartbeat", 10)] == [1]
        assert await tx.observations(revoked.agent_id, "heartbeat", 10) == []


@pytest.mark.parametrize("concurrently", [False, True])
async def test_a_heartbeat_that_changes_nothing_reads_no_alerts_but_one_after_an_alert_resolves_it(
    store: Store, concurrently: bool
) -> None:
    pc = await device(store, "PC-01")
    counting = AlertReadCounting(store)
    ingest = Ingest(counting)  # type: ignore[arg-type]
    now = START + timedelta(minutes=5)
    await ingest.ingest(pc.agent_id, batch(pc, 1, heartbeat("PC-01", now)), now)
    assert counting.alert_reads == []
    broken = batch(pc, 2, Unknown(collected_at=now, check="heartbeat", error="WMI is not answering"))
    later = now + timedelta(minutes=1)
    healed = batch(pc, 3, heartbeat("PC-01", later))
    if concurrently:
        # In one group commit: the alert the first report opens is seen by the second.
        await asyncio.gather(ingest.ingest(pc.agent_id, broken, now), ingest.ingest(pc.agent_id, healed, later))
    else:
        await ingest.ingest(pc.agent_id, broken, now)
        async with store.read() as tx:
            assert [a.rule for a in await tx.open_alerts_of(pc.agent_id)] == ["unknown"]
        await ingest.ingest(pc.agent_id, healed, later)
    assert counting.alert_reads == [pc.agent_id, pc.agent_id]
    async with store.read() as tx:
        assert await tx.open_alerts_of(pc.agent_id) == []


class TransactionCounting:
    """The real store, counting the transactions opened on it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.transactions = 0

    def transaction(self) -> Any:
        self.transactions += 1
        return self.store.transaction()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def heartbeats(pc: AgentRow, ingest: Ingest, seqs: range) -> list[asyncio.Task[IngestResult]]:
    """Heartbeats of `pc` sent all at once (load: no gap between them), numbered `seqs`."""
    now = START + timedelta(minutes=5)
    return [asyncio.create_task(ingest.ingest(pc.agent_id, batch(pc, seq, heartbeat(pc.hostname, now)), now))
            for seq in seqs]


async def test_under_load_the_writer_gathers_a_report_arriving_soon_after_into_the_same_commit(store: Store) -> None:
    pc = await device(store, "PC-01")
    counting = TransactionCounting(store)
    ingest = Ingest(counting, gather_seconds=1.0)  # type: ignore[arg-type]
    burst = heartbeats(pc, ingest, range(1, 51))  # 50 at once: load
    await asyncio.sleep(0.05)
    # Nothing is committed (nor answered) while the writer gathers.
    assert counting.transactions == 0 and not any(task.done() for task in burst)
    late = heartbeats(pc, ingest, range(51, 52))
    assert [a.accepted for a in await asyncio.gather(*burst, *late)] == [[seq] for seq in range(1, 52)]
    assert counting.transactions == 1
    async with store.read() as tx:
        assert [row.seq for row in await tx.observations(pc.agent_id, "heartbeat", 60)] == list(range(51, 0, -1))


async def test_a_lone_report_is_committed_at_once_and_a_full_group_stops_the_gathering(store: Store) -> None:
    pc = await device(store, "PC-01")
    counting = TransactionCounting(store)
    ingest = Ingest(counting, gather_seconds=3600)  # type: ignore[arg-type]
    [lone] = await asyncio.wait_for(asyncio.gather(*heartbeats(pc, ingest, range(1, 2))), 10)
    assert lone.accepted == [1] and counting.transactions == 1
    # An outbox's catch-up: once 64 requests wait, the group is committed without waiting out the hour.
    burst = heartbeats(pc, ingest, range(2, 52))
    await asyncio.sleep(0.05)
    assert counting.transactions == 1  # the writer is gathering
    answers = await asyncio.wait_for(asyncio.gather(*burst, *heartbeats(pc, ingest, range(52, 66))), 30)
    assert [a.accepted for a in answers] == [[seq] for seq in range(2, 66)]
    assert counting.transactions == 2
