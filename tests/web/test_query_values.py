"""A malformed or out-of-range value in a URL's query is answered 400 with what is wrong, by the API and the
dashboard alike, never 500; values at the edge of the accepted range still work."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.support.collector import TECH, enrolled
from tests.web.conftest import log_in

ACME = "/api/v1/clients/Acme%20Tooling"
PAGE = "/billing/clients/Acme%20Tooling"
MONTH_RANGE = "the month must be from 1970-01 to 2999-12"
DAY_RANGE = "from and to must be days from 1970-01-01 to 2999-12-31"
DUE_DAYS = "due_days: must be a whole number from 0 to 365"
EVENT_ID = "Last-Event-ID (or after): must be a whole number from 0 to 9223372036854775807"

REFUSED = [
    (f"{ACME}/invoice?month=abc", "the month must be YYYY-MM, e.g. 2026-11"),
    (f"{ACME}/invoice?month=2026-13", "the month must be YYYY-MM, e.g. 2026-11"),
    (f"{ACME}/invoice?month=9999-12", MONTH_RANGE),
    (f"{ACME}/invoice?month=0001-01", MONTH_RANGE),
    (f"{ACME}/invoice?month=9999-12&format=qbo", MONTH_RANGE),
    (f"{ACME}/invoice?month=2026-11&format=qbo&due_days=abc", DUE_DAYS),
    (f"{ACME}/invoice?month=2026-11&format=xero&due_days=99999999999", DUE_DAYS),
    (f"{ACME}/invoice?month=2026-11&format=qbo&due_days=-5", DUE_DAYS),
    (f"{ACME}/invoice?month=2026-11&format=qbo&due_days=%C2%B2", DUE_DAYS),
    (f"{ACME}/invoice?month=2026-11&format=pdf", "the format must be json, csv, qbo or xero"),
    (f"{ACME}/report?month=9999-12", MONTH_RANGE),
    (f"{ACME}/report?month=0001-01", MONTH_RANGE),
    (f"{ACME}/report?from=0001-01-01&to=2026-01-01", DAY_RANGE),
    (f"{ACME}/report?from=2026-01-01&to=9999-12-31", DAY_RANGE),
    (f"{ACME}/report?from=2026-01-01", "from and to must both be dates"),
    (f"{ACME}/report?month=2026-11&format=docx", "the format must be html or pdf"),
    ("/api/v1/incidents?status=x", "the status must be open, closed or all"),
    ("/api/v1/alerts?state=x", "the state must be open, resolved or all"),
    ("/api/v1/feed?after=abc", EVENT_ID),
    ("/api/v1/feed?after=-1", EVENT_ID),
    ("/api/v1/feed?after=99999999999999999999", EVENT_ID),
]

PAGES_REFUSED = [
    (f"{PAGE}?month=9999-12", "The month must be from 1970-01 to 2999-12."),
    (f"{PAGE}?month=0001-01", "The month must be from 1970-01 to 2999-12."),
    (f"{PAGE}?month=abc", "The month must be YYYY-MM, e.g. 2026-11."),
    (f"{PAGE}/invoice?month=2026-11&format=qbo&due_days=abc", "Must be a whole number from 0 to 365"),
    (f"{PAGE}/report?month=0001-01", "The month must be from 1970-01 to 2999-12."),
]

ACCEPTED = [
    f"{ACME}/invoice?month=1970-01", f"{ACME}/invoice?month=2999-12&format=qbo&due_days=365",
    f"{ACME}/invoice?month=2026-11&format=xero&due_days=0", f"{ACME}/report?from=1970-01-01&to=2999-12-31",
    f"{ACME}/report?month=2999-12",
]


@pytest.fixture
async def acme(client: TestClient) -> TestClient:
    """The collector with Acme Tooling as a client (one enrolled PC)."""
    await enrolled(client)
    return client


@pytest.mark.parametrize(("path", "message"), REFUSED)
async def test_the_api_answers_a_bad_query_value_400_saying_what_is_wrong(
    acme: TestClient, path: str, message: str
) -> None:
    response = await acme.get(path, headers=TECH)
    assert response.status == 400, await response.text()
    assert message in (await response.json())["error"]


@pytest.mark.parametrize(("path", "message"), PAGES_REFUSED)
async def test_a_page_answers_a_bad_query_value_400_saying_what_is_wrong(
    acme: TestClient, path: str, message: str
) -> None:
    await log_in(acme)
    response = await acme.get(path)
    assert response.status == 400, await response.text()
    assert message in await response.text()


@pytest.mark.parametrize("path", ACCEPTED)
async def test_values_at_the_edge_of_the_range_are_accepted(acme: TestClient, path: str) -> None:
    response = await acme.get(path, headers=TECH)
    assert response.status == 200, await response.text()
