"""Notification scenarios, asserting exactly which messages went out: a real SMTP server and a real
webhook receiver on loopback, the collector's clock in the test's hands."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.offline import Availability, sweep
from collector.settings import Settings
from tests.notify_receivers import SmtpReceiver, WebhookReceiver
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled, report_free

NIGHT = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)



@pytest.fixture
async def hook() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as receiver:
        yield receiver


def settings_for(database: str) -> Settings:
    return Settings(db=database, admin_token="tech-secret", clock_skew_seconds=10**9,
                    notify_interval_seconds=0, startup_grace_seconds=0)


@pytest.fixture
async def client(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(settings_for(database), clock=clock))) as test_client:
        yield test_client


async def channel(client: TestClient, url: str, **options: Any) -> None:
    body = {"name": options.pop("name", "phone"), "url": url, "group_wait_seconds": 30,
            "group_interval_seconds": 60, **options}
    response = await client.post("/api/v1/channels", json=body, headers=TECH)
    assert response.status == 201, await response.text()


async def dispatch(client: TestClient, clock: Clock, **advance: float) -> int:
    """Let time pass (group wait) and run one notification round."""
    clock.advance(**advance)
    return await client.app[keys.NOTIFIER].dispatch(clock.now)


def titles(hook: WebhookReceiver) -> list[str]:
    return [body["title"] for body in hook.bodies]


async def test_a_critical_alert_reaches_mail_and_phone_once_and_its_resolution_follows(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    async with SmtpReceiver() as smtp:
        await channel(client, smtp.apprise_url(), name="mail")
        await channel(client, hook.apprise_url(), name="phone")
        agent = await enrolled(client)
        await report_free(client, agent, clock, 2)
        assert await dispatch(client, clock, seconds=10) == 0, "group wait: nothing before 30 s"
        assert await dispatch(client, clock, seconds=30) == 2
        [mail] = await smtp.wait_for(1)
        assert "CRITICAL" in mail["Subject"] and "RECEPTION-01" in mail["Subject"]
        assert titles(hook) == [mail["Subject"]]
        await report_free(client, agent, clock, 2)  # the same problem again: no new message
        assert await dispatch(client, clock, minutes=2) == 0
        for _ in range(2):
            await report_free(client, agent, clock, 50)
        assert await dispatch(client, clock, minutes=2) == 2
        assert titles(hook)[1].startswith("RESOLVED")


async def test_a_flapping_disk_alert_sends_one_flapping_notice_not_dozens_of_messages(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    await channel(client, hook.apprise_url())
    agent = await enrolled(client)
    for _ in range(8):
        for free in (8, 50, 50):
            await report_free(client, agent, clock, free)
            await dispatch(client, clock, minutes=1)
    # Every change until it counts as flapping (six in the hour), then one notice and silence.
    assert sum("FLAPPING" in b["title"] + b["message"] for b in hook.bodies) == 1
    assert len(hook.bodies) <= 7, titles(hook)


async def test_at_night_a_critical_is_delivered_and_a_warning_waits_for_the_morning_digest(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    clock.now = NIGHT
    await channel(client, hook.apprise_url(), quiet_start="22:00", quiet_end="07:00", digest_at="07:30",
                  repeat_interval_seconds=86400)
    server, desk = await enrolled(client, "SERVER-01"), await enrolled(client, "DESK-07")
    await report_free(client, server, clock, 2)
    await report_free(client, desk, clock, 8)
    await dispatch(client, clock, minutes=1)
    assert len(titles(hook)) == 1 and "CRITICAL" in titles(hook)[0] and "SERVER-01" in titles(hook)[0]
    await dispatch(client, clock, hours=4)  # 07:01: no digest yet
    assert len(hook.bodies) == 1
    await dispatch(client, clock, minutes=30)  # 07:31
    digest = hook.bodies[1]
    assert digest["title"].startswith("[fieldpost] Digest 2026-11-24")
    assert "DESK-07" in digest["message"] and "SERVER-01" in digest["message"]
    await dispatch(client, clock, hours=1)
    assert len(hook.bodies) == 2, "one digest a day"


async def test_a_recurring_maintenance_window_holds_alerts_until_it_ends(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    clock.now = NIGHT - timedelta(minutes=50)  # 02:10, inside Saturday-night-style 02:00-03:00 window
    await channel(client, hook.apprise_url())
    window = {"cron": "0 2 * * *", "duration_minutes": 60, "client": "Acme Tooling", "comment": "nightly updates"}
    assert (await client.post("/api/v1/silences", json=window, headers=TECH)).status == 201
    agent, other = await enrolled(client), await enrolled(client, "DESK-07")
    await report_free(client, agent, clock, 2)
    await report_free(client, other, clock, 2)
    for _ in range(2):
        await report_free(client, other, clock, 50)  # resolved inside the window: never told
    await dispatch(client, clock, minutes=20)
    assert hook.bodies == [], "nothing during the window"
    await dispatch(client, clock, minutes=31)  # 03:01: the window is over
    assert len(hook.bodies) == 1
    assert "RECEPTION-01" in hook.bodies[0]["title"] and "DESK-07" not in hook.bodies[0]["message"]


async def test_the_same_report_twice_changes_nothing(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    from shared.disk_health import DiskHealth, FilesystemFacts

    await channel(client, hook.apprise_url())
    agent = await enrolled(client)
    volume = FilesystemFacts(mount="C:", device="C:", fstype="ntfs", total_bytes=100 << 30,
                             used_bytes=98 << 30, free_bytes=2 << 30)
    body = agent.body(agent.envelope([DiskHealth(collected_at=clock.now, filesystems=[volume])]))
    for _ in range(2):
        assert (await client.post("/api/v1/reports", data=body, headers=agent.headers(body))).status == 200
    alerts = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    assert [a["occurrences"] for a in alerts if a["rule"] == "disk_health"] == [1]
    await dispatch(client, clock, minutes=1)
    assert len(hook.bodies) == 1


async def test_two_collectors_on_one_database_open_one_alert_and_send_one_message(
    database: str, clock: Clock, hook: WebhookReceiver
) -> None:
    settings = settings_for(database)
    async with (
        TestClient(TestServer(create_app(settings, clock=clock))) as first,
        TestClient(TestServer(create_app(settings, clock=clock))) as second,
    ):
        await channel(first, hook.apprise_url())
        agent = await enrolled(first)
        await report_free(first, agent, clock, 2)
        await report_free(second, agent, clock, 2)
        alerts = (await (await second.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
        assert [(a["rule"], a["occurrences"]) for a in alerts] == [("disk_health", 2)]
        clock.advance(minutes=1)
        sent = await asyncio.gather(first.app[keys.NOTIFIER].dispatch(clock.now),
                                    second.app[keys.NOTIFIER].dispatch(clock.now))
        assert sorted(sent) == [0, 1]
        assert len(hook.bodies) == 1


async def test_unacknowledged_criticals_are_repeated_and_acknowledging_stops_it(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    await channel(client, hook.apprise_url(), repeat_interval_seconds=3600)
    agent = await enrolled(client)
    await report_free(client, agent, clock, 2)
    await dispatch(client, clock, minutes=1)
    await dispatch(client, clock, minutes=59)  # a reminder is queued...
    await dispatch(client, clock, minutes=1)  # ... and sent after the group wait
    assert [t.split()[0] for t in titles(hook)] == ["CRITICAL", "Still"]
    [alert] = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    await client.post(f"/api/v1/alerts/{alert['alert_id']}/acknowledge", json={"note": "on my way"}, headers=TECH)
    await dispatch(client, clock, hours=2)
    await dispatch(client, clock, minutes=1)
    assert len(hook.bodies) == 2


async def test_a_silenced_critical_is_not_reminded_until_the_silence_ends(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    await channel(client, hook.apprise_url(), repeat_interval_seconds=3600)
    agent = await enrolled(client)
    await report_free(client, agent, clock, 2)
    await dispatch(client, clock, minutes=1)
    silence = {"device": "reception-01", "kind": "disk_health", "minutes": 180, "comment": "disk on order"}
    assert (await client.post("/api/v1/silences", json=silence, headers=TECH)).status == 201
    for _ in range(6):
        await dispatch(client, clock, minutes=30)
    assert [t.split()[0] for t in titles(hook)] == ["CRITICAL"], "no reminder while silenced"
    await dispatch(client, clock, minutes=1)  # the silence is over: a reminder is queued...
    await dispatch(client, clock, minutes=1)  # ... and sent after the group wait
    assert [t.split()[0] for t in titles(hook)] == ["CRITICAL", "Still"]


async def test_a_silence_naming_a_signal_holds_every_rule_of_it(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    await channel(client, hook.apprise_url())
    silence = {"kind": "heartbeat", "minutes": 60, "comment": "office move"}
    assert (await client.post("/api/v1/silences", json=silence, headers=TECH)).status == 201
    agent = await enrolled(client)
    await report_free(client, agent, clock, 50)
    clock.advance(minutes=10)
    app = client.app
    await sweep(app[keys.STORE], app[keys.SETTINGS], app[keys.AVAILABILITY], clock.now, app[keys.ON_CHANGE])
    await dispatch(client, clock, minutes=1)
    alerts = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    assert [a["rule"] for a in alerts] == ["heartbeat.offline"], "recorded"
    assert hook.bodies == [], "held by the silence of its signal"
    await dispatch(client, clock, minutes=50)
    assert len(hook.bodies) == 1 and "offline" in hook.bodies[0]["title"]


@pytest.mark.parametrize("wanted", [
    {"minutes": 1e300}, {"minutes": 600_000}, {"cron": "0 2 * * *", "duration_minutes": 1e300},
    {"starts_at": "2026-11-23T02:00:00", "ends_at": "2026-11-23T03:00:00"},
])
async def test_a_silence_or_snooze_of_no_real_length_is_refused_naming_the_field(
    client: TestClient, clock: Clock, wanted: dict[str, Any]
) -> None:
    # Found by the technician API's fuzz run: such lengths overflowed a date and answered 500.
    answer = await client.post("/api/v1/silences", json={**wanted, "comment": "x"}, headers=TECH)
    assert answer.status == 422, await answer.text()
    assert {p["field"] for p in (await answer.json())["problems"]} & {"minutes", "duration_minutes", "starts_at"}
    agent = await enrolled(client)
    await report_free(client, agent, clock, 2)
    [alert] = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    snooze = await client.post(f"/api/v1/alerts/{alert['alert_id']}/snooze", json={"minutes": 1e300}, headers=TECH)
    assert snooze.status == 422 and "minutes" in await snooze.text()
    assert (await client.get("/api/v1/silences", headers=TECH)).status == 200


async def test_a_failing_channel_is_retried_then_marked_broken_and_reported_elsewhere(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    async with WebhookReceiver(statuses=(500, 200)) as flaky, WebhookReceiver(statuses=(404,)) as gone:
        await channel(client, flaky.apprise_url(), name="flaky")
        await channel(client, gone.apprise_url(), name="gone")
        await channel(client, hook.apprise_url(), name="phone", kinds=["channel_broken"])
        agent = await enrolled(client)
        await report_free(client, agent, clock, 2)
        await dispatch(client, clock, minutes=1)
        assert [r.status for r in flaky.requests] == [500]
        await dispatch(client, clock, minutes=1)  # the retry, 30 s later
        assert [r.status for r in flaky.requests] == [500, 200]
        listed = await (await client.get("/api/v1/channels", headers=TECH)).json()
        channels = {c["name"]: c for c in listed["channels"]}
        assert channels["gone"]["broken"] and "404" in channels["gone"]["broken"]
        await dispatch(client, clock, minutes=1)
        assert any("notification channel gone is broken" in t for t in titles(hook))


async def test_after_the_collector_was_down_the_feed_says_so(database: str, clock: Clock) -> None:
    settings = settings_for(database)
    async with TestClient(TestServer(create_app(settings, clock=clock))) as first:
        await sweep(first.app[keys.STORE], settings, Availability(clock.now), clock.now)
    clock.advance(hours=2)
    async with (
        TestClient(TestServer(create_app(settings, clock=clock))) as again,
        again.app[keys.STORE].transaction() as tx,
    ):
        events = await tx.feed_since(0, 100)
    [down] = [e for e in events if e.type == "collector.down"]
    assert down.data["down_from"] == (clock.now - timedelta(hours=2)).isoformat()
    assert "the collector was down from" in down.data["summary"]


async def test_a_site_outage_is_one_notification_not_thirty(
    client: TestClient, clock: Clock, hook: WebhookReceiver
) -> None:
    await channel(client, hook.apprise_url())
    pcs = [await enrolled(client, f"PC-{n:02d}") for n in range(30)]

    async def everyone_reports() -> None:
        for pc in pcs:
            body = pc.body(pc.envelope())
            assert (await client.post("/api/v1/reports", data=body, headers=pc.headers(body))).status == 200
            clock.advance(seconds=1)  # thirty devices within a minute

    async def sweep_and_dispatch() -> None:
        app = client.app
        await sweep(app[keys.STORE], app[keys.SETTINGS], app[keys.AVAILABILITY], clock.now,
                    app[keys.ON_CHANGE])
        await dispatch(client, clock, minutes=1)

    await everyone_reports()
    clock.advance(minutes=5)  # the power went out
    await sweep_and_dispatch()
    await dispatch(client, clock, minutes=5)
    assert len(hook.bodies) == 1
    assert "30 of 30 devices stopped reporting" in hook.bodies[0]["title"]
    alerts = (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"]
    rules = sorted({a["rule"] for a in alerts})
    assert rules == ["heartbeat.offline", "heartbeat.site_offline"], "still recorded, per device"
    await everyone_reports()  # the power is back
    await sweep_and_dispatch()
    await dispatch(client, clock, minutes=5)
    assert len(hook.bodies) == 2
    assert hook.bodies[1]["title"].startswith("RESOLVED") and "Main office" in hook.bodies[1]["title"]
    assert (await (await client.get("/api/v1/alerts", headers=TECH)).json())["alerts"] == []


@pytest.mark.slow
async def test_the_cli_creates_tests_and_lists_channels_and_silences(
    client: TestClient, hook: WebhookReceiver
) -> None:
    url = str(client.make_url("")).rstrip("/")

    def fieldpost(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "technician", "--url", url, "--token", "tech-secret",
                               *args], capture_output=True, text=True, check=False)

    async def run(*args: str) -> str:
        done = await asyncio.to_thread(fieldpost, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "channel phone created" in await run("channel", "create", "phone", hook.apprise_url(),
                                                "--quiet", "22:00-07:00", "--timezone", "Europe/Berlin")
    assert "test message sent through phone" in await run("channel", "test", "phone")
    assert hook.bodies[0]["title"] == "[fieldpost] Test message for channel phone"
    assert "22:00-07:00" in await run("channel", "list")
    bad = await asyncio.to_thread(fieldpost, "channel", "create", "pager", "nonsense://x")
    assert bad.returncode == 1 and "url:" in bad.stderr
    assert "silence 1 created" in await run("silence", "create", "--client", "Acme Tooling", "--cron", "0 22 * * 6",
                                            "--duration", "4h", "--comment", "Saturday patching")
    assert "client=Acme Tooling" in await run("silence", "list")
    assert "silence 1 expired" in await run("silence", "expire", "1")
    assert await run("silence", "list") == "no silences\n"
