"""The dashboard in a real browser: Debian's Chromium driven by Playwright, against a real collector.

Screenshots of the main pages at desktop and phone width go to tests/artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import (
    Browser,
    BrowserContext,
    Download,
    Page,
    ViewportSize,
    async_playwright,
    expect,
)

from collector import keys
from collector.services.push_jobs import PushJobInput, PushJobs
from collector.web.throttle import FREE_PER_ACCOUNT
from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.web.conftest import NAME, PASSWORD, code_for, critical_alert
from tests.web.reports import report_week

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
SIZES: dict[str, ViewportSize] = {"desktop": {"width": 1280, "height": 800},
                                  "phone": {"width": 390, "height": 844},
                                  "laptop": {"width": 1366, "height": 768}}
WAIT_MS = 10_000
# Where a right password leads: the code, the owner's two-factor set-up, or the dashboard.
AFTER_PASSWORD = re.compile(r"/(login/code\?.*|settings/two-factor|)$")


@pytest.fixture
def chromium() -> Path:
    """Debian's Chromium (apt-get install chromium), never a browser Playwright downloads; CI never skips."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: apt-get install chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """The browser, headless, with nothing that would reach outside this machine."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(chromium), args=ARGS)
        yield launched
        await launched.close()


def base_url(client: TestClient) -> str:
    return str(client.make_url("")).rstrip("/")


async def shoot(page: Page, name: str, size: str) -> None:
    """Save a full-page screenshot as an artefact."""
    await page.screenshot(path=SCREENSHOTS / f"{name}-{size}.png", full_page=True)


async def new_page(browser: Browser, client: TestClient, size: str = "desktop",
                   **options: Any) -> tuple[BrowserContext, Page]:
    """A page in a fresh browser context (its own cookies) at a screen size."""
    context = await browser.new_context(base_url=base_url(client), viewport=SIZES[size], **options)
    context.set_default_timeout(WAIT_MS)
    return context, await context.new_page()


async def log_in(page: Page, client: TestClient) -> None:
    await page.goto("/")
    await expect(page).to_have_url(f"{page.url.split('/login')[0]}/login?next=%2F")
    await page.get_by_label("Name").fill(NAME)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await second_step(page, client)


async def second_step(page: Page, client: TestClient) -> None:
    """After the password: the code from the authenticator app, or, at the owner's first login, setting
    two-factor up (scanning is reading the key under the QR code)."""
    await page.wait_for_url(AFTER_PASSWORD)
    if "/login/code" in page.url:
        await page.get_by_label("Code from the app").fill(await code_for(client, NAME))
        await page.get_by_role("button", name="Log in").click()
    elif page.url.endswith("/settings/two-factor"):
        await page.get_by_role("button", name="Set up two-factor login").click()
        secret = await page.locator("code.secret").inner_text()
        await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).at(client.app[keys.CLOCK]()))
        await page.get_by_role("button", name="Turn on").click()
        await expect(page.get_by_role("heading", name="Recovery codes")).to_be_visible()
        await page.get_by_role("link", name="Go on to the dashboard").click()
    await expect(page.get_by_role("heading", name="Alerts")).to_be_visible()


