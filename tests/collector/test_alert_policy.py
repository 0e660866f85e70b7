"""Alert policy for one person on call, as scenarios: a real SMTP server and a real webhook receiver on
loopback, the collector's clock in the test's hands, and what reached the phone and the mailbox counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.offline import sweep
from tests.collector.test_notifications import channel, settings_for
from tests.notify_receivers import SmtpReceiver, WebhookReceiver
from tests.support.agents import REPORTS, SimAgent, heartbeat
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, report_free

MONDAY_5PM = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)  # a Monday; business hours default to 08:00-18:00 UTC


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    clock.now = MONDAY_5PM
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


@pytest.fixture
async def receivers(client: TestClient) -> AsyncIterator[tuple[SmtpReceiver, WebhookReceiver]]:
    """A mailbox and a phone, both taking warnings and criticals (30 s group wait)."""
    async with SmtpReceiver() as smtp, WebhookReceiver() as hook:
        await channel(client, smtp.apprise_url(), name="mail")
        await channel(client, hook.apprise_url(), name="phone")
        yield smtp, hook


async def beat(client: TestClient, device: SimAgent, device_class: str | None) -> None:
    """One heartbeat from the device, saying what it is."""
    signal = heartbeat(device.hostname, device.clock()).model_copy(update={"device_class": device_class})
    body = device.body(device.envelope([signal]))
    response = await client.post(REPORTS, data=body, headers=device.headers(body))
    assert response.status == 200, await response.text()


async def run_until(client: TestClient, clock: Clock, until: datetime, every: timedelta = timedelta(minutes=1),
                    beating: list[tuple[SimAgent, str | None]] = (),  # type: ignore[assignment]
                    sweeping: bool = True) -> None:
    """Let the collector run until `until`: devices in `beating` report, then an offline sweep (unless not
    `sweeping`) and a dispatch round, every `every`."""
    app = client.app
    while clock.now < until:
        clock.advance(seconds=every.total_seconds())
        for device, device_class in beating:
            await beat(client, device, device_class)
        if sweeping:
            await sweep(app[keys.STORE], app[keys.SETTINGS], app[keys.AVAILABILITY], clock.now, app[keys.ON_CHANGE])
        await app[keys.NOTIFIER].dispatch(clock.now)


def sent(smtp: SmtpReceiver, hook: WebhookReceiver) -> list[str]:
    """The phone's message titles, after checking the mailbox got the same ones."""
    titles = [body["title"] for body in hook.bodies]
    assert [str(m["Subject"]) for m in smtp.messages] == titles
    return titles


async def office(client: TestClient, count: int = 20) -> list[SimAgent]:
    return [await enrolled(client, f"DESK-{n:02d}") for n in range(1, count + 1)]


async def test_twenty_workstations_switched_off_at_six_send_nothing_all_night(
    client: TestClient, clock: Clock, receivers: tuple[SmtpReceiver, WebhookReceiver]
) -> None:
    desks = await office(client)
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=1), timedelta(minutes=5),
                    [(d, "workstation") for d in desks])  # the working day ends at 18:00
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=14, minutes=55), timedelta(minutes=5))
    assert sent(*receivers) == []
    alerts = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    assert alerts == [], "no alert either: a workstation being off at night is normal"


async def test_a_server_going_off_at_night_is_one_critical_within_the_group_wait(
    client: TestClient, clock: Clock, receivers: tuple[SmtpReceiver, WebhookReceiver]
) -> None:
    desks, server = await office(client), await enrolled(client, "SERVER-01")
    everyone = [(d, "workstation") for d in desks] + [(server, "server")]
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=1), timedelta(minutes=5), everyone)
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=5), timedelta(minutes=5), [(server, "server")])
    assert sent(*receivers) == [], "the office went home"
    # 22:00: the server stops. Offline after 3 missed heartbeats; then the 30 s group wait.
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=5, minutes=3), timedelta(seconds=15))
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=5, minutes=3, seconds=30), timedelta(seconds=15))
    titles = sent(*receivers)
    assert len(titles) == 1 and "CRITICAL" in titles[0] and "SERVER-01" in titles[0], titles
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=6), timedelta(minutes=1))
    assert len(sent(*receivers)) == 1, "one message, not one per sweep"


