"""The dashboard's pages and forms against a real collector: what they show, and what their forms change."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.offline import ALIVE, announce_downtime, sweep
from collector.services.technicians import Technicians
from collector.settings import Settings
from collector.web import add_nav
from collector.web.render import render
from collector.web.sessions import page
from shared.signals import SIGNALS
from tests.collector.test_security_center import defender, detection, windows
from tests.e2e.harness import BIN
from tests.notify_receivers import WebhookReceiver
from tests.support.agents import REPORTS, SimAgent
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, report_free
from tests.web.conftest import NAME, PASSWORD, critical_alert, log_in
from tests.web.reports import SERIAL, report_week

POLYLINE = re.compile(r'<polyline class="line (s\d)( dashed)?" points="([^"]+)"/>')


def charts(page: str) -> dict[str, list[tuple[bool, int]]]:
    """Each chart's lines as (dashed, number of points), by the chart's caption."""
    found = {}
    for figure in page.split('<figure class="chart">')[1:]:
        caption = html.unescape(figure.split("<figcaption>")[1].split("</figcaption>")[0])
        found[caption] = [(bool(dashed), len(points.split()))
                          for _, dashed, points in POLYLINE.findall(figure)]
    return found


async def alert_of(client: TestClient, subject: str) -> dict:
    alerts = (await (await client.get("/api/v1/alerts?state=all", headers=TECH)).json())["alerts"]
    [alert] = [a for a in alerts if a["subject"] == subject]
    return alert


async def history(client: TestClient, alert_id: int) -> list[tuple[str, str, str]]:
    detail = await (await client.get(f"/api/v1/alerts/{alert_id}", headers=TECH)).json()
    return [(e["what"], e["by"], e["detail"].get("note", "")) for e in detail["history"]]


async def test_the_device_page_charts_a_week_of_reports(client: TestClient, clock: Clock) -> None:
    await log_in(client)
    agent = await enrolled(client)
    await report_week(client, agent, clock)
    page = await (await client.get(f"/devices/{agent.agent_id}")).text()
    assert charts(page) == {
        "Disk temperature (°C)": [(False, 7)],
        "Reallocated sectors": [(False, 7)],
        "Filesystem fill (% used)": [(False, 7), (True, 2)],
        "Backup size per job": [(False, 7)],
        "Backup duration per job (minutes)": [(False, 7)],
    }
    assert "C: forecast: full in about 2 days" in page
    assert SERIAL in page and "56.0 GiB" in page


async def test_the_clients_page_shows_each_signal_of_each_device_at_a_glance(
    client: TestClient, clock: Clock
) -> None:
    await log_in(client)
    quiet, busy = await enrolled(client, "FRONT-DESK"), await enrolled(client, "RECEPTION-01")
    await report_free(client, quiet, clock, 50)
    await report_week(client, busy, clock)
    page = await (await client.get("/clients")).text()
    rows = {}
    for row in page.split("<tr")[2:]:
        [hostname] = re.findall(r'<a href="/devices/[^"]+">([^<]+)</a>', row)
        rows[hostname] = re.findall(r"badge sev-(\w+)", row)
    # Disks, Reboot, Printers, Backups, Updates, then the later signals' columns (Security: none reported)
    assert {host: badges[:5] for host, badges in rows.items()} == {
        "FRONT-DESK": ["ok", "none", "none", "none", "none"],
        "RECEPTION-01": ["critical", "none", "none", "ok", "none"]}  # reallocating more each day
    headings = [s.label for s in SIGNALS if s.at_a_glance]
    assert rows["FRONT-DESK"][headings.index("Encryption")] == "none"
    assert rows["FRONT-DESK"][headings.index("Security")] == "none"


async def test_the_alert_page_shows_reasons_smart_attributes_and_the_backup_runs(
    client: TestClient, clock: Clock
) -> None:
    await log_in(client)
    agent = await enrolled(client)
    await report_week(client, agent, clock)
    disk = await alert_of(client, f"disk:{SERIAL}")
    page = html.unescape(await (await client.get(f"/alerts/{disk['alert_id']}")).text())
    assert "<li>24 reallocated sectors, up from 0 on 23 Nov</li>" in page
    assert "Reallocated_Sector_Ct" in page and "Power on hours" in page
    assert "opened</span> by rule" in page


async def test_the_forms_acknowledge_snooze_and_resolve_as_the_logged_in_technician(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    alert = await alert_of(client, "fs:C:")
    path = f"/alerts/{alert['alert_id']}"
    for action, fields in (("acknowledge", {"note": "calling the client"}), ("snooze", {"minutes": "60"}),
                           ("resolve", {"note": "moved the archive to the NAS"})):
        response = await client.post(f"{path}/{action}", data={"csrf": csrf, **fields}, allow_redirects=False)
        assert (response.status, response.headers["Location"]) == (303, path)
    assert await history(client, alert["alert_id"]) == [
        ("opened", "rule", ""), ("acknowledged", NAME, "calling the client"), ("snoozed", NAME, ""),
        ("resolved", NAME, "moved the archive to the NAS"),
    ]
    again = await client.post(f"{path}/resolve", data={"csrf": csrf})
    assert f"Not done: alert {alert['alert_id']} is already resolved." in await again.text()


async def test_silence_like_this_holds_that_rule_on_that_device(client: TestClient, clock: Clock) -> None:
    csrf = await log_in(client)
    agent = await critical_alert(client, clock)
    alert = await alert_of(client, "fs:C:")
    response = await client.post(f"/alerts/{alert['alert_id']}/silence",
                                 data={"csrf": csrf, "minutes": "240"})
    assert "Silenced alerts like this one until 2026-11-23 13:00 UTC" in html.unescape(await response.text())
    [silence] = (await (await client.get("/api/v1/silences", headers=TECH)).json())["silences"]
    assert silence["matchers"] == {"client": "Acme Tooling", "device": agent.agent_id, "kind": "disk_health"}
    assert (silence["created_by"], silence["ends_at"]) == (NAME, "2026-11-23T13:00:00+00:00")
    expire = await client.post(f"/settings/silences/{silence['silence_id']}/expire", data={"csrf": csrf})
    assert f"Silence {silence['silence_id']} expired." in await expire.text()
    assert (await (await client.get("/api/v1/silences", headers=TECH)).json())["silences"] == []


async def test_a_recurring_maintenance_window_is_checked_like_the_apis(client: TestClient) -> None:
    csrf = await log_in(client)
    window = {"csrf": csrf, "client": "Acme Tooling", "cron": "0 22 * * 6", "duration_minutes": "120",
              "comment": "Saturday patching"}
    bad = await client.post("/settings/silences", data={**window, "cron": "every saturday"})
    assert bad.status == 422
    assert "Not saved" in await bad.text()
    good = await client.post("/settings/silences", data=window)
    assert "Saturday patching" in await good.text()
    [silence] = (await (await client.get("/api/v1/silences", headers=TECH)).json())["silences"]
    assert (silence["cron"], silence["duration_minutes"]) == ("0 22 * * 6", 120)


async def test_a_new_token_shows_the_install_commands_enrols_a_pc_and_can_be_revoked(
    client: TestClient,
) -> None:
    csrf = await log_in(client)
    created = await client.post("/settings/tokens", data={"csrf": csrf, "client": "Bakery Berger",
                                                          "site": "Shop", "expires_days": "7", "uses": "5"})
    assert created.status == 201
    page = html.unescape(await created.text())
    [token] = re.findall(r'<code class="token" id="new-token">(fp_enrol_[\w-]+)</code>', page)
    for system in ("Linux", "Windows", "macOS"):
        assert f"<h3>{system}" in page
    assert f"fieldpost-agent install --collector {client.make_url('')}".rstrip("/") in page
    assert f"-Token '{token}'" in page
    first = SimAgent("TILL-01")
    assert (await client.post("/api/v1/enrol", json=first.enrol_body(token))).status == 201
    listing = await (await client.get("/settings/tokens")).text()
    [revoke] = re.findall(r'action="(/settings/tokens/[0-9a-f]{64}/revoke)"', listing)
    assert "Token revoked." in await (await client.post(revoke, data={"csrf": csrf})).text()
    second = await client.post("/api/v1/enrol", json=SimAgent("TILL-02").enrol_body(token))
    assert "revoked" in await second.text()


async def test_the_token_form_offers_a_week_and_fifty_pcs_and_says_why(client: TestClient) -> None:
    csrf = await log_in(client)
    form = await (await client.get("/settings/tokens")).text()
    assert "by default it works for 7 days and 50 PCs" in form
    assert '<option value="7" selected>7 days</option>' in form
    assert 'name="uses" type="number" min="1" value="50"' in form
    made = await client.post("/settings/tokens", data={"csrf": csrf, "client": "Bakery Berger", "site": "Shop",
                                                       "expires_days": "7", "uses": "50"})
    assert made.status == 201
    async with client.app[keys.STORE].read() as tx:
        [token] = await tx.enrolment_tokens()
    assert (token.expires_at - token.created_at, token.uses_left) == (timedelta(days=7), 50)


async def test_the_install_command_reaches_a_collector_on_another_machine_over_https(client: TestClient) -> None:
    csrf = await log_in(client)
    form = {"csrf": csrf, "client": "Bakery Berger", "site": "Shop", "expires_days": "7"}
    # Reached as fp.example.net over plain http (a LAN address): agents would refuse http there.
    created = await client.post("/settings/tokens", data=form, headers={"Host": "fp.example.net:8470"})
    assert "fieldpost-agent install --collector https://fp.example.net:8470 --token" in html.unescape(
        await created.text())
    listed = await client.get("/settings/tokens", headers={"Host": "fp.example.net:8470"})
    assert 'name="collector_url" value="https://fp.example.net:8470"' in await listed.text()


async def test_a_channel_is_created_from_the_form_and_sends_a_test_message(client: TestClient) -> None:
    csrf = await log_in(client)
    refused = await client.post("/settings/channels",
                                data={"csrf": csrf, "name": "phone", "url": "nothing://x"})
    assert refused.status == 422
    async with WebhookReceiver() as hook:
        form = {"csrf": csrf, "name": "phone", "url": hook.apprise_url(), "min_severity": "critical",
                "clients": "Acme Tooling, Bakery Berger"}
        created = await client.post("/settings/channels", data=form)
        assert "Channel &#39;phone&#39; created." in await created.text()
        [channel] = (await (await client.get("/api/v1/channels", headers=TECH)).json())["channels"]
        assert channel["min_severity"] == "critical"
        assert channel["clients"] == ["Acme Tooling", "Bakery Berger"]
        tested = await client.post("/settings/channels/phone/test", data={"csrf": csrf})
        assert "Test message to &#39;phone&#39; sent" in await tested.text()
        [message] = await hook.wait_for(1)
        assert "phone" in message.body["title"]


async def test_a_channel_is_edited_switched_off_and_deleted_from_the_dashboard(client: TestClient) -> None:
    csrf = await log_in(client)
    async with WebhookReceiver() as hook, WebhookReceiver() as moved:
        await client.post("/settings/channels", data={"csrf": csrf, "name": "phone", "url": hook.apprise_url()})
        edited = await client.post("/settings/channels/phone/edit",
                                   data={"csrf": csrf, "url": moved.apprise_url(), "min_severity": "critical"})
        assert "Channel &#39;phone&#39; changed." in await edited.text()
        refused = await client.post("/settings/channels/phone/edit", data={"csrf": csrf, "url": "nothing://x"})
        assert "Channel &#39;phone&#39; not changed" in await refused.text()
        off = await client.post("/settings/channels/phone/disable", data={"csrf": csrf})
        page = await off.text()
        assert "switched off" in page and "Switch on" in page and "(off)" in page
        [channel] = (await (await client.get("/api/v1/channels", headers=TECH)).json())["channels"]
        assert channel["min_severity"] == "critical" and channel["disabled"]
        assert str(moved.port) in channel["url"]
        gone = await client.post("/settings/channels/phone/delete", data={"csrf": csrf})
        assert "Channel &#39;phone&#39; deleted." in await gone.text()
        assert (await (await client.get("/api/v1/channels", headers=TECH)).json())["channels"] == []


async def test_a_devices_class_and_a_clients_business_hours_are_set_from_the_dashboard(client: TestClient) -> None:
    csrf = await log_in(client)
    agent = await enrolled(client, "DESK-01")
    page_text = await (await client.get(f"/devices/{agent.agent_id}")).text()
    assert "its agent names none: judged as a server" in page_text
    done = await client.post(f"/devices/{agent.agent_id}/class", data={"csrf": csrf, "device_class": "laptop"})
    assert "DESK-01 is judged as a laptop." in html.unescape(await done.text())
    assert "set by hand" in await (await client.get(f"/devices/{agent.agent_id}")).text()
    refused = await client.post(f"/devices/{agent.agent_id}/class", data={"csrf": csrf, "device_class": "toaster"})
    assert "Not changed" in html.unescape(await refused.text())
    assert "Business hours: mon,tue,wed,thu,fri 08:00 to 18:00" in await (await client.get("/clients")).text()
    saved = await client.post("/clients/Acme Tooling/hours",
                              data={"csrf": csrf, "days": "mon-sat", "start": "07:00", "timezone": "Europe/Vienna"})
    text = html.unescape(await saved.text())
    assert "Business hours of Acme Tooling saved." in text
    assert "Business hours: mon,tue,wed,thu,fri,sat 07:00 to 18:00" in text and "Europe/Vienna" in text
    bad = await client.post("/clients/Acme Tooling/hours", data={"csrf": csrf, "timezone": "Mars/Base"})
    assert "unknown time zone" in html.unescape(await bad.text())


async def test_the_feed_page_says_when_the_collector_itself_was_down(client: TestClient, clock: Clock) -> None:
    await log_in(client)
    assert "collector itself was down" not in await (await client.get("/")).text()
    store = client.app[keys.STORE]
    async with store.transaction() as tx:
        await tx.set_meta(ALIVE, (clock.now - timedelta(hours=3)).isoformat())
    await announce_downtime(store, client.app[keys.SETTINGS], clock.now)
    page_text = html.unescape(re.sub(r"<[^>]+>", "", await (await client.get("/")).text()))
    assert "The collector itself was down from" in page_text
    clock.advance(days=8)
    assert "collector itself was down" not in await (await client.get("/")).text(), "a week later: history"


async def test_the_feed_page_lists_malware_the_antivirus_blocked_for_a_week(client: TestClient, clock: Clock) -> None:
    await log_in(client)
    laptop = await enrolled(client, "GUEST-LAPTOP")
    usb = detection("e1", at=clock.now - timedelta(minutes=3))
    body = laptop.body(laptop.envelope([windows(defender(updated=clock.now), detections=(usb,), at=clock.now)]))
    assert (await client.post(REPORTS, data=body, headers=laptop.headers(body))).status == 200
    page_text = html.unescape(re.sub(r"<[^>]+>", "", await (await client.get("/")).text()))
    assert ("Acme Tooling / Main office / GUEST-LAPTOP: blocked malware (quarantined): Virus:DOS/EICAR_Test_File "
            "in E:\\setup\\eicar.com") in " ".join(page_text.split())
    assert "GUEST-LAPTOP" not in await (await client.get("/?client=Other")).text()
    clock.advance(days=8)
    assert "blocked malware" not in await (await client.get("/")).text(), "a week later: the value report keeps it"


async def test_the_feed_filters_by_client_and_severity(client: TestClient, clock: Clock) -> None:
    await log_in(client)
    await report_free(client, await enrolled(client, "RECEPTION-01"), clock, 2)
    await report_free(client, await enrolled(client, "FRONT-DESK"), clock, 8)
    assert await feed_rows(client, "/") == ["C: on FRONT-DESK", "C: on RECEPTION-01"], "newest first"
    assert await feed_rows(client, "/?severity=critical") == ["C: on RECEPTION-01"]
    assert await feed_rows(client, "/?severity=warning&client=Acme+Tooling") == ["C: on FRONT-DESK"]
    assert await feed_rows(client, "/?client=Bakery+Berger") == []
    assert await feed_rows(client, "/?state=resolved") == []


async def test_the_feed_filtered_by_a_signal_shows_every_rule_of_it(client: TestClient, clock: Clock) -> None:
    await log_in(client)
    await report_free(client, await enrolled(client, "RECEPTION-01"), clock, 2)
    clock.advance(minutes=10)
    app = client.app
    await sweep(app[keys.STORE], app[keys.SETTINGS], app[keys.AVAILABILITY], clock.now, app[keys.ON_CHANGE])
    offline = ["RECEPTION-01 is offline: last heartbeat 2026-11-23 09"]
    assert await feed_rows(client, "/?kind=heartbeat") == offline
    assert await feed_rows(client, "/?kind=heartbeat.offline") == offline
    assert await feed_rows(client, "/?kind=disk_health") == ["C: on RECEPTION-01"]
    assert "heartbeat" in (await (await client.get("/")).text()).split('name="kind"')[1].split("</select>")[0]


async def feed_rows(client: TestClient, path: str) -> list[str]:
    """The alerts a feed page lists (not its blank row template), by where their summary starts."""
    page = await (await client.get(path)).text()
    listed = page.split('<ol id="alerts"')[1].split("</ol>")[0]
    return [summary.split(":")[0] + ":" + summary.split(":")[1] for summary in
            re.findall(r'<span class="summary" data-f="summary">([^<]+)</span>', listed)]


@pytest.mark.slow
async def test_the_first_technician_is_created_from_the_cli(tmp_path: Path) -> None:
    db = tmp_path / "collector.db"

    def user(*args: str, password: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([BIN / "fieldpost-collector", "--db", db, "user", *args, "--password-stdin"],
                              input=password + "\n", capture_output=True, text=True, check=False)

    short = await asyncio.to_thread(user, "add", "anna", password="short")
    assert (short.returncode, short.stderr.strip()) == (
        1, "fieldpost-collector user: the password must have at least 10 characters")
    added = await asyncio.to_thread(user, "add", "anna", password="a long pass phrase")
    assert added.returncode == 0, added.stderr
    twice = await asyncio.to_thread(user, "add", "anna", password="a long pass phrase")
    assert "there is a technician named 'anna' already" in twice.stderr
    async with TestClient(TestServer(create_app(Settings(db=str(db), admin_token="t")))) as client:
        await log_in(client, "anna", "a long pass phrase")
        changed = await asyncio.to_thread(user, "password", "anna", password="another pass phrase")
        assert changed.returncode == 0, changed.stderr
        logged_out = await client.get("/clients", allow_redirects=False)
        assert logged_out.status == 303, "a new password logs the browsers out"
        await log_in(client, "anna", "another pass phrase")


async def test_a_later_section_joins_the_navigation_and_the_login_guard(tmp_path: Path) -> None:
    async def inventory(request: web.Request) -> web.Response:
        return render(request, "missing.html", what="No inventory yet.")

    app = create_app(Settings(db=str(tmp_path / "collector.db"), admin_token="t"))
    app.router.add_get("/inventory", page(inventory))
    add_nav(app, "Inventory", "/inventory", ("/inventory/",), before="Settings")
    async with TestClient(TestServer(app)) as client:
        stranger = await client.get("/inventory", allow_redirects=False)
        assert stranger.headers["Location"] == "/login?next=%2Finventory"
        await Technicians(client.app[keys.STORE], client.app[keys.CLOCK]).add(NAME, PASSWORD)
        await log_in(client)
        shown = await (await client.get("/inventory")).text()
        nav = shown.split('<nav aria-label="Main">')[1].split("</nav>")[0]
        assert re.findall(r'<a href="([^"]+)"( aria-current="page")?>', nav) == [
            ("/", ""), ("/incidents", ""), ("/clients", ""), ("/billing", ""),
            ("/inventory", ' aria-current="page"'), ("/settings", "")]


async def test_the_api_and_the_pages_count_a_device_offline_on_the_collectors_clock(
    client: TestClient, clock: Clock
) -> None:
    await log_in(client)
    agent = await critical_alert(client, clock)

    async def online() -> tuple[bool, str, str]:
        [device] = (await (await client.get("/api/v1/devices", headers=TECH)).json())["devices"]
        listed = await (await client.get("/clients")).text()
        page = await (await client.get(f"/devices/{agent.agent_id}")).text()
        return device["online"], listed.split('class="conn ')[1][:7], page.split('class="conn ')[1][:7]

    assert await online() == (True, 'online"', 'online"')
    # Three missed heartbeats of a minute, on the test's clock (the wall clock has not moved).
    clock.advance(minutes=3)
    assert await online() == (False, "offline", "offline")


async def test_a_channel_url_is_shown_masked_on_the_page_and_in_the_api(client: TestClient) -> None:
    url = "mailtos://tech:hunter22@smtp.example.net?from=alerts@example.net&to=tech@example.net"
    created = await client.post("/api/v1/channels", json={"name": "mail", "url": url}, headers=TECH)
    assert created.status == 201, await created.text()
    listed = await (await client.get("/api/v1/channels", headers=TECH)).text()
    await log_in(client)
    shown = await (await client.get("/settings/channels")).text()
    for answer in (await created.text(), listed, shown):
        assert "hunter22" not in answer
        assert "mailtos://tech:****@smtp.example.net" in html.unescape(answer)  # enough to recognise it
