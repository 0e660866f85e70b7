"""The store contract, run against every backend: migrations, enrolment, ingest, alerts, feed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from collector.store import (
    AgentRow,
    AlertOwner,
    AlertRow,
    Contact,
    EnrolmentRefused,
    EnvelopeRow,
    ObservationRow,
    SiteRef,
    Store,
)
from collector.store.migrate import Migration, MigrationError, SchemaTooNew, load_migrations, migrate

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    """A moment `minutes` after T0."""
    return T0 + timedelta(minutes=minutes)


async def enrol(store: Store, agent_id: str = "agent-1", hostname: str = "pc-01",
                client: str = "Acme Tooling", site: str = "Main office") -> AgentRow:
    """Record an enrolled device at a client's site."""
    async with store.transaction() as tx:
        agent = AgentRow(agent_id, b"\x01" * 32, hostname, await tx.site(client, site), T0)
        await tx.add_agent(agent)
    return agent


PC_01 = AlertOwner("agent-1", 1, "Acme Tooling", "Main office", "pc-01")
PC_02 = AlertOwner("agent-2", 1, "Acme Tooling", "Main office", "pc-02")


async def open_alert(
    store: Store, fingerprint: str = "fp-1", minutes: int = 0, look_first: bool = False
) -> AlertRow | None:
    """Try to open a device-offline alert for agent-1 in its own transaction (looking first, like dedupe)."""
    async with store.transaction() as tx:
        if look_first and await tx.open_alert(fingerprint) is not None:
            return None
        return await tx.insert_alert(
            fingerprint, "device_offline", PC_01, "device", "critical", "pc-01 is offline", {"missed": 3},
            at(minutes),
        )


# Migrations


async def test_it_applies_the_migrations_once_and_not_again_on_reopen(
    store: Store, new_store: Callable[[], Store], backend: str
) -> None:
    shipped = load_migrations(backend)
    async with store.migration_tx() as tx:
        assert await tx.applied() == {m.version: m.name for m in shipped}
    assert await migrate(store.migration_tx, shipped) == []
    agent = await enrol(store)
    await store.close()

    reopened = new_store()
    await reopened.open()
    async with reopened.transaction() as tx:
        assert await tx.agents() == [agent]


async def test_it_runs_each_migration_in_its_own_transaction(store: Store, backend: str) -> None:
    shipped = load_migrations(backend)
    n = len(shipped)
    good = Migration(n + 1, "add_notes", "CREATE TABLE notes (t TEXT);\nINSERT INTO notes VALUES ('a; b');")
    broken = Migration(n + 2, "add_later", "CREATE TABLE later (x INTEGER);\nTHIS IS NOT SQL;")
    with pytest.raises(MigrationError, match=f"migration {n + 2:04d}_add_later failed"):
        await migrate(store.migration_tx, [*shipped, good, broken])

    # The broken one left no table behind (else this CREATE would fail) and the good one is not run twice.
    fixed = Migration(n + 2, "add_later", "CREATE TABLE later (x INTEGER);")
    assert await migrate(store.migration_tx, [*shipped, good, fixed]) == [fixed]
    async with store.migration_tx() as tx:
        assert sorted(await tx.applied()) == list(range(1, n + 3))


async def test_it_refuses_a_database_migrated_by_a_newer_fieldpost(
    store: Store, new_store: Callable[[], Store], backend: str
) -> None:
    known = len(load_migrations(backend))
    async with store.migration_tx() as tx:
        await tx.record(Migration(known + 1, "from_the_future", ""), T0)
    refusal = rf"version {known + 1} \(from_the_future\).* up to {known}: upgrade"
    with pytest.raises(SchemaTooNew, match=refusal):
        await new_store().open()


async def test_it_migrates_once_when_two_collectors_start_together(
    new_store: Callable[[], Store], backend: str
) -> None:
    first, second = new_store(), new_store()
    await asyncio.gather(first.open(), second.open())
    async with second.migration_tx() as tx:
        assert await tx.applied() == {m.version: m.name for m in load_migrations(backend)}


# Clients, sites and enrolment


