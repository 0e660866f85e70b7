"""Ingest: store an agent's envelopes, evaluate their signals and publish the changes, all or nothing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from collector.alerts import dedupe
from collector.feed import Feed
from collector.rules import History, RuleSpec, evaluate, rules_by_kind
from collector.store import AgentRow, Store, Tx
from shared.wire import SIGNAL_ADAPTER, Envelope, Heartbeat, ReportBatch


@dataclass
class IngestResult:
    """Which envelopes were new and which had been stored before (both are acknowledged)."""

    accepted: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)


class Ingest:
    """The ingest step of the hot path (after authentication and validation)."""

    def __init__(self, store: Store, feed: Feed, rules: dict[str, RuleSpec] | None = None) -> None:
        self._store = store
        self._feed = feed
        self._rules = rules if rules is not None else rules_by_kind()

    async def ingest(self, agent: AgentRow, batch: ReportBatch, received_at: datetime) -> IngestResult:
        """Store and evaluate a batch in one transaction; a resent envelope is acknowledged, not stored twice.

        1. Record each envelope by (agent, seq); skip the ones stored before.
        2. For each signal: read the history its rule needs, store it, evaluate it, apply the verdicts.
        3. Update when the device was last seen; first contact goes into the feed.
        4. Commit, then wake the feed's subscribers.
        """
        result = IngestResult()
        published = 0
        async with self._store.transaction() as tx:
            current = await tx.agent(agent.agent_id) or agent
            for envelope in batch.envelopes:
                if not await tx.add_report(
                    agent.agent_id, envelope.seq, envelope.boot_id, envelope.sent_at, received_at
                ):
                    result.duplicates.append(envelope.seq)
                    continue
                result.accepted.append(envelope.seq)
                published += await self._store_envelope(tx, current, envelope, received_at)
            if result.accepted:
                newest = batch.envelopes[-1]
                hostname = next(
                    (s.hostname for e in reversed(batch.envelopes) for s in e.signals if isinstance(s, Heartbeat)),
                    None,
                )
                await tx.touch_agent(agent.agent_id, received_at, newest.seq, hostname)
                if current.last_seen_at is None:
                    await tx.append_feed(received_at, "device.online", _device_view(current, hostname))
                    published += 1
        if published:
            self._feed.notify()
        return result

    async def _store_envelope(self, tx: Tx, agent: AgentRow, envelope: Envelope, now: datetime) -> int:
        """Store one envelope's signals and apply their evaluations; returns feed events added."""
        published = 0
        histories = {}
        for signal in envelope.signals:
            spec = self._rules.get(signal.kind)
            if spec is not None and spec.history and signal.kind not in histories:
                rows = await tx.observations(agent.agent_id, signal.kind, spec.history)
                histories[signal.kind] = tuple(SIGNAL_ADAPTER.validate_python(r.payload) for r in rows)
        await tx.add_observations(
            agent.agent_id, envelope.seq,
            [(s.kind, s.collected_at, s.model_dump_json()) for s in envelope.signals],
        )
        for signal in envelope.signals:
            spec = self._rules.get(signal.kind)
            if spec is None:
                continue
            history = History(now=now, hostname=agent.hostname, previous=histories.get(signal.kind, ()))
            published += await dedupe.apply(tx, agent, evaluate(spec, signal, history), now, f"rule:{signal.kind}")
        return published


def _device_view(agent: AgentRow, hostname: str | None) -> dict[str, str]:
    """A device as the feed names it."""
    return {
        "agent_id": agent.agent_id,
        "hostname": hostname or agent.hostname,
        "client": agent.site.client_name,
        "site": agent.site.site_name,
    }
