"""Time saved by preparation: recorded on an incident through the API, refused when it cannot be right, and
shown in the value report per incident and as a total, priced for a break/fix client."""

from __future__ import annotations

import re
from html import unescape

from aiohttp.test_utils import TestClient

from tests.collector import test_incidents
from tests.collector.test_incidents import BAKERY, RATES, api, incident, work
from tests.collector.test_value_report import at, figure
from tests.support.clock import Clock
from tests.support.collector import TECH

client = test_incidents.client


def words(html: str) -> str:
    """The page's text, tags out and spaces collapsed."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


async def bakery_report(client: TestClient) -> str:
    """The bakery's November report as HTML."""
    response = await client.get(f"/api/v1/clients/{BAKERY}/report?month=2026-11", headers=TECH)
    assert response.status == 200, await response.text()
    return await response.text()


async def test_a_restore_from_the_image_backups_shows_the_time_and_money_the_preparation_saved(
    client: TestClient, clock: Clock
) -> None:
    clock.now = at(11, 3, 9)
    await test_incidents.enrol(client, "TILL-01", BAKERY)
    await api(client, "POST", "/api/v1/rates", RATES, 201)
    restore = await incident(client, "Both tills rebuilt after the ransomware", BAKERY, category="backup")
    await work(client, restore, "2026-11-03T10:00:00Z", 70, on_site=True)
    path = f"/api/v1/incidents/{restore}/time-saved"
    saved = await api(client, "POST", path, {"minutes_without": 300, "preparation": "backup_image"})
    assert (saved["minutes_without"], saved["preparation"], saved["recorded_by"]) == (300, "backup_image", "technician")
    shown = await api(client, "GET", f"/api/v1/incidents/{restore}")
    assert shown["time_saved"]["minutes_saved"] == 230  # 300 without the backups, 70 with them

    html = await bakery_report(client)
    text = words(html)
    assert "Restored from backup in 1 h 10 min; without the image backups this would have taken about 5 h." in text
    assert "3 h 50 min time saved by preparation" in text
    # Break/fix: 70 min on site -> the 120-minute call-out minimum at 90.00 = 180.00; the 300 minutes without
    # the backups, one on-site visit, 450.00; so the preparation saved 270.00 at the client's own rates.
    assert figure(html, "The work below, at our pay-as-you-go") == "EUR 180.00"
    assert "saved about 3 h 50 min of work in this period, about EUR 270.00 at our pay-as-you-go rates" in text
    assert "At pay-as-you-go rates it cost EUR 180.00; the longer job would have cost EUR 450.00." in text
    # The case for a contract: the backup problem the bakery reported is one monitoring watches for.
    assert "What monitoring would have caught Both tills rebuilt after the ransomware" in text
    assert ("EUR 180.00 at pay-as-you-go rates: with a contract, monitoring watches your devices for backups that "
            "failed or stopped running") in text

    removed = await client.delete(f"{path}?technician=sam", headers=TECH)
    assert removed.status == 200
    assert "time saved by preparation" not in words(await bakery_report(client))
    assert (await client.delete(path, headers=TECH)).status == 404


async def test_an_estimate_that_cannot_be_right_is_refused_naming_the_field(client: TestClient, clock: Clock) -> None:
    clock.now = at(11, 3, 9)
    await test_incidents.enrol(client, "TILL-01", BAKERY)
    fix = await incident(client, "Receipt printer replaced", BAKERY)
    path = f"/api/v1/incidents/{fix}/time-saved"
    for body, field in (
        ({"minutes_without": 90, "preparation": "other"}, "detail"),
        ({"minutes_without": 90, "preparation": "other", "detail": "   "}, "detail"),
        ({"minutes_without": 90, "preparation": "luck"}, "preparation"),
        ({"minutes_without": 0, "preparation": "spare_part"}, "minutes_without"),
        ({"preparation": "spare_part"}, "minutes_without"),
    ):
        refused = await client.post(path, json=body, headers=TECH)
        assert refused.status == 422, (body, await refused.text())
        assert field in await refused.text(), body
    other = {"minutes_without": 90, "preparation": "other", "detail": " spare  till kept set up "}
    assert (await api(client, "POST", path, other))["detail"] == "spare till kept set up"
    missing = await client.post("/api/v1/incidents/999/time-saved", json=other, headers=TECH)
    assert missing.status == 404



async def test_the_time_saved_counts_in_the_period_the_work_was_done_once(client: TestClient, clock: Clock) -> None:
    clock.now = at(10, 30, 16)
    await test_incidents.enrol(client, "TILL-01", BAKERY)
    await api(client, "POST", "/api/v1/rates", RATES, 201)
    fix = await incident(client, "Till swapped for the spare", BAKERY, category="hardware")
    await work(client, fix, "2026-11-02T08:00:00Z", 60)
    await api(client, "POST", f"/api/v1/incidents/{fix}/time-saved", {"minutes_without": 180,
                                                                       "preparation": "spare_part"})
    clock.now = at(12, 1, 8)
    october = await client.get(f"/api/v1/clients/{BAKERY}/report?month=2026-10", headers=TECH)
    text = words(await october.text())
    assert "Till swapped for the spare" in text and "time saved by preparation" not in text
    november = words(await bakery_report(client))
    assert "2 h time saved by preparation" in november
    assert "Replaced from stock in 1 h; without a spare part on hand this would have taken about 3 h." in november