async def test_a_workstation_that_never_comes_on_on_tuesday_is_one_warning_after_business_hours_begin(
    client: TestClient, clock: Clock, receivers: tuple[SmtpReceiver, WebhookReceiver]
) -> None:
    desks = await office(client, 3)
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=1), timedelta(minutes=5),
                    [(d, "workstation") for d in desks])
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=15), timedelta(minutes=15))  # Tuesday 08:00
    assert sent(*receivers) == []
    # Two come in at 08:00; DESK-03 does not.
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=15, minutes=10), timedelta(minutes=1),
                    [(d, "workstation") for d in desks[:2]])
    titles = sent(*receivers)
    assert len(titles) == 1 and "WARNING" in titles[0] and "DESK-03" in titles[0], titles
    [alert] = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    assert alert["opened_at"] >= "2026-11-24T08:03", "once business hours began (plus the missed heartbeats)"
    await run_until(client, clock, MONDAY_5PM + timedelta(hours=24), timedelta(minutes=15),
                    [(d, "workstation") for d in desks[:2]])
    assert len(sent(*receivers)) == 1, "a warning is not repeated, and its summary does not change"


async def test_a_filesystem_filling_one_percent_per_report_while_critical_is_one_message(
    client: TestClient, clock: Clock, receivers: tuple[SmtpReceiver, WebhookReceiver]
) -> None:
    server = await enrolled(client, "SERVER-01")
    for free in (4, 3, 2, 1):  # of 100 GiB: every report is critical, with less free space than the one before
        await report_free(client, server, clock, free)
        await run_until(client, clock, clock.now + timedelta(minutes=2))
    titles = sent(*receivers)
    assert len(titles) == 1 and "CRITICAL" in titles[0], titles
    alerts = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    [disk] = [a for a in alerts if a["rule"].startswith("disk_health")]
    assert "1.0 GiB" in disk["summary"] or "1 GiB" in disk["summary"], "the alert keeps its live details"


async def test_a_technician_overrides_the_class_and_the_clients_business_hours(
    client: TestClient, clock: Clock, receivers: tuple[SmtpReceiver, WebhookReceiver]
) -> None:
    [desk] = await office(client, 1)
    await beat(client, desk, "workstation")
    answer = await client.put("/api/v1/clients/Acme Tooling/hours", headers=TECH,
                              json={"days": "mon-sat", "start": "07:00", "timezone": "Europe/Berlin"})
    assert answer.status == 200, await answer.text()
    hours = (await answer.json())["business_hours"]
    assert hours == {"days": "mon,tue,wed,thu,fri,sat", "start": "07:00", "end": "18:00",
                     "timezone": "Europe/Berlin"}
    bad = await client.put("/api/v1/clients/Acme Tooling/hours", headers=TECH, json={"timezone": "Mars/Base"})
    assert bad.status == 422 and "unknown time zone" in await bad.text()
    assert (await client.put("/api/v1/clients/Nobody/hours", headers=TECH, json={})).status == 404
    answer = await client.put(f"/api/v1/devices/{desk.agent_id}/class", headers=TECH,
                              json={"device_class": "server"})
    device = await answer.json()
    assert (device["device_class"], device["reported_class"], device["class_override"]) == (
        "server", "workstation", "server")
    await run_until(client, clock, clock.now + timedelta(minutes=4))
    titles = sent(*receivers)
    assert len(titles) == 1 and "CRITICAL" in titles[0], "judged as the server the technician says it is"
    back = await client.put(f"/api/v1/devices/{desk.agent_id}/class", headers=TECH, json={"device_class": None})
    assert (await back.json())["device_class"] == "workstation"


