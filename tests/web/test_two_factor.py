"""Two-factor login: the owner must set it up, a code works once, a recovery code works once, wrong codes are
throttled like wrong passwords, the owner's CLI resets it; and the browsers logged in are listed and revocable."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.auth import token_hash
from collector.cli import main
from collector.services.technicians import Technicians
from collector.settings import Settings
from collector.web.sessions import COOKIE
from collector.web.throttle import FREE_PER_ACCOUNT
from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.web.conftest import CSRF_META, LOGIN_CSRF, NAME, PASSWORD, code_for, enrol, enter_code, log_in

BEN, BENS = "ben", "another good password"


async def password_step(client: TestClient, name: str = NAME, password: str = PASSWORD) -> ClientResponse:
    """The login's first step, as a browser sends it."""
    [token] = LOGIN_CSRF.findall(await (await client.get("/login")).text())
    return await client.post("/login", data={"csrf": token, "name": name, "password": password},
                             allow_redirects=False)


async def log_out(client: TestClient) -> None:
    [csrf] = CSRF_META.findall(await (await client.get("/settings/two-factor")).text())
    assert (await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303


async def audit_actions(client: TestClient) -> list[tuple[str, str]]:
    entries = (await (await client.get("/api/v1/audit", headers=TECH)).json())["entries"]
    return [(e["actor"], e["action"]) for e in reversed(entries)]


async def test_the_owner_sets_two_factor_up_before_anything_else(client: TestClient) -> None:
    assert (await password_step(client)).headers["Location"] == "/"
    home = await client.get("/", allow_redirects=False)
    assert home.status == 303 and home.headers["Location"] == "/settings/two-factor"
    page = await client.get("/settings/two-factor")
    assert "needs two-factor login" in await page.text()
    [csrf] = CSRF_META.findall(await page.text())
    refused = await client.post("/settings/silences", data={"csrf": csrf, "comment": "x"})
    assert refused.status == 403 and "Set up two-factor login first" in await refused.text()
    assert (await client.get("/api/v1/alerts")).status == 401, "nor the API through the session"

    await client.post("/settings/two-factor/setup", data={"csrf": csrf})
    setup = await (await client.get("/settings/two-factor")).text()
    assert "<svg" in setup and "Scan this code" in setup
    wrong = await client.post("/settings/two-factor/enable", data={"csrf": csrf, "otp": "000000"})
    assert wrong.status == 422 and "not the code the app shows now" in await wrong.text()
    _, codes = await enrol(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert (await client.get("/", allow_redirects=False)).status == 200
    page = await (await client.get("/settings/two-factor")).text()
    assert "is <strong>on</strong>" in page and "Recovery codes left: 10" in page
    assert not any(code in page for code in codes), "recovery codes are shown once"
    async with client.app[keys.STORE].read() as tx:
        assert await tx.recovery_codes_left(1) == 10
    files = Path(client.app[keys.SETTINGS].db).parent.glob("collector.db*")
    stored = b"".join([await asyncio.to_thread(f.read_bytes) for f in files])
    assert not any(code.encode() in stored for code in codes), "only their hashes are kept"


async def test_a_code_logs_in_once_and_the_same_code_never_again(client: TestClient, clock: Clock) -> None:
    await log_in(client)  # enrols
    await log_out(client)
    clock.advance(minutes=5)
    asked = await password_step(client)
    assert asked.status == 303 and asked.headers["Location"].startswith("/login/code")
    assert (await client.get("/", allow_redirects=False)).headers["Location"].startswith("/login"), "not yet in"
    code = await code_for(client, NAME)
    assert (await enter_code(client, code)).status == 303
    assert (await client.get("/", allow_redirects=False)).status == 200
    await log_out(client)

    await password_step(client)
    replayed = await enter_code(client, code)
    assert replayed.status == 401 and "one used already" in await replayed.text()
    assert (await enter_code(client, await code_for(client, NAME))).status == 303, "the next step's code works"
    assert (NAME, "failed login (wrong or reused code)") in await audit_actions(client)


async def test_a_recovery_code_logs_in_once_and_is_recorded(client: TestClient, clock: Clock) -> None:
    await Technicians(client.app[keys.STORE], clock).add(BEN, BENS)
    await password_step(client, BEN, BENS)
    _, codes = await enrol(client)
    await log_out(client)

    await password_step(client, BEN, BENS)
    assert (await enter_code(client, codes[3].upper().replace("-", " "))).status == 303, "typed loosely"
    page = await (await client.get("/settings/two-factor")).text()
    assert "Recovery codes left: 9" in page
    await log_out(client)
    await password_step(client, BEN, BENS)
    assert (await enter_code(client, codes[3])).status == 401, "spent"
    assert (BEN, "login with a recovery code") in await audit_actions(client)


async def test_wrong_codes_are_throttled_like_wrong_passwords(client: TestClient) -> None:
    await log_in(client)
    await log_out(client)
    await password_step(client)
    statuses = [(await enter_code(client, f"{n:06d}")).status for n in range(FREE_PER_ACCOUNT + 2)]
    assert statuses == [401] * (FREE_PER_ACCOUNT + 1) + [429]
    locked = await enter_code(client, await code_for(client, NAME))
    assert locked.status == 429 and "Too many failed logins for this account" in await locked.text()


async def test_a_technician_may_turn_two_factor_on_and_off_the_owner_may_not_turn_it_off(
    client: TestClient, clock: Clock
) -> None:
    await Technicians(client.app[keys.STORE], clock).add(BEN, BENS)
    await password_step(client, BEN, BENS)
    assert (await client.get("/", allow_redirects=False)).status == 200, "a technician is not made to"
    await enrol(client)
    [csrf] = CSRF_META.findall(await (await client.get("/settings/two-factor")).text())
    off = await client.post("/settings/two-factor/disable", data={"csrf": csrf}, allow_redirects=False)
    assert off.status == 303
    async with client.app[keys.STORE].read() as tx:
        assert (await tx.technician(BEN)).totp_secret is None  # type: ignore[union-attr]
    assert (BEN, "two-factor turned on") in await audit_actions(client)
    assert (BEN, "two-factor turned off") in await audit_actions(client)
    await log_out(client)

    csrf = await log_in(client)
    refused = await client.post("/settings/two-factor/disable", data={"csrf": csrf})
    assert refused.status == 403 and "must keep two-factor login on" in await refused.text()


async def test_with_the_setting_relaxed_the_owner_logs_in_with_a_password_alone(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="t", owner_two_factor_optional=True)
    async with TestClient(TestServer(create_app(settings, clock=Clock()))) as client:
        await Technicians(client.app[keys.STORE], client.app[keys.CLOCK]).add(NAME, PASSWORD)
        await password_step(client)
        assert (await client.get("/", allow_redirects=False)).status == 200


async def test_the_owner_resets_a_lost_phone_from_the_cli(client: TestClient, clock: Clock) -> None:
    await log_in(client)
    code = await asyncio.to_thread(main, ["--db", client.app[keys.SETTINGS].db, "user", "reset-2fa", NAME], clock)
    assert code == 0
    assert (await client.get("/", allow_redirects=False)).headers["Location"].startswith("/login"), "logged out"
    await password_step(client)
    assert (await client.get("/", allow_redirects=False)).headers["Location"] == "/settings/two-factor"
    assert ("collector CLI", "two-factor reset") in await audit_actions(client)


async def as_browser(client: TestClient, cookies: dict[str, str], which: str) -> None:
    """Switch the test client's cookie jar to one of the browsers logged in before."""
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: cookies[which]})


