"""The value report e-mailed on a schedule: the period that is due, the opt-in through the API with its checks,
one mail per client and period to a real SMTP server on loopback (PDF attached, the page as HTML) even with two
collector stores sweeping at once, and a failed send recorded, shown, and tried again by the collector's sweeper."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.services.inputs import valid_address
from collector.services.report_mail import ReportMail, due_period, mail_url
from collector.store import Store
from tests.collector import test_incidents
from tests.collector.test_incidents import BAKERY, RATES, api, incident, settings_for, work
from tests.collector.test_value_report import at, weasyprint_available
from tests.notify_receivers import LOOPBACK, SmtpReceiver, free_port
from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.tooling import requires_tool

client = test_incidents.client
SCHEDULE = f"/api/v1/clients/{BAKERY.replace(' ', '%20')}/report-schedule"
SENTENCE = "Restored from backup in 1 h 10 min; without the image backups this would have taken about 5 h."


@pytest.mark.parametrize(("frequency", "day", "today", "due"), [
    ("monthly", 3, date(2026, 12, 2), (date(2026, 10, 1), date(2026, 10, 31), date(2026, 11, 3))),
    ("monthly", 3, date(2026, 12, 3), (date(2026, 11, 1), date(2026, 11, 30), date(2026, 12, 3))),
    ("monthly", 1, date(2027, 1, 1), (date(2026, 12, 1), date(2026, 12, 31), date(2027, 1, 1))),
    ("quarterly", 5, date(2026, 10, 5), (date(2026, 7, 1), date(2026, 9, 30), date(2026, 10, 5))),
    ("quarterly", 5, date(2026, 12, 20), (date(2026, 7, 1), date(2026, 9, 30), date(2026, 10, 5))),
    ("quarterly", 5, date(2027, 1, 4), (date(2026, 7, 1), date(2026, 9, 30), date(2026, 10, 5))),
    ("quarterly", 5, date(2027, 1, 5), (date(2026, 10, 1), date(2026, 12, 31), date(2027, 1, 5))),
])
def test_the_period_due_is_the_last_whole_month_or_quarter_once_its_day_has_come(
    frequency: Any, day: int, today: date, due: tuple[date, date, date]
) -> None:
    assert due_period(frequency, day, today) == due


def test_the_report_goes_to_the_schedules_recipients_and_nobody_the_channel_names() -> None:
    url = "mailtos://user:secret@mail.example.com/tech@example.com?from=it@example.com&to=tech@example.com&cc=x@y.z"
    assert mail_url(url, ["owner@bakery.example", "o'neil+books@bakery.example"]) == (
        "mailtos://user:secret@mail.example.com?from=it@example.com&to=owner@bakery.example,o%27neil%2Bbooks@bakery.example"
    )
    assert valid_address(" Owner@Bakery.EXAMPLE ") == "Owner@bakery.example"
    for wrong in ("owner", "owner@bakery", "a b@bakery.example", "owner@bakery.example,x@y.z", "x@-bad.example",
                  "owner@bakery.example\r\nBcc: x@y.z", "a..b@bakery.example", "a" * 65 + "@bakery.example"):
        with pytest.raises(ValueError, match="is not an e-mail address"):
            valid_address(wrong)


async def channel_id(store: Store, name: str) -> int:
    """The id of the channel of this name."""
    async with store.read() as tx:
        return next(c.channel_id for c in await tx.channels() if c.name == name)


async def add_channel(client: TestClient, name: str, url: str) -> int:
    """A notification channel through the API; its id."""
    body = {"name": name, "url": url}
    response = await client.post("/api/v1/channels", json=body, headers=TECH)
    assert response.status == 201, await response.text()
    return await channel_id(client.app[keys.STORE], name)


async def bakery_november(client: TestClient, clock: Clock) -> None:
    """The bakery (break/fix): a till restored from its image backup in November, 70 minutes instead of 5 hours."""
    clock.now = at(11, 3, 9)
    await test_incidents.enrol(client, "TILL-01", BAKERY)
    await api(client, "POST", "/api/v1/rates", RATES, 201)
    restore = await incident(client, "Till restored after the disk failed", BAKERY, category="backup")
    await work(client, restore, "2026-11-03T10:00:00Z", 70, on_site=True)
    await api(client, "POST", f"/api/v1/incidents/{restore}/time-saved",
              {"minutes_without": 300, "preparation": "backup_image"})


def text_of_pdf(pdf: bytes, folder: Path) -> str:
    """The PDF's text as poppler's pdftotext reads it, spaces squeezed."""
    path = folder / "attached.pdf"
    path.write_bytes(pdf)
    done = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(done.stdout.split())


def needs_weasyprint() -> None:
    """Skip where WeasyPrint cannot load (on CI its absence fails instead)."""
    if not weasyprint_available():
        pytest.skip("weasyprint cannot load (pip install weasyprint; apt install libpango-1.0-0 libpangoft2-1.0-0)")


async def refused(client: TestClient, body: dict[str, Any]) -> str:
    """The 422 the schedule is refused with, as text."""
    response = await client.put(SCHEDULE, json=body, headers=TECH)
    assert response.status == 422, (body, await response.text())
    return await response.text()


@requires_tool("pdftotext")
async def test_a_monthly_report_is_mailed_once_with_its_pdf_however_many_collectors_sweep(
    client: TestClient, clock: Clock, new_store: Callable[[], Store], tmp_path: Path
) -> None:
    needs_weasyprint()
    await bakery_november(client, clock)
    async with SmtpReceiver() as smtp:
        clock.now = at(11, 20, 9)
        wanted = {"frequency": "monthly", "day": 3, "recipients": ["Owner@Bakery.EXAMPLE", "books@bakery.example"]}
        assert "add a mailto:// or mailtos:// channel first" in await refused(client, wanted)
        hook = await add_channel(client, "webhook", f"json://{LOOPBACK}:{free_port()}/hook")
        mail = await add_channel(client, "mail", smtp.apprise_url(to="technician@example.com"))
        assert "does not send e-mail" in await refused(client, {**wanted, "channel_id": hook})
        assert "there is no channel 99" in await refused(client, {**wanted, "channel_id": 99})
        assert "is not an e-mail address" in await refused(client, {**wanted, "recipients": ["owner at bakery"]})
        assert "recipients" in await refused(client, {**wanted, "recipients": []})
        assert "day" in await refused(client, {**wanted, "day": 31})
        assert "frequency" in await refused(client, {**wanted, "frequency": "weekly"})
        schedule = await api(client, "PUT", SCHEDULE, wanted)  # the only mail channel, by default
        assert (schedule["channel_id"], schedule["recipients"]) == (mail, ["Owner@bakery.example",
                                                                           "books@bakery.example"])

        # Opted in on 20 November: October's report (due 3 November) is not sent after the fact.
        assert await ReportMail(client.app[keys.STORE], clock).send_due() == []
        # 3 December: two collector processes (each its own store on the database) sweep at the same moment.
        clock.now = at(12, 3, 0, 5)
        other = new_store()
        await other.open()
        sent = await asyncio.gather(ReportMail(client.app[keys.STORE], clock).send_due(),
                                    ReportMail(other, clock).send_due())
        assert sorted(len(s) for s in sent) == [0, 1]
        # apprise mails each recipient a copy of their own; the SMTP server has them before the send returns.
        messages = await smtp.wait_for(2)
        # A restart, a day later: the sent period stays sent.
        clock.advance(days=1)
        assert await ReportMail(other, clock).send_due() == []
        assert len(smtp.messages) == 2

    assert sorted(m["To"] for m in messages) == ["Owner@bakery.example", "books@bakery.example"]
    message = messages[0]
    assert message["Subject"] == "IT service report for Corner Bakery, November 2026"
    html = message.get_body(("html",))
    assert html is not None and SENTENCE in " ".join(html.get_content().split())
    assert 'name="viewport" content="width=device-width' in html.get_content()  # the page a phone reads
    [pdf] = [part for part in message.iter_attachments() if part.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "Corner-Bakery-2026-11-01-2026-11-30.pdf"
    text = text_of_pdf(pdf.get_content(), tmp_path)
    assert "IT service report for Corner Bakery" in text and "01 November 2026 to 30 November 2026" in text
    assert SENTENCE in text and "saved about 3 h 50 min of work in this period, about EUR 270.00" in text, text
    shown = await api(client, "GET", SCHEDULE)
    [send] = shown["sends"]
    assert (send["first_day"], send["status"], send["attempts"], send["error"]) == ("2026-11-01", "sent", 1, None)


@pytest.fixture
async def sweeping(database: str, clock: Clock) -> AsyncIterator[TestClient]:
    """The collector with its report sweeper running every 50 ms on the test's clock."""
    settings = settings_for(database).model_copy(update={"report_mail_check_seconds": 0.05})
    async with TestClient(TestServer(create_app(settings, clock=clock))) as test_client:
        yield test_client


