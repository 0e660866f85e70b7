"""Guessing passwords is slow: after a few failures each one doubles the wait, per account and per address,
said plainly with 429 and Retry-After; and a login flood never runs more password checks at once than allowed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.settings import Settings
from collector.web.login import GATE
from collector.web.throttle import FREE_PER_ACCOUNT, FREE_PER_ADDRESS, LONGEST_WAIT, backoff, in_words
from tests.support.clock import Clock
from tests.web.conftest import LOGIN_CSRF, NAME, PASSWORD


@pytest.mark.parametrize(("failures", "free", "wait"), [
    (0, 5, timedelta(0)), (5, 5, timedelta(0)), (6, 5, timedelta(seconds=2)), (7, 5, timedelta(seconds=4)),
    (10, 5, timedelta(seconds=32)), (14, 5, timedelta(seconds=512)), (15, 5, LONGEST_WAIT),
    (10_000, 5, LONGEST_WAIT), (20, 20, timedelta(0)), (21, 20, timedelta(seconds=2)),
])
def test_the_wait_doubles_after_the_free_failures_up_to_a_ceiling(failures: int, free: int, wait: timedelta) -> None:
    assert backoff(failures, free) == wait


@pytest.mark.parametrize(("wait", "words"), [
    (timedelta(seconds=1), "1 second"), (timedelta(seconds=1.2), "2 seconds"), (timedelta(seconds=64), "64 seconds"),
    (timedelta(seconds=512), "9 minutes"), (LONGEST_WAIT, "15 minutes"),
])
def test_a_wait_is_said_in_words(wait: timedelta, words: str) -> None:
    assert in_words(wait) == words


async def attempt(client: TestClient, password: str, name: str = NAME,
                  headers: dict[str, str] | None = None) -> ClientResponse:
    """One try at the login form, as a browser makes it (fresh form, its CSRF token)."""
    [token] = LOGIN_CSRF.findall(await (await client.get("/login")).text())
    return await client.post("/login", data={"csrf": token, "name": name, "password": password},
                             headers=headers, allow_redirects=False)


async def assert_locked(response: ClientResponse, seconds: int, subject: str) -> None:
    assert response.status == 429
    assert response.headers["Retry-After"] == str(seconds)
    assert f"Too many failed logins {subject}: try again in {in_words(timedelta(seconds=seconds))}" \
        in await response.text()


async def test_sixty_wrong_passwords_in_a_row_lock_the_account_even_for_the_right_one(
    client: TestClient, clock: Clock
) -> None:
    statuses = [(await attempt(client, f"guess number {n}")).status for n in range(60)]
    assert statuses == [401] * (FREE_PER_ACCOUNT + 1) + [429] * (60 - FREE_PER_ACCOUNT - 1)
    await assert_locked(await attempt(client, PASSWORD), 2, "for this account")
    clock.advance(seconds=2)
    assert (await attempt(client, "yet another guess")).status == 401
    await assert_locked(await attempt(client, PASSWORD), 4, "for this account")
    clock.advance(seconds=3)
    await assert_locked(await attempt(client, PASSWORD), 1, "for this account")
    clock.advance(seconds=1)
    assert (await attempt(client, PASSWORD)).status == 303
    client.session.cookie_jar.clear()
    # The right password forgave the account's failures: a slip is a plain 401 again.
    assert (await attempt(client, "a slip of the finger")).status == 401
    assert (await attempt(client, PASSWORD)).status == 303


async def test_failures_over_many_names_from_one_address_lock_that_address(client: TestClient) -> None:
    for n in range(FREE_PER_ADDRESS + 1):
        assert (await attempt(client, "password123!", name=f"admin{n}")).status == 401
    await assert_locked(await attempt(client, PASSWORD), 2, "from this address")


async def test_a_login_beyond_the_concurrent_password_checks_is_answered_busy_at_once(client: TestClient) -> None:
    gate = client.app[GATE]
    assert gate.limit == 2
    held = [gate.enter() for _ in range(gate.limit)]  # two logins are being checked right now
    assert held == [True, True]
    busy = await attempt(client, PASSWORD)
    assert (busy.status, busy.headers["Retry-After"]) == (503, "2")
    assert "busy checking other logins: try again in a few seconds" in await busy.text()
    assert gate.busy == gate.limit, "a refused login took no slot"
    for _ in held:
        gate.leave()
    assert (await attempt(client, PASSWORD)).status == 303
    assert gate.busy == 0


async def test_behind_a_reverse_proxy_on_this_machine_each_browser_has_its_own_address(client: TestClient) -> None:
    attacker, owner = {"X-Forwarded-For": "198.51.100.9, 203.0.113.7"}, {"X-Forwarded-For": "203.0.113.8"}
    for n in range(FREE_PER_ADDRESS + 1):
        assert (await attempt(client, "password123!", name=f"admin{n}", headers=attacker)).status == 401
    await assert_locked(await attempt(client, PASSWORD, headers=attacker), 2, "from this address")
    assert (await attempt(client, PASSWORD, headers=owner)).status == 303


async def test_failures_counted_by_one_collector_process_lock_the_account_in_another(
    client: TestClient, clock: Clock, tmp_path: Path
) -> None:
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret", clock_skew_seconds=10**9,
                        notify_interval_seconds=0, startup_grace_seconds=0)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as other:
        for n in range(FREE_PER_ACCOUNT + 1):
            assert (await attempt(client, f"guess number {n}")).status == 401
        await assert_locked(await attempt(other, PASSWORD), 2, "for this account")