async def test_it_lists_clients_with_their_sites_and_device_counts(store: Store) -> None:
    first = await enrol(store, "agent-1", "pc-02")
    second = await enrol(store, "agent-2", "pc-01")
    async with store.transaction() as tx:
        assert await tx.site("Acme Tooling", "Main office") == first.site
        await tx.site("Bakery Brandt", "Shop")
        await tx.site("Acme Tooling", "Warehouse")
        clients = await tx.clients()
        agents = await tx.agents()
    assert [(c.name, c.sites) for c in clients] == [
        ("Acme Tooling", [("Main office", 2), ("Warehouse", 0)]),
        ("Bakery Brandt", [("Shop", 0)]),
    ]
    assert agents == [second, first]


async def consume(store: Store, token_hash: str, now: datetime) -> SiteRef:
    """Use the token once in its own transaction."""
    async with store.transaction() as tx:
        return await tx.consume_enrolment_token(token_hash, now)


async def add_token(
    store: Store, token_hash: str, expires_at: datetime | None = None, uses: int | None = None
) -> SiteRef:
    """Create a token for Acme Tooling's main office; returns the site."""
    async with store.transaction() as tx:
        site = await tx.site("Acme Tooling", "Main office")
        await tx.add_enrolment_token(token_hash, site, T0, expires_at, uses)
    return site


async def test_it_refuses_an_unknown_enrolment_token(store: Store) -> None:
    with pytest.raises(EnrolmentRefused, match=r"^unknown enrolment token$"):
        await consume(store, "nobody-made-this", T0)


async def test_it_refuses_an_expired_enrolment_token_saying_when(store: Store) -> None:
    site = await add_token(store, "h", expires_at=at(60))
    assert await consume(store, "h", at(59)) == site
    with pytest.raises(EnrolmentRefused, match=r"^enrolment token expired at 2025-03-03T10:00:00\+00:00$"):
        await consume(store, "h", at(60))


async def test_it_refuses_a_revoked_enrolment_token(store: Store) -> None:
    await add_token(store, "h")
    async with store.transaction() as tx:
        assert await tx.revoke_enrolment_token("h", at(1)) is True
        assert await tx.revoke_enrolment_token("h", at(2)) is False
        assert await tx.revoke_enrolment_token("nobody-made-this", at(2)) is False
    with pytest.raises(EnrolmentRefused, match=r"^enrolment token revoked$"):
        await consume(store, "h", at(3))


async def test_it_refuses_an_enrolment_token_once_it_is_used_up(store: Store) -> None:
    site = await add_token(store, "h", uses=2)
    assert [await consume(store, "h", T0), await consume(store, "h", T0)] == [site, site]
    with pytest.raises(EnrolmentRefused, match=r"^enrolment token used up$"):
        await consume(store, "h", T0)


async def test_it_enrols_any_number_of_devices_with_an_unlimited_token(store: Store) -> None:
    site = await add_token(store, "h", uses=None)
    assert [await consume(store, "h", at(i)) for i in range(20)] == [site] * 20


# Ingest


async def test_it_stores_a_resent_report_once(store: Store, new_store: Callable[[], Store]) -> None:
    await enrol(store)
    first = [("heartbeat", T0, json.dumps({"uptime": 1}))]
    resent = [("heartbeat", T0, json.dumps({"uptime": 2}))]
    async with store.transaction() as tx:
        assert await tx.record_envelope("agent-1", 7, "boot-a", T0, T0, first) is True
        assert await tx.record_envelope("agent-1", 7, "boot-a", T0, at(1), resent) is False
        # The refused insert leaves the transaction usable.
        assert await tx.record_envelope("agent-1", 8, "boot-a", T0, at(1), []) is True
    other = new_store()
    await other.open()
    async with other.transaction() as tx:
        assert await tx.record_envelope("agent-1", 7, "boot-b", at(2), at(2), resent) is False
        stored = await tx.observations("agent-1", "heartbeat", 10)
    assert [row.payload for row in stored] == [{"uptime": 1}]