async def until(check: Callable[[], Any], what: str) -> Any:
    """Poll the API until `check` returns something (the sweeper runs on its own); fail saying what never came."""
    for _ in range(200):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"never: {what}")


async def test_a_failed_send_is_shown_and_the_collectors_sweeper_tries_again_later(
    sweeping: TestClient, clock: Clock, tmp_path: Path
) -> None:
    needs_weasyprint()
    client = sweeping
    await bakery_november(client, clock)
    clock.now = at(11, 20, 9)
    nobody = await add_channel(client, "dead relay", f"mailto://{LOOPBACK}:{free_port()}?from=it@example.com")
    wanted = {"frequency": "monthly", "day": 3, "recipients": ["owner@bakery.example"], "channel_id": nobody}
    set_by_cli = await cli(client, BAKERY, "--monthly", "--day", "3", "--to", "owner@bakery.example")
    assert set_by_cli.startswith("Corner Bakery: the monthly value report on day 3 to owner@bakery.example")

    async def sends() -> list[dict[str, Any]]:
        return list((await api(client, "GET", SCHEDULE))["sends"])

    clock.now = at(12, 3, 8)
    failed = await until(lambda: failed_send(sends), "the send recorded as failed")
    assert failed["attempts"] == 1 and failed["error"]
    assert failed["next_try_at"] == (clock.now + timedelta(minutes=5)).isoformat()
    async with client.app[keys.STORE].read() as tx:
        events = [e for e in await tx.feed_since(0, 1000) if e.type.startswith("report.")]
    assert [e.type for e in events] == ["report.scheduled", "report.mail_failed"]
    assert events[-1].data["error"] == failed["error"] and events[-1].data["client"] == BAKERY
    shown = await cli(client, BAKERY)
    assert "2026-11-01 to 2026-11-30  failed  1" in shown and failed["error"][:40] in shown

    # A month on, the relay still down: December's report fails too, and November's is tried again with it.
    clock.now = at(12, 3, 8).replace(year=2027, month=1)
    async def both_failed() -> list[dict[str, Any]] | None:
        listed = await sends()
        done = [(s["first_day"], s["status"], s["attempts"]) for s in listed]
        return listed if done == [("2026-12-01", "failed", 1), ("2026-11-01", "failed", 2)] else None
    await until(both_failed, "December failed and November failed twice")

    async with SmtpReceiver() as smtp:
        mail = await add_channel(client, "mail", smtp.apprise_url())
        await api(client, "PUT", SCHEDULE, {**wanted, "channel_id": mail})
        clock.advance(minutes=10)  # November's third try is due 10 min after its second failure
        messages = await smtp.wait_for(2)
        # The server stays up until the sender has finished its conversation with it.
        await until(lambda: all_sent(sends), "both recorded as sent")
    assert sorted(m["Subject"].rpartition(", ")[2] for m in messages) == ["December 2026", "November 2026"]
    assert {m["To"] for m in messages} == {"owner@bakery.example"}
    assert [(s["first_day"], s["attempts"], s["error"]) for s in await sends()] == [
        ("2026-12-01", 2, None), ("2026-11-01", 3, None)]


