"""The value report for a quarter or any days (a trial) from a client's billing page, and a clear refusal
for a period that cannot be."""

from __future__ import annotations

import re
from html import unescape

from aiohttp.test_utils import TestClient

from tests.support.clock import Clock
from tests.web.conftest import critical_alert, log_in
from tests.web.test_incident_pages import post

BASE = "/billing/clients/Acme%20Tooling"


async def test_the_billing_page_offers_the_quarter_and_any_days_and_refuses_a_backwards_range(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    await post(client, "/alerts/1/incident", csrf)
    page = await (await client.get(f"{BASE}?month=2026-11")).text()
    [quarter] = re.findall(r'<a href="([^"]+)" id="quarter-report">Quarter 2026Q4</a>', page)
    assert unescape(quarter) == f"{BASE}/report?quarter=2026Q4"
    # The form starts at the six months to the page's month, a trial's length.
    assert 'name="from" type="date" required value="2026-06-01"' in page
    assert 'name="to" type="date" required value="2026-11-30"' in page
    assert f'<form method="get" action="{BASE}/report" class="row" id="period-report">' in page

    shown = await client.get(unescape(quarter))
    assert shown.status == 200
    text = unescape(await shown.text())
    assert "01 October 2026 to 31 December 2026" in text
    assert "The drive C: on " in text and " was running out of space." in text
    trial = await client.get(f"{BASE}/report", params={"from": "2026-06-01", "to": "2026-11-30", "format": "html"})
    assert "01 June 2026 to 30 November 2026" in unescape(await trial.text())

    backwards = await client.get(f"{BASE}/report", params={"from": "2026-11-30", "to": "2026-06-01"})
    assert backwards.status == 400
    assert "To (2026-06-01) is before from (2026-11-30)" in unescape(await backwards.text())
    odd = await client.get(f"{BASE}/report", params={"quarter": "2026Q7"})
    assert odd.status == 400 and "e.g. 2026Q3" in unescape(await odd.text())
