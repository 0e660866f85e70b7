"""Report streams (issue 23): an agent whose outbox is lost starts a new stream at seq 1 and every new report
is stored; the collector deduplicates on (agent, epoch, seq), on every backend; older agents keep working."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.identity import Identity
from agent.outbox import OUTBOX_FILE, Outbox
from agent.uploader import Uploader
from collector.app import create_app
from collector.settings import Settings
from collector.store import AgentRow, open_store
from collector.store.migrate import CREATE_TABLE, load_migrations
from shared.wire import LEGACY_EPOCH
from tests.support.agents import REPORTS, SimAgent, heartbeat
from tests.support.clock import START, Clock
from tests.support.collector import enrolled, store_of


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    settings = Settings(db=database, admin_token="tech-secret")
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


def identity_of(agent: SimAgent, client: TestClient) -> Identity:
    """The real agent's identity for a device the test enrolled."""
    return Identity(agent.agent_id, str(client.make_url("")), "Acme Tooling", "Main office", START, agent.key)


def remove_outbox(state: Path) -> None:
    """Lose the outbox, as a technician deleting a 'broken' state file or a restored image would."""
    for name in (OUTBOX_FILE, OUTBOX_FILE + "-wal", OUTBOX_FILE + "-shm"):
        (state / name).unlink(missing_ok=True)


async def queue_and_send(outbox: Outbox, identity: Identity, clock: Clock, count: int) -> None:
    """The agent queues `count` heartbeats, a minute apart, and uploads them all."""
    for _ in range(count):
        clock.advance(minutes=1)
        outbox.put([heartbeat("RECEPTION-01", clock())])
    uploader = Uploader(outbox, identity, identity.collector_url, clock=clock, rand=lambda: 0.0)
    await uploader.upload_once()
    await uploader.close()
    assert outbox.stats().pending == 0, outbox.stats().last_upload_result


async def stored(client: TestClient, agent_id: str) -> int:
    async with store_of(client).read() as tx:
        return len(await tx.observations(agent_id, "heartbeat", 10_000))