async def test_it_rolls_back_everything_when_the_block_raises(store: Store) -> None:
    agent = await enrol(store)
    with pytest.raises(RuntimeError, match="boom"):
        async with store.transaction() as tx:
            await tx.site("Bakery Brandt", "Shop")
            await tx.record_envelope("agent-1", 1, "boot", T0, T0, [("heartbeat", T0, "{}")])
            await tx.touch_agent("agent-1", T0, 1, "renamed")
            await tx.append_feed(T0, "device.online", {})
            await tx.set_meta("admin_token", "x")
            raise RuntimeError("boom")
    async with store.transaction() as tx:
        assert [c.name for c in await tx.clients()] == ["Acme Tooling"]
        assert await tx.observations("agent-1", "heartbeat", 10) == []
        assert await tx.agent("agent-1") == agent
        assert await tx.feed_last_id() == 0
        assert await tx.get_meta("admin_token") is None
        assert await tx.record_envelope("agent-1", 1, "boot", T0, T0, []) is True


async def test_it_returns_an_agents_latest_observations_of_a_kind_newest_first(store: Store) -> None:
    await enrol(store)
    await enrol(store, "agent-2", "pc-02")
    async with store.transaction() as tx:
        for seq in range(1, 5):
            await tx.record_envelope("agent-1", seq, "boot", at(seq), at(seq), [
                ("heartbeat", at(seq), json.dumps({"uptime": seq})),
                ("updates", at(seq), json.dumps({"pending": 0})),
            ])
        await tx.record_envelope("agent-2", 9, "boot", at(9), at(9), [("heartbeat", at(9), json.dumps({"uptime": 9}))])
    async with store.transaction() as tx:
        rows = await tx.observations("agent-1", "heartbeat", 2)
    assert rows == [
        ObservationRow("agent-1", 4, "heartbeat", at(4), {"uptime": 4}),
        ObservationRow("agent-1", 3, "heartbeat", at(3), {"uptime": 3}),
    ]


async def test_it_returns_each_online_devices_latest_times_of_a_kind_in_one_read(store: Store) -> None:
    await enrol(store)
    await enrol(store, "agent-2", "pc-02")
    await enrol(store, "agent-3", "pc-03")
    async with store.transaction() as tx:
        for seq in range(1, 6):
            await tx.record_envelope("agent-1", seq, "boot", at(seq), at(seq), [
                ("updates", at(seq), json.dumps({})), ("heartbeat", at(seq), json.dumps({})),
            ])
        await tx.record_envelope("agent-2", 1, "boot", at(1), at(1), [("updates", at(1), json.dumps({}))])
        await tx.record_envelope("agent-3", 1, "boot", at(1), at(1), [("updates", at(1), json.dumps({}))])
        for agent_id, seen in (("agent-1", at(5)), ("agent-2", at(1)), ("agent-3", at(-60))):
            await tx.touch_agent(agent_id, seen, 1, None)
    async with store.read() as tx:
        found = await tx.recent_observed("updates", 3, at(0))
    # agent-3 was last seen before `since`; agent-2 has one report of the kind.
    assert found == {"agent-1": [at(5), at(4), at(3)], "agent-2": [at(1)]}


async def test_it_never_moves_last_seen_or_last_seq_backwards(store: Store) -> None:
    await enrol(store)
    async with store.transaction() as tx:
        assert await tx.touch_agent("agent-1", at(10), 5, "pc-01-new") is None
        assert await tx.touch_agent("agent-1", at(5), 3, "pc-01-old") == at(10)
        late = await tx.agent("agent-1")
        assert await tx.touch_agent("agent-1", at(11), 6, None) == at(10)
        later = await tx.agent("agent-1")
    assert late is not None and later is not None
    assert (late.last_seen_at, late.last_seq, late.hostname) == (at(10), 5, "pc-01-new")
    assert (later.last_seen_at, later.last_seq, later.hostname) == (at(11), 6, "pc-01-new")