async def test_a_technician_sees_an_alert_arrive_live_acknowledges_it_silences_and_logs_out(
    client: TestClient, clock: Clock, browser: Browser
) -> None:
    context, page = await new_page(browser, client)
    await page.goto("/")
    await shoot(page, "login", "desktop")
    await page.get_by_label("Name").fill(NAME)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    await log_in(page, client)
    await expect(page.locator("#live-status")).to_have_text("live")
    await page.evaluate("window.loadedOnce = true")

    agent = await critical_alert(client, clock)
    row = page.locator("#alerts li", has_text="C: on RECEPTION-01")
    await expect(row).to_be_visible()
    await expect(row).to_have_class("alert sev-critical state-open fresh")
    await expect(row.locator('[data-f="status"]')).to_have_text("open")
    assert await page.evaluate("window.loadedOnce") is True, "the alert must arrive without a reload"
    await shoot(page, "feed", "desktop")

    await row.get_by_role("button", name="Acknowledge").click()
    await expect(row.locator('[data-f="status"]')).to_have_text(f"acknowledged by {NAME}")
    await expect(row.get_by_role("button", name="Acknowledge")).to_be_hidden()
    assert await page.evaluate("window.loadedOnce") is True

    await row.get_by_role("link").click()
    await expect(page.locator("#alert-status")).to_have_text(f"acknowledged by {NAME}")
    await expect(page.locator(".history")).to_contain_text(f"acknowledged by {NAME}")
    await shoot(page, "alert", "desktop")
    await page.get_by_role("button", name="Silence like this").click()
    await expect(page.locator(".flash")).to_contain_text("Silenced alerts like this one")

    await page.get_by_role("link", name="Settings").click()
    await page.get_by_role("link", name="Silences").click()
    await expect(page.locator("table")).to_contain_text("kind=disk_health")
    form = page.locator("form", has=page.get_by_role("button", name="Create silence"))
    await form.get_by_label("Client").select_option("Acme Tooling")
    await form.get_by_label("Why").fill("server room maintenance on Saturday")
    await form.get_by_role("button", name="Create silence").click()
    await expect(page.locator(".flash")).to_contain_text("created")
    await expect(page.locator("table")).to_contain_text("server room maintenance on Saturday")

    await report_week(client, agent, clock)
    for path, name in (("/", "feed"), ("/clients", "clients"), (f"/devices/{agent.agent_id}", "device"),
                       ("/settings/channels", "channels"), ("/settings/silences", "silences")):
        await page.goto(path)
        await shoot(page, name, "desktop")
    await page.get_by_role("link", name="Enrolment tokens").click()
    await page.get_by_label("Client").fill("Bakery Berger")
    await page.get_by_label("Site", exact=True).fill("Shop")
    await page.get_by_role("button", name="Create token").click()
    await expect(page.locator("#new-token")).to_contain_text("fp_enrol_")
    await expect(page.locator("pre").first).to_contain_text("fieldpost-agent install --collector")
    await shoot(page, "tokens", "desktop")
    phone, small = await new_page(browser, client, "phone", storage_state=await context.storage_state())
    for path, name in (("/", "feed"), (f"/alerts/{await alert_id(page)}", "alert"), ("/clients", "clients"),
                       (f"/devices/{agent.agent_id}", "device"), ("/settings/silences", "silences")):
        await small.goto(path)
        await shoot(small, name, "phone")
        if name == "feed":  # the alerts come first on a phone: the filters are folded away until asked for
            first = await small.locator("#alerts > li").first.bounding_box()
            assert first is not None and first["y"] < SIZES["phone"]["height"] / 3, first
            assert not await small.get_by_label("Severity").is_visible()
            await small.get_by_text("Filters and alert sound").click()
            await expect(small.get_by_label("Severity")).to_be_visible()
    await phone.close()

    await page.get_by_role("button", name="Log out").click()
    await expect(page.locator(".flash")).to_have_text("Logged out.")
    await page.goto("/clients")
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    assert (await page.request.get("/api/v1/feed")).status == 401
    await context.close()


async def alert_id(page: Page) -> str:
    """The id of the first alert in the feed."""
    await page.goto("/")
    return await page.locator("#alerts li").first.get_attribute("data-alert-id") or ""


async def test_the_feed_is_readable_in_dark_mode_and_works_from_the_keyboard(
    client: TestClient, clock: Clock, browser: Browser
) -> None:
    context, page = await new_page(browser, client, color_scheme="dark")
    await log_in(page, client)
    await critical_alert(client, clock, 8)
    await expect(page.locator("#alerts li.sev-warning")).to_be_visible()
    background = await page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 18, 22)", "dark mode follows prefers-color-scheme"
    await shoot(page, "feed-dark", "desktop")
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"
    await page.keyboard.press("Enter")
    for _ in range(40):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.classList.contains('alert-main')"):
            break
    await page.keyboard.press("Enter")
    await expect(page.locator("#alert-status")).to_have_text("open")
    await context.close()


