"""The cost of a report is bounded: the site's history is read once per group commit, with limits in rows
and time, so one PC that floods its site neither slows its site-mates nor pushes their reports out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from collector.ingest import Ingest
from collector.rules import Evaluation, History, rules_by_kind
from collector.rules.printer_ip_conflict import evaluate as printer_rule
from collector.store import AgentRow, Store, Tx
from shared.printer_ip_conflict import NeighbourEntry, PrinterIpConflict, SegmentKey
from shared.wire import Envelope, ReportBatch
from tests.support.agents import heartbeat
from tests.support.clock import START

PER_DEVICE, SITE_ROWS = 5, 8


class CountingStore:
    """The real store, counting the site history reads its transactions make."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.site_reads: list[tuple[Any, ...]] = []

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        async with self.store.transaction() as tx:
            yield CountingTx(tx, self.site_reads)


class CountingTx:
    """A real transaction whose site history reads are written down."""

    def __init__(self, tx: Tx, reads: list[tuple[Any, ...]]) -> None:
        self._tx, self._reads = tx, reads

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    async def site_observations(self, *args: Any) -> Any:
        self._reads.append(args)
        return await self._tx.site_observations(*args)


async def device(store: Store, hostname: str, client: str = "Acme Tooling") -> AgentRow:
    """An enrolled device of the client's main office."""
    async with store.transaction() as tx:
        site = await tx.site(client, "Main office")
        agent = AgentRow(f"ag_{hostname.lower()}", b"k" * 32, hostname, site, START)
        await tx.add_agent(agent)
    return agent


def printers(minutes: float, mac: str = "00:1b:a9:00:00:01") -> PrinterIpConflict:
    """A printer report of the office's segment, `minutes` after START."""
    return PrinterIpConflict(
        collected_at=START + timedelta(minutes=minutes),
        segment=SegmentKey(subnet="192.168.1.0/24", gateway_ip="192.168.1.1", gateway_mac="00:11:22:33:44:55"),
        neighbours=[NeighbourEntry(ip="192.168.1.50", mac=mac, interface="eth0", state="reachable")],
    )


def batch(agent: AgentRow, first_seq: int, *signals: Any) -> ReportBatch:
    """One envelope per signal, numbered from `first_seq`."""
    return ReportBatch(envelopes=[
        Envelope(schema_version=1, agent_id=agent.agent_id, seq=first_seq + n, boot_id="b",
                 sent_at=s.collected_at, signals=[s])
        for n, s in enumerate(signals)
    ])


async def test_a_flooding_device_costs_one_bounded_site_read_per_group_and_pushes_no_site_mate_out(
    store: Store,
) -> None:
    seen: list[tuple[str, tuple[str, ...]]] = []

    def recording(signal: PrinterIpConflict, history: History) -> list[Evaluation]:
        seen.append((history.hostname, tuple(r.hostname for r in history.site)))
        return printer_rule(signal, history)

    rules = rules_by_kind()
    rules["printer_ip_conflict"] = replace(rules["printer_ip_conflict"], evaluate=recording,
                                           site_rows_per_device=PER_DEVICE, site_rows=SITE_ROWS)
    counting = CountingStore(store)
    ingest = Ingest(counting, rules=rules)  # type: ignore[arg-type]
    flood, mate, stranger = (await device(store, "FLOOD-01"), await device(store, "OFFICE-02"),
                             await device(store, "BAKERY-01", client="Bakery"))
    now = START + timedelta(hours=1)

    await ingest.ingest(mate.agent_id, batch(mate, 1, printers(0)), now)
    for round_ in range(3):
        await ingest.ingest(flood.agent_id, batch(flood, 1 + 10 * round_, *(printers(1 + m) for m in range(10))), now)
    counting.site_reads.clear()
    seen.clear()

    # One group: ten more envelopes of the flood, a site-mate's printer report, another client's heartbeat.
    results = await asyncio.gather(
        ingest.ingest(flood.agent_id, batch(flood, 31, *(printers(20 + m) for m in range(10))), now),
        ingest.ingest(mate.agent_id, batch(mate, 2, printers(30)), now),
        ingest.ingest(stranger.agent_id, batch(stranger, 1, heartbeat("BAKERY-01", now)), now),
    )

    assert [r.accepted for r in results] == [list(range(31, 41)), [2], [1]]
    assert len(counting.site_reads) == 1  # not once per envelope (11)
    [(_site, _kind, since, until, per_device, limit)] = counting.site_reads
    assert (per_device, limit) == (PER_DEVICE, SITE_ROWS)
    assert until - since <= timedelta(hours=24, days=1, minutes=40)
    mates_view = next(site for host, site in seen if host == "OFFICE-02")
    assert len(mates_view) <= SITE_ROWS
    # The mate's own earlier report is still in its site's view, after 40 reports of the flood.
    assert "OFFICE-02" in mates_view
    assert all(len(site) <= SITE_ROWS for _, site in seen)