async def test_a_group_of_contacts_moves_each_agent_as_one_by_one_would(store: Store) -> None:
    await enrol(store)
    await enrol(store, "agent-2", "pc-02")
    async with store.transaction() as tx:
        previous = await tx.touch_agents([
            Contact("agent-1", at(10), 5, "pc-01-new"), Contact("agent-2", at(3), 1, None),
            Contact("agent-1", at(5), 3, "pc-01-old"), Contact("agent-1", at(11), 6, None),
        ])
        one, two = await tx.agent("agent-1"), await tx.agent("agent-2")
    assert previous == [None, None, at(10), at(10)]
    assert one is not None and two is not None
    assert (one.last_seen_at, one.last_seq, one.hostname) == (at(11), 6, "pc-01-new")
    assert (two.last_seen_at, two.last_seq, two.hostname) == (at(3), 1, "pc-02")


async def test_a_group_stores_an_envelope_sent_twice_once_and_keeps_the_order(store: Store) -> None:
    await enrol(store)
    await enrol(store, "agent-2", "pc-02")

    def envelope(agent_id: str, seq: int, uptime: int) -> EnvelopeRow:
        rows = [("heartbeat", at(seq), json.dumps({"up": uptime}))]
        return EnvelopeRow(agent_id, seq, "boot", at(seq), at(seq), rows)

    async with store.transaction() as tx:
        assert await tx.record_envelope("agent-1", 1, "boot", at(1), at(1), [("heartbeat", at(1), "{}")]) is True
        stored = await tx.record_envelopes([
            envelope("agent-1", 2, 1), envelope("agent-2", 2, 2), envelope("agent-1", 1, 3),
            envelope("agent-1", 2, 4), envelope("agent-1", 3, 5),
        ])
        rows = await tx.observations("agent-1", "heartbeat", 10)
    assert stored == [True, True, False, False, True]
    # Newest first: the resent copies (uptime 3 and 4) were not stored.
    assert [row.payload for row in rows] == [{"up": 5}, {"up": 1}, {}]


async def test_it_returns_timezone_aware_utc_datetimes_and_refuses_naive_ones(store: Store) -> None:
    local = datetime(2025, 3, 3, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    async with store.transaction() as tx:
        await tx.append_feed(local, "device.online", {})
        [event] = await tx.feed_since(0, 10)
    assert event.at == local
    assert event.at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="naive"):
        async with store.transaction() as tx:
            await tx.append_feed(datetime(2025, 3, 3, 9, 0), "device.online", {})


# Alerts


async def test_it_opens_one_alert_per_fingerprint_when_two_collectors_race(
    store: Store, new_store: Callable[[], Store]
) -> None:
    await enrol(store)
    other = new_store()
    await other.open()
    # Blind inserts are decided by the unique index; look-then-insert ones by the write lock taken at BEGIN.
    results = await asyncio.gather(*(
        open_alert(each, look_first=look_first) for look_first in (True, False) for each in (store, other)
    ))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    async with other.transaction() as tx:
        assert await tx.alerts("open") == winners


async def test_it_keeps_the_transaction_usable_after_losing_an_alert_to_another_writer(store: Store) -> None:
    await enrol(store)
    async with store.transaction() as tx:
        opening = ("fp-1", "device_offline", PC_01, "device", "critical")
        first = await tx.insert_alert(*opening, "offline", {}, T0)
        assert first is not None
        assert await tx.insert_alert(*opening, "offline again", {}, T0) is None
        updated = await tx.update_alert(first.alert_id, "warning", "still offline", {"missed": 4}, at(5))
    assert (updated.severity, updated.summary, updated.details) == ("warning", "still offline", {"missed": 4})
    assert (updated.opened_at, updated.last_seen_at, updated.occurrences) == (T0, at(5), 2)
    async with store.transaction() as tx:
        assert await tx.open_alert("fp-1") == updated


async def test_it_opens_a_new_alert_for_a_fingerprint_after_the_old_one_resolved(store: Store) -> None:
    await enrol(store)
    first = await open_alert(store)
    assert first is not None
    async with store.transaction() as tx:
        resolved = await tx.resolve_alert(first.alert_id, at(5))
        assert await tx.resolve_alert(first.alert_id, at(6)) is None
    second = await open_alert(store, minutes=10)
    assert resolved is not None and second is not None
    assert (resolved.state, resolved.resolved_at) == ("resolved", at(5))
    assert (second.state, second.opened_at, second.occurrences) == ("open", at(10), 1)
    async with store.transaction() as tx:
        assert await tx.open_alert("fp-1") == second
        assert await tx.alerts(None) == [second, resolved]
        assert await tx.alerts("resolved") == [resolved]