async def downloaded(download: Download) -> bytes:
    """What the browser downloaded."""
    return await asyncio.to_thread(Path(await download.path()).read_bytes)


async def test_a_technician_opens_an_incident_from_an_alert_times_the_work_and_sees_it_billed(
    client: TestClient, clock: Clock, browser: Browser
) -> None:
    context, page = await new_page(browser, client)
    await log_in(page, client)
    await page.get_by_role("link", name="Billing").click()
    await page.get_by_role("link", name="Contracts and rates").click()
    rates = page.locator("form", has=page.get_by_role("button", name="Save rates"))
    await rates.get_by_label("Per hour").fill("95.00")
    await rates.get_by_role("button", name="Save rates").click()
    await expect(page.locator(".flash")).to_contain_text("Break/fix rates for every client saved")
    await expect(page.locator("#rates")).to_contain_text("95.00")

    await page.get_by_role("link", name="Feed").click()
    await expect(page.locator("#live-status")).to_have_text("live")
    await page.evaluate("window.loadedOnce = true")
    await critical_alert(client, clock)
    row = page.locator("#alerts li", has_text="C: on RECEPTION-01")
    await expect(row).to_be_visible()
    assert await page.evaluate("window.loadedOnce") is True, "the alert must arrive without a reload"

    await row.get_by_role("link").click()
    await page.get_by_role("button", name="Open an incident").click()
    await expect(page.locator(".flash")).to_have_text("Incident 1 opened.")
    await expect(page.get_by_role("heading", level=1)).to_contain_text("C: on RECEPTION-01")
    await page.get_by_role("button", name="Start timer").click()
    await expect(page.locator("#timer-state")).to_contain_text("Your timer runs since")
    clock.advance(minutes=70)
    await page.get_by_role("button", name="Stop timer").click()
    await expect(page.locator(".flash")).to_have_text("Timer stopped: 70 min recorded.")
    entry = page.locator("#time-entries tbody tr")
    await expect(entry).to_have_count(1)
    await expect(entry).to_contain_text(NAME)
    await expect(entry.locator(".billed")).to_have_text("billable")
    await expect(entry).to_contain_text("EUR 118.75")  # 70 min rounds up to 75 at 95.00 an hour
    # The timer ran on while the technician was at lunch: the entry is corrected, and so is its price.
    await entry.get_by_text("Edit").click()
    await entry.get_by_label("Minutes").fill("40")
    await entry.get_by_role("button", name="Save").click()
    await expect(page.locator(".flash")).to_have_text("Time entry 1 corrected.")
    await expect(entry).to_contain_text("EUR 95.00")  # 40 min: the 60-minute minimum at 95.00
    await page.get_by_text("Retitle").click()
    await page.get_by_label("Title the client reads").fill("Disk C: full on the reception PC")
    await page.get_by_role("button", name="Save title").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Disk C: full on the reception PC")
    notes = page.get_by_role("region", name="Notes")
    await notes.get_by_role("textbox").fill("Removed 30 GiB of old installers; C: has room again.")
    await notes.get_by_role("button", name="Add note").click()
    await expect(notes.locator(".history")).to_contain_text("old installers")
    await expect(page.get_by_role("region", name="Alerts")).to_contain_text("opened by rule")
    await shoot(page, "incident", "desktop")
    incident_url = page.url

    await page.get_by_role("link", name="2026-11 billing for Acme Tooling").click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("Acme Tooling: 2026-11")
    month = page.locator("#month-time tbody tr")
    await expect(month).to_have_count(1)
    await expect(month).to_contain_text("billable")
    await expect(month).to_contain_text("EUR 95.00")
    await expect(page.locator("#invoice-lines")).to_contain_text(
        "Disk C: full on the reception PC, 23 Nov 2026, 40 min worked, 60 min billed")
    await expect(page.locator("#invoice-total")).to_have_text("EUR 95.00")
    await shoot(page, "billing", "desktop")
    billing_url = page.url

    async with page.expect_download() as csv:
        await page.get_by_role("link", name="Invoice as CSV", exact=True).click()
    assert "95.00" in (await downloaded(await csv.value)).decode()
    async with page.expect_download() as pdf:
        await page.get_by_role("link", name="Value report (PDF)").click()
    assert (await downloaded(await pdf.value)).startswith(b"%PDF")
    await page.get_by_role("button", name="Issue invoice for 2026-11").click()
    await expect(page.locator(".flash")).to_have_text("Invoice INV-00001 issued, due 2026-12-07.")
    async with page.expect_download() as issued:
        await page.locator("#issued-live").get_by_role("link", name="PDF").click()
    assert (await downloaded(await issued.value)).startswith(b"%PDF")
    await page.get_by_role("link", name="Value report", exact=True).click()
    await expect(page.get_by_role("heading", level=1)).to_have_text("IT service report for Acme Tooling")
    await expect(page.locator("body")).to_contain_text("old installers")

    phone, small = await new_page(browser, client, "phone", storage_state=await context.storage_state())
    for url, name in ((incident_url, "incident"), (billing_url, "billing")):
        await small.goto(url)
        await shoot(small, name, "phone")
        width = await small.evaluate("document.documentElement.scrollWidth")
        assert width <= SIZES["phone"]["width"], f"the {name} page is wider than a phone: {width}px"
    await phone.close()
    await context.close()


