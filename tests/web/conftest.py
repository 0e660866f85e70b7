"""A real collector app for the dashboard's tests, a technician account, and a logged-in browser session."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.services.technicians import Technicians
from collector.settings import Settings
from tests.support.agents import SimAgent
from tests.support.clock import Clock
from tests.support.collector import enrolled, report_free

NAME, PASSWORD = "anna", "correct horse battery"
CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]*)">')
LOGIN_CSRF = re.compile(r'name="csrf" value="([^"]+)"')



@pytest.fixture
async def client(tmp_path: Path, clock: Clock) -> AsyncIterator[TestClient]:
    """The collector with one technician account, its clock in the test's hands."""
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret",
                        clock_skew_seconds=10**9, notify_interval_seconds=0, startup_grace_seconds=0)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        await Technicians(test_client.app[keys.STORE], clock).add(NAME, PASSWORD)
        yield test_client


async def log_in(client: TestClient, name: str = NAME, password: str = PASSWORD) -> str:
    """Log the test client's cookie jar in through the login form; returns the session's CSRF token."""
    form = await client.get("/login")
    [token] = LOGIN_CSRF.findall(await form.text())
    response = await client.post("/login", data={"csrf": token, "name": name, "password": password},
                                 allow_redirects=False)
    assert response.status == 303, await response.text()
    return await csrf_of(client)


async def csrf_of(client: TestClient) -> str:
    """The CSRF token the logged-in session's pages carry."""
    page = await client.get("/")
    assert page.status == 200
    [token] = CSRF_META.findall(await page.text())
    assert token
    return token


async def critical_alert(client: TestClient, clock: Clock, free_gib: int = 2) -> SimAgent:
    """A PC of Acme Tooling reports C: with 2 GiB of 100 free (critical; 8 GiB: a warning); returns the PC."""
    agent = await enrolled(client)
    await report_free(client, agent, clock, free_gib)
    return agent
