"""A real collector app for the dashboard's tests, a technician account, and a logged-in browser session."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pyotp
import pytest
from aiohttp import ClientResponse
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
SECRET = re.compile(r'<code class="secret">([A-Z2-7]+)</code>')
RECOVERY = re.compile(r"<li><code>(\w{5}-\w{5})</code></li>")



@pytest.fixture
async def client(tmp_path: Path, clock: Clock) -> AsyncIterator[TestClient]:
    """The collector with one technician account, its clock in the test's hands."""
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret",
                        clock_skew_seconds=10**9, notify_interval_seconds=0, startup_grace_seconds=0)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        await Technicians(test_client.app[keys.STORE], clock).add(NAME, PASSWORD)
        yield test_client


async def log_in(client: TestClient, name: str = NAME, password: str = PASSWORD) -> str:
    """Log the test client's cookie jar in through the login form (and the code, when two-factor is on; an owner
    who has not set two-factor up does so, as the dashboard asks); returns the session's CSRF token."""
    form = await client.get("/login")
    [token] = LOGIN_CSRF.findall(await form.text())
    response = await client.post("/login", data={"csrf": token, "name": name, "password": password},
                                 allow_redirects=False)
    assert response.status == 303, await response.text()
    if response.headers["Location"].startswith("/login/code"):
        response = await enter_code(client, await code_for(client, name))
        assert response.status == 303, await response.text()
    home = await client.get("/", allow_redirects=False)
    if home.status == 303 and home.headers["Location"] == "/settings/two-factor":
        await enrol(client)
    return await csrf_of(client)


async def enter_code(client: TestClient, code: str) -> ClientResponse:
    """Answer the login's second step with this code."""
    form = await client.get("/login/code")
    [token] = LOGIN_CSRF.findall(await form.text())
    return await client.post("/login/code", data={"csrf": token, "otp": code}, allow_redirects=False)


async def code_for(client: TestClient, name: str) -> str:
    """The code the person's authenticator app shows now (or, if that one was used, the next step's, which the
    collector also takes), computed from the secret the collector keeps."""
    async with client.app[keys.STORE].read() as tx:
        technician = await tx.technician(name)
    assert technician is not None and technician.totp_secret is not None
    totp = pyotp.TOTP(technician.totp_secret)
    now = totp.timecode(client.app[keys.CLOCK]())
    last = technician.totp_last_step if technician.totp_last_step is not None else now - 2
    return totp.generate_otp(max(now, last + 1))


async def enrol(client: TestClient) -> tuple[str, list[str]]:
    """Set up two-factor for the logged-in person through the dashboard, as a person with a phone does; returns
    the secret (as the page shows it) and the recovery codes."""
    page = await client.get("/settings/two-factor")
    [csrf] = CSRF_META.findall(await page.text())
    started = await client.post("/settings/two-factor/setup", data={"csrf": csrf}, allow_redirects=False)
    assert started.status == 303, await started.text()
    [secret] = SECRET.findall(await (await client.get("/settings/two-factor")).text())
    code = pyotp.TOTP(secret).at(client.app[keys.CLOCK]())
    enabled = await client.post("/settings/two-factor/enable", data={"csrf": csrf, "otp": code})
    assert enabled.status == 200, await enabled.text()
    return secret, RECOVERY.findall(await enabled.text())


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