async def test_a_guessed_account_says_when_to_try_again_and_lets_the_technician_in_after_it(
    client: TestClient, clock: Clock, browser: Browser
) -> None:
    context, page = await new_page(browser, client)
    await page.goto("/login")

    async def submit(password: str) -> None:
        await page.get_by_label("Name").fill(NAME)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Log in").click()

    for n in range(FREE_PER_ACCOUNT + 1):
        await submit(f"guess number {n}")
        await expect(page.get_by_role("alert")).to_have_text("Wrong name or password.")
    await submit(PASSWORD)
    await expect(page.get_by_role("alert")).to_contain_text(
        "Too many failed logins for this account: try again in 2 seconds")
    await shoot(page, "login-throttled", "desktop")
    clock.advance(seconds=2)
    await submit(PASSWORD)
    await second_step(page, client)
    await context.close()


async def test_the_owner_sets_up_two_factor_by_qr_code_and_logs_in_with_the_code(
    client: TestClient, clock: Clock, browser: Browser
) -> None:
    context, page = await new_page(browser, client)
    await page.goto("/login")
    await page.get_by_label("Name").fill(NAME)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page).to_have_url(re.compile(r"/settings/two-factor$"))
    await expect(page.get_by_role("alert")).to_contain_text("The owner's account needs two-factor login")
    await page.get_by_role("button", name="Set up two-factor login").click()
    await expect(page.locator("figure.qr svg")).to_be_visible()
    await shoot(page, "two-factor-setup", "desktop")
    secret = await page.locator("code.secret").inner_text()
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).at(clock()))
    await page.get_by_role("button", name="Turn on").click()
    await expect(page.locator("ul.codes li")).to_have_count(10)
    await page.get_by_role("link", name="Go on to the dashboard").click()
    await expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    await page.get_by_role("button", name="Log out").click()

    clock.advance(minutes=1)
    await page.get_by_label("Name").fill(NAME)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Two-factor code")).to_be_visible()
    await shoot(page, "login-code", "desktop")
    await page.get_by_label("Code from the app").fill("123456" if pyotp.TOTP(secret).at(clock()) != "123456"
                                                      else "654321")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_contain_text("Wrong code")
    await page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).at(clock()))
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("heading", name="Alerts")).to_be_visible()
    await context.close()