async def test_a_critical_does_not_wait_for_the_group_interval_but_a_warning_does(
    client: TestClient, clock: Clock
) -> None:
    async with SmtpReceiver() as smtp, WebhookReceiver() as hook:
        for name, url in (("mail", smtp.apprise_url()), ("phone", hook.apprise_url())):
            await channel(client, url, name=name, group_interval_seconds=300)  # at most one message in 5 minutes
        desk, other, server = [await enrolled(client, name) for name in ("DESK-01", "DESK-02", "SERVER-01")]
        await report_free(client, desk, clock, 8)  # a warning
        await run_until(client, clock, clock.now + timedelta(seconds=30), timedelta(seconds=30), sweeping=False)
        assert len(sent(smtp, hook)) == 1
        await report_free(client, other, clock, 8)  # another warning, 30 s after the first message
        await report_free(client, server, clock, 2)  # and a critical
        await run_until(client, clock, clock.now + timedelta(seconds=20), timedelta(seconds=10), sweeping=False)
        assert len(sent(smtp, hook)) == 1, "still grouped: the group wait holds even a critical"
        await run_until(client, clock, clock.now + timedelta(seconds=10), timedelta(seconds=10), sweeping=False)
        titles = sent(smtp, hook)
        assert len(titles) == 2 and "CRITICAL" in titles[1] and "SERVER-01" in titles[1], titles
        assert "DESK-02" not in hook.bodies[1]["message"], "the warning keeps the channel's pace"
        await run_until(client, clock, clock.now + timedelta(minutes=4), timedelta(seconds=30), sweeping=False)
        assert len(sent(smtp, hook)) == 2
        await run_until(client, clock, clock.now + timedelta(minutes=1), timedelta(seconds=30), sweeping=False)
        titles = sent(smtp, hook)
        assert len(titles) == 3 and "DESK-02" in titles[2], titles


async def test_a_message_lists_each_alert_once_with_where_what_to_do_and_its_link_in_html_and_text(
    database: str, clock: Clock
) -> None:
    settings = settings_for(database).model_copy(update={"public_url": "https://rmm.example.com/"})
    async with (
        TestClient(TestServer(create_app(settings, clock=clock))) as client,
        SmtpReceiver() as smtp, WebhookReceiver() as hook,
    ):
        await channel(client, smtp.apprise_url(), name="mail")
        await channel(client, hook.apprise_url(), name="phone")
        server, desk = await enrolled(client, "SERVER-01"), await enrolled(client, "DESK-01")
        await report_free(client, server, clock, 8)  # a warning...
        await report_free(client, desk, clock, 8)
        clock.advance(seconds=10)
        await report_free(client, server, clock, 2)  # ... that turns critical within the group wait
        await run_until(client, clock, clock.now + timedelta(seconds=30), timedelta(seconds=30), sweeping=False)
        [title] = sent(smtp, hook)
        assert title == "[fieldpost] 2 alerts: 1 critical, 1 warning"
        text = hook.bodies[0]["message"]
        lines = text.splitlines()
        assert len(lines) == 2 and lines[0].startswith("Acme Tooling / Main office / SERVER-01: Now CRITICAL")
        assert lines[1].startswith("Acme Tooling / Main office / DESK-01: WARNING")
        alerts = {a["hostname"]: a["alert_id"] for a in
                  (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]}
        assert lines[0].endswith(f" https://rmm.example.com/alerts/{alerts['SERVER-01']}")
        assert "free space, or back up the disk and plan its replacement" in lines[0]
        [mail] = smtp.messages
        assert mail.get_content_type() == "multipart/alternative"
        plain = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert plain.count("Acme Tooling / Main office / SERVER-01") == 1, plain
        assert f'<a href="https://rmm.example.com/alerts/{alerts["SERVER-01"]}">' in html
        assert html.count("<li>") == 2