async def test_an_agent_whose_outbox_was_deleted_loses_none_of_its_new_reports(
    client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    device = await enrolled(client)
    identity = identity_of(device, client)
    state = tmp_path / "state"
    state.mkdir()
    first = Outbox(state / OUTBOX_FILE, identity.agent_id, "boot-1", clock=clock)
    await queue_and_send(first, identity, clock, 80)
    first.close()
    assert await stored(client, identity.agent_id) == 80

    remove_outbox(state)
    second = Outbox(state / OUTBOX_FILE, identity.agent_id, "boot-1", clock=clock)
    assert second.epoch is not None and second.epoch != first.epoch
    await queue_and_send(second, identity, clock, 71)
    assert second.stats().next_seq == 72, "the new outbox counted from 1"
    second.close()
    assert await stored(client, identity.agent_id) == 80 + 71, "none of the 71 new reports was taken for a duplicate"

    async with store_of(client).read() as tx:
        streams = await tx.agent_epochs(identity.agent_id)
        events = [e for e in await tx.feed_since(0, 1000) if e.type == "device.stream_reset"]
    assert [(s.epoch, s.first_seq) for s in streams] == [(second.epoch, 1), (first.epoch, 1)]
    assert [(e.data["agent_id"], e.data["epoch"], e.data["seq"]) for e in events] == [
        (identity.agent_id, second.epoch, 1)], "the reset is told once, and the first stream is not a reset"


async def test_a_resent_envelope_of_a_stream_is_still_a_duplicate(client: TestClient) -> None:
    device = await enrolled(client)
    envelope = {**device.envelope(), "epoch": "0123456789abcdef"}
    other_stream = {**envelope, "epoch": "fedcba9876543210"}
    for sent, expected in [((envelope,), {"accepted": [1], "duplicates": []}),
                           ((envelope, other_stream), {"accepted": [1], "duplicates": [1]})]:
        body = device.body(*sent)
        response = await client.post(REPORTS, data=body, headers=device.headers(body))
        assert await response.json() == expected
    assert await stored(client, device.agent_id) == 2


async def test_an_older_agent_naming_no_stream_reports_in_the_legacy_one(client: TestClient) -> None:
    device = await enrolled(client)
    first = device.envelope()
    for sent, expected in [((first,), {"accepted": [1], "duplicates": []}),
                           ((first, device.envelope()), {"accepted": [2], "duplicates": [1]})]:
        body = device.body(*sent)
        response = await client.post(REPORTS, data=body, headers=device.headers(body))
        assert await response.json() == expected
    async with store_of(client).read() as tx:
        assert [s.epoch for s in await tx.agent_epochs(device.agent_id)] == [LEGACY_EPOCH]
        assert {o.epoch for o in await tx.observations(device.agent_id, "heartbeat", 10)} == {LEGACY_EPOCH}


def test_an_outbox_from_before_streams_goes_on_in_the_legacy_stream(tmp_path: Path) -> None:
    path = tmp_path / OUTBOX_FILE
    old = Outbox(path, "ag_1", "boot-1")
    old.put([heartbeat("pc", START)], now=START)
    old.close()
    db = sqlite3.connect(path)
    db.execute("DELETE FROM meta WHERE key = 'epoch'")  # as an agent from before streams left it
    db.commit()
    db.close()
    reopened = Outbox(path, "ag_1", "boot-1")
    assert reopened.epoch is None
    reopened.put([heartbeat("pc", START)], now=START)
    assert '"epoch"' not in reopened.pending(1 << 20)[-1][1], "collectors from before streams refuse the field"


KEY = {"sqlite": "x'01'", "postgresql": "'\\x01'"}


async def apply_before_streams(database: str, backend: str) -> None:
    """Migrate a database only as far as a collector from before streams did."""
    older = [m for m in load_migrations(backend) if m.version < 11]
    record = "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({}, '{}', '2026-01-01')"
    if backend == "sqlite":
        db = sqlite3.connect(database)
        db.execute(CREATE_TABLE)
        for m in older:
            db.executescript(m.sql)
            db.execute(record.format(m.version, m.name))
        db.commit()
        db.close()
        return
    conn = await asyncpg.connect(database)
    try:
        await conn.execute(CREATE_TABLE)
        for m in older:
            await conn.execute(m.sql)
            await conn.execute(record.format(m.version, m.name))
    finally:
        await conn.close()


async def test_0011_files_reports_stored_before_streams_under_the_legacy_stream(
    database: str, backend: str
) -> None:
    await apply_before_streams(database, backend)
    older = open_store(database)
    # The rows an older collector wrote, through raw SQL of its schema (no epoch columns yet).
    t = "2026-01-01T00:0{}:00.000000Z" if backend == "sqlite" else "2026-01-01T00:0{}:00Z"
    rows = (
        "INSERT INTO clients (id, name) VALUES (1, 'Acme Tooling');"
        "INSERT INTO sites (id, client_id, name) VALUES (1, 1, 'Main office');"
        f"INSERT INTO agents (agent_id, public_key, hostname, site_id, enrolled_at, last_seq) "
        f"VALUES ('ag_old', {KEY[backend]}, 'pc', 1, '{t.format(0)}', 2);"
        f"INSERT INTO reports VALUES ('ag_old', 1, 'b', '{t.format(1)}', '{t.format(1)}');"
        f"INSERT INTO reports VALUES ('ag_old', 2, 'b', '{t.format(2)}', '{t.format(2)}');"
        "INSERT INTO observations (agent_id, seq, kind, collected_at, payload) "
        f"VALUES ('ag_old', 2, 'heartbeat', '{t.format(2)}', '{{}}');"
    )
    if backend == "sqlite":
        db = sqlite3.connect(database)
        db.executescript(rows)
        db.commit()
        db.close()
    else:
        conn = await asyncpg.connect(database)
        await conn.execute(rows)
        await conn.close()
    await older.open()  # applies 0011
    try:
        at = START + timedelta(days=1)
        async with older.transaction() as tx:
            [observation] = await tx.observations("ag_old", "heartbeat", 10)
            assert (observation.epoch, observation.seq) == (LEGACY_EPOCH, 2)
            assert [(s.epoch, s.first_seq) for s in await tx.agent_epochs("ag_old")] == [(LEGACY_EPOCH, 1)]
            # The old agent resends seq 2: still a duplicate. A new stream's seq 2 is new.
            assert await tx.record_envelope("ag_old", 2, "b", at, at, []) is False
            assert await tx.record_envelope("ag_old", 2, "b", at, at, [], epoch="0123456789abcdef") is True
            assert await tx.note_epoch("ag_old", LEGACY_EPOCH, 2, at) is False
            assert await tx.note_epoch("ag_old", "0123456789abcdef", 2, at) is True
            agent = await tx.agent("ag_old")
            assert isinstance(agent, AgentRow) and agent.last_seq == 2
    finally:
        await older.close()