async def cli(client: TestClient, *args: str) -> str:
    """`fieldpost report-mail ARGS` against the test's collector; its output."""
    url = str(client.make_url("")).rstrip("/")
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "technician", "--url", url, "--token",
                                                    "tech-secret", "report-mail", *args], capture_output=True,
                                   text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def failed_send(sends: Callable[[], Any]) -> dict[str, Any] | None:
    """The newest send when it failed."""
    listed = await sends()
    return listed[0] if listed and listed[0]["status"] == "failed" else None


async def all_sent(sends: Callable[[], Any]) -> bool:
    """Whether every send was sent."""
    listed = await sends()
    return bool(listed) and all(s["status"] == "sent" for s in listed)


async def test_without_recipients_the_report_goes_to_the_clients_billing_address(
    client: TestClient, clock: Clock
) -> None:
    await bakery_november(client, clock)
    await add_channel(client, "mail", "mailto://technician:secret@127.0.0.1:2525?from=it@example.com")
    monthly = {"frequency": "monthly", "day": 3}
    assert f"billing e-mail or billing contact for {BAKERY}" in await refused(client, monthly)
    await api(client, "PATCH", f"/api/v1/clients/{BAKERY.replace(' ', '%20')}",
              {"billing_email": "Accounts@Bakery.EXAMPLE"})
    schedule = await api(client, "PUT", SCHEDULE, monthly)
    assert schedule["recipients"] == ["Accounts@bakery.example"]


async def test_no_report_is_mailed_on_schedule_to_the_demo_client_nor_to_an_archived_one(
    client: TestClient, clock: Clock
) -> None:
    await bakery_november(client, clock)
    clock.now = at(11, 20, 9)
    await add_channel(client, "dead relay", f"mailto://{LOOPBACK}:{free_port()}?from=it@example.com")
    bakery = f"/api/v1/clients/{BAKERY.replace(' ', '%20')}"
    await api(client, "PUT", f"{bakery}/demo", {"demo": True})
    # The technician's command still sets the schedule, and says why nothing will be mailed.
    shown = await cli(client, BAKERY, "--monthly", "--day", "3", "--to", "owner@bakery.example")
    assert "Corner Bakery is the demo client: its value report is never mailed on schedule" in shown

    clock.now = at(12, 3, 9)
    mail = ReportMail(client.app[keys.STORE], clock)
    assert await mail.send_due() == []
    await api(client, "PUT", f"{bakery}/demo", {"demo": False})
    await api(client, "POST", f"{bakery}/archive", {})
    assert await mail.send_due() == []
    state = await api(client, "GET", SCHEDULE)
    assert (state["sends"], state["held"]) == ([], "Corner Bakery is archived: no value report is mailed to it")
    # Back among the active clients: its report is due, and tried (the relay is down: recorded as failed).
    await api(client, "POST", f"{bakery}/restore", {})
    [tried] = await mail.send_due()
    assert (tried.first_day, tried.status) == (date(2026, 11, 1), "failed")
    assert (await api(client, "GET", SCHEDULE))["held"] is None
