"""A database that is locked or refuses writes: the collector answers 503 + Retry-After (never 500), and
/healthz and /readyz say so; once it is free again the same request succeeds."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.settings import Settings
from collector.store import log_failure, open_store, postgresql, sqlite
from tests.support.agents import REPORTS, SimAgent
from tests.support.collector import TECH, enrolled, new_token


@pytest.fixture
async def client(database: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[TestClient]:
    # Lock waits short enough for a test; what happens after the wait is the same.
    monkeypatch.setattr(sqlite, "BUSY_TIMEOUT_MS", 200)
    monkeypatch.setattr(postgresql, "LOCK_TIMEOUT_MS", 200)
    settings = Settings(db=database, admin_token="tech-secret")
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


@asynccontextmanager
async def write_lock_held(database: str) -> AsyncIterator[None]:
    """Another process's transaction holding the database's write lock (on PostgreSQL: the tables an agent's
    report, an alert and a health probe touch, exclusively), until the block ends."""
    if "://" not in database:
        other = sqlite3.connect(database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE meta SET value = value")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    other = await asyncpg.connect(database)
    try:
        async with other.transaction():
            await other.execute("LOCK TABLE agents, reports, meta, alerts IN ACCESS EXCLUSIVE MODE")
            yield
    finally:
        await other.close()


async def test_a_report_while_the_database_is_locked_gets_503_and_is_stored_when_sent_again(
    client: TestClient, database: str
) -> None:
    agent = await enrolled(client)
    # The agent's key is looked up in the database on every request (no cache: a revocation holds at once).
    body = agent.body(agent.envelope())
    async with write_lock_held(database):
        response = await client.post(REPORTS, data=body, headers=agent.headers(body))
        assert response.status == 503, await response.text()
        assert int(response.headers["Retry-After"]) > 0
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    assert response.status == 200
    assert await response.json() == {"accepted": [1], "duplicates": []}


async def test_enrolment_while_the_database_is_locked_gets_503_not_500(client: TestClient, database: str) -> None:
    token = await new_token(client, "tok-locked")
    agent = SimAgent("PC-LOCKED", clock=client.app[keys.CLOCK])
    async with write_lock_held(database):
        response = await client.post("/api/v1/enrol", json=agent.enrol_body(token))
        assert response.status == 503, await response.text()
        assert "try again later" in (await response.json())["error"]
        assert int(response.headers["Retry-After"]) > 0
    response = await client.post("/api/v1/enrol", json=agent.enrol_body(token))
    assert response.status == 201


async def test_a_technician_request_while_the_database_is_locked_gets_503(
    client: TestClient, database: str
) -> None:
    async with write_lock_held(database):
        response = await client.post("/api/v1/alerts/1/acknowledge", headers=TECH, json={})
        assert response.status == 503, await response.text()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_answers_503_with_the_reason_while_the_store_refuses_writes(
    client: TestClient, database: str, path: str
) -> None:
    assert (await client.get(path)).status == 200
    async with write_lock_held(database):
        response = await client.get(path)
        assert response.status == 503
        assert "does not accept writes" in (await response.json())["error"]
        assert int(response.headers["Retry-After"]) > 0
    response = await client.get(path)
    assert response.status == 200
    assert (await response.json())["status"] in ("ok", "ready")


async def test_readyz_turns_load_balancers_away_once_the_collector_is_stopping(client: TestClient) -> None:
    assert (await client.get("/readyz")).status == 200
    client.app[keys.STOPPING].set()
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["error"] == "the collector is stopping"
    assert (await client.get("/healthz")).status == 200, "still alive: only readiness changed"


async def test_the_stopping_flag_is_set_when_the_collector_shuts_down(database: str) -> None:
    app = create_app(Settings(db=database, admin_token="tech-secret"))
    async with TestClient(TestServer(app)):
        assert not app[keys.STOPPING].is_set()
    assert app[keys.STOPPING].is_set()


def test_a_transient_failure_is_logged_in_one_line_anything_else_with_its_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_store(str(tmp_path / "collector.db"))
    logger = logging.getLogger("test.failures")
    with caplog.at_level(logging.WARNING, "test.failures"):
        log_failure(logger, store, OSError("no such socket"), "offline sweep failed; retrying in %s s", 1)
        log_failure(logger, store, ValueError("a bug"), "offline sweep failed; retrying in %s s", 1)
    transient, other = caplog.records
    assert (transient.levelno, transient.exc_info) == (logging.WARNING, None)
    assert transient.getMessage() == ("offline sweep failed; retrying in 1 s: database unavailable "
                                      "(OSError: no such socket)")
    assert other.levelno == logging.ERROR and other.exc_info is not None and other.exc_info[0] is ValueError