async def wider_than(page: Page, width: int) -> list[str]:
    """What sticks out past `width` px: the page's scroll width, and the elements whose right edge is beyond it."""
    return await page.evaluate(
        """(width) => {
            const over = [...document.querySelectorAll('body *')]
                // What scrolls inside its own box (a wide table in .scroll) does not widen the page.
                .filter(e => e.getBoundingClientRect().right > width + 0.5 && !e.parentElement.closest('.scroll'))
                .map(e => `${e.tagName.toLowerCase()}${e.id ? '#' + e.id : ''}`
                          + ` ${Math.round(e.getBoundingClientRect().right)}`);
            return document.scrollingElement.scrollWidth > width
                ? [`scrollWidth ${document.scrollingElement.scrollWidth}`, ...over.slice(0, 8)] : [];
        }""",
        width,
    )


async def test_the_main_technician_pages_fit_a_390px_phone_and_a_1366px_laptop_without_sideways_scrolling(
    client: TestClient, clock: Clock, browser: Browser
) -> None:
    rates = {"effective_from": "2020-01-01", "hourly_rate": "90.00", "minimum_minutes": 60, "increment_minutes": 15}
    assert (await client.post("/api/v1/rates", json=rates, headers=TECH)).status == 201
    agent = await critical_alert(client, clock)
    await report_week(client, agent, clock)
    alerts = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    opened = await client.post("/api/v1/incidents", json={"alert_id": alerts[0]["alert_id"]}, headers=TECH)
    incident = (await opened.json())["incident_id"]
    await client.post(f"/api/v1/incidents/{incident}/time", headers=TECH,
                      json={"start": clock.now.isoformat(), "minutes": 45, "on_site": True, "note": "freed space"})
    await client.post(f"/api/v1/incidents/{incident}/notes", headers=TECH,
                      json={"text": "Moved the scanner archive to \\\\NAS01\\archive\\scans\\2019-2024 for good."})
    await client.post("/api/v1/clients/Acme%20Tooling/contacts", headers=TECH, json={
        "name": "Eva Weber-Schönberger", "email": "eva.weber-schoenberger@acme-tooling.example",
        "phone": "+49 30 1234 5678", "role": "owner and office manager", "billing": True})
    made = await PushJobs(client.app[keys.STORE], clock).create(PushJobInput(
        device=agent.agent_id, name="weekly-image-to-nas", schedule="0 22 * * 0", timezone="Europe/Berlin"))
    push = f"/api/v1/push/{made.token}"
    await client.post(f"{push}/start")
    await client.post(f"{push}/fail", data=b"restic: Fatal: unable to save snapshot: no space left on device " * 3)
    month = f"{clock.now:%Y-%m}"
    pages = {
        "feed": "/",
        "alert": f"/alerts/{alerts[0]['alert_id']}",
        "incidents": "/incidents",
        "incident": f"/incidents/{incident}",
        "billing": f"/billing/clients/Acme%20Tooling?month={month}",
        "value-report": f"/billing/clients/Acme%20Tooling/report?month={month}",
        "clients": "/clients",
        "client": "/clients/Acme%20Tooling",
        "backups": "/backups",
        "device": f"/devices/{agent.agent_id}",
        "tokens": "/settings/tokens",
        "channels": "/settings/channels",
        "silences": "/settings/silences",
        "sessions": "/settings/sessions",
        "contracts": "/billing/contracts",
        "billing-settings": "/billing/settings",
    }
    wide = {}
    # As a phone lays pages out (a page without a viewport meta tag is drawn 980 px wide and shrunk), and a laptop.
    for size, options in (("phone", {"is_mobile": True, "has_touch": True}), ("laptop", {})):
        context, page = await new_page(browser, client, size, **options)
        await log_in(page, client)
        for name, path in pages.items():
            shown = await page.goto(path)
            assert shown is not None and shown.status == 200, path
            await shoot(page, name, size)
            if over := await wider_than(page, SIZES[size]["width"]):
                wide[f"{name} at {size} width"] = over
        await context.close()
    assert wide == {}, "pages wider than the screen"