async def test_sessions_are_listed_and_a_revoked_one_ends_at_once(client: TestClient, clock: Clock) -> None:
    cookies: dict[str, str] = {}
    await Technicians(client.app[keys.STORE], clock).add(BEN, BENS)
    for browser, name, password in (("anna-laptop", NAME, PASSWORD), ("anna-phone", NAME, PASSWORD),
                                    ("ben", BEN, BENS)):
        client.session.cookie_jar.clear()
        await log_in(client, name, password)
        [cookies[browser]] = [c.value for c in client.session.cookie_jar if c.key == COOKIE]
    ids = {browser: token_hash(cookie) for browser, cookie in cookies.items()}

    # Ben sees his own session only, and cannot end Anna's.
    page = await (await client.get("/settings/sessions")).text()
    assert ids["ben"] in page and ids["anna-laptop"] not in page and "127.0.0.1" in page and "aiohttp" in page
    [csrf] = CSRF_META.findall(page)
    await client.post(f"/settings/sessions/{ids['anna-laptop']}/revoke", data={"csrf": csrf})
    await as_browser(client, cookies, "anna-laptop")
    assert (await client.get("/", allow_redirects=False)).status == 200

    # Anna (the owner) sees everyone's, ends her phone's and Ben's: both are refused at their next request.
    page = await (await client.get("/settings/sessions")).text()
    assert all(ids[b] in page for b in ids) and "(this browser)" in page
    [csrf] = CSRF_META.findall(page)
    for browser in ("anna-phone", "ben"):
        ended = await client.post(f"/settings/sessions/{ids[browser]}/revoke", data={"csrf": csrf},
                                  allow_redirects=False)
        assert ended.status == 303 and ended.headers["Location"] == "/settings/sessions"
    for browser in ("anna-phone", "ben"):
        await as_browser(client, cookies, browser)
        assert (await client.get("/", allow_redirects=False)).headers["Location"].startswith("/login")
        assert (await client.get("/api/v1/alerts")).status == 401
    await as_browser(client, cookies, "anna-laptop")
    assert re.findall(r"/settings/sessions/([0-9a-f]{64})/revoke",
                      await (await client.get("/settings/sessions")).text()) == [ids["anna-laptop"]]


async def test_a_live_feed_open_in_a_revoked_browser_ends(client: TestClient) -> None:
    await log_in(client)
    [cookie] = [c.value for c in client.session.cookie_jar if c.key == COOKIE]
    stream = await client.get("/api/v1/feed")
    assert stream.status == 200
    assert (await stream.content.readline()).startswith(b"retry:")
    async with client.app[keys.STORE].transaction() as tx:
        assert await tx.end_web_session(token_hash(cookie))
    # The stream ends by itself (at the next event or keep-alive) instead of feeding a logged-out browser.
    rest = await asyncio.wait_for(stream.content.read(), timeout=30)
    assert b"event:" not in rest