async def test_it_reopens_a_recently_resolved_alert_and_tracks_acks_snoozes_and_good_runs(store: Store) -> None:
    await enrol(store)
    first = await open_alert(store)
    assert first is not None
    async with store.transaction() as tx:
        counted = await tx.record_good(first.alert_id, at(1))
        counted = await tx.record_good(first.alert_id, at(2))
        assert (counted.good_streak, counted.good_since) == (2, at(1))
        bad_again = await tx.update_alert(first.alert_id, "critical", "pc-01 is offline", {}, at(3))
        assert (bad_again.good_streak, bad_again.good_since) == (0, None)
        acked = await tx.acknowledge(first.alert_id, "tech", at(4))
        assert acked is not None and (acked.acknowledged_by, acked.acknowledged_at) == ("tech", at(4))
        assert await tx.acknowledge(first.alert_id, "tech", at(5)) is None, "acknowledged once"
        snoozed = await tx.snooze(first.alert_id, at(60))
        assert snoozed is not None and snoozed.snoozed_until == at(60)
        await tx.resolve_alert(first.alert_id, at(10))
        assert await tx.reopen_alert("fp-1", at(11), at(20)) is None, "resolved before the reopen window"
        reopened = await tx.reopen_alert("fp-1", at(5), at(20))
    assert reopened is not None
    assert (reopened.alert_id, reopened.state, reopened.resolved_at, reopened.acknowledged_at) == (
        first.alert_id, "open", None, None)
    assert reopened.occurrences == 2, "the reopening evaluation counts when the dedupe step records it"


async def test_it_keeps_an_alerts_history_oldest_first(store: Store) -> None:
    await enrol(store)
    alert = await open_alert(store)
    assert alert is not None
    async with store.transaction() as tx:
        await tx.add_alert_event(alert.alert_id, at(0), "opened", "rule:heartbeat", {"reason": "silent"})
        await tx.add_alert_event(alert.alert_id, at(7), "resolved", "rule:heartbeat", {"reason": "back"})
        history = await tx.alert_events(alert.alert_id)
    assert history == [
        (at(0), "opened", "rule:heartbeat", {"reason": "silent"}),
        (at(7), "resolved", "rule:heartbeat", {"reason": "back"}),
    ]


# Feed and meta


async def test_it_returns_feed_events_after_an_id_oldest_first(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.feed_last_id() == 0
        appended = [await tx.append_feed(at(i), "device.online", {"n": i}) for i in range(5)]
    async with store.transaction() as tx:
        first = await tx.feed_since(0, 3)
        rest = await tx.feed_since(first[-1].event_id, 10)
        last = await tx.feed_last_id()
    assert [e.data["n"] for e in first] == [0, 1, 2]
    assert first + rest == appended
    assert last == appended[-1].event_id


async def test_it_keeps_the_newest_value_of_a_meta_key(store: Store) -> None:
    async with store.transaction() as tx:
        assert await tx.get_meta("admin_token") is None
        await tx.set_meta("admin_token", "old")
        await tx.set_meta("admin_token", "new")
    async with store.transaction() as tx:
        assert await tx.get_meta("admin_token") == "new"


async def test_it_lists_a_devices_open_alerts_only(store: Store) -> None:
    await enrol(store)
    await enrol(store, "agent-2", "pc-02")
    first = await open_alert(store, "fp-1")
    second = await open_alert(store, "fp-2")
    assert first is not None and second is not None
    async with store.transaction() as tx:
        await tx.insert_alert("fp-3", "device_offline", PC_02, "device", "critical", "pc-02 is offline", {}, T0)
        await tx.resolve_alert(first.alert_id, at(5))
        open_now = await tx.open_alerts_of("agent-1")
    assert open_now == [second]
