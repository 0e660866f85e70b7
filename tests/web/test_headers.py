"""Every response carries the security headers: no MIME sniffing, no referrer beyond the site, no framing;
HTML (the API's value report included) has a content security policy; HSTS whenever https is how we are reached."""

from __future__ import annotations

from pathlib import Path

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from collector.app import create_app
from collector.headers import LOCKED_CSP
from collector.settings import Settings
from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.web.conftest import critical_alert, log_in
from tests.web.test_auth import dashboard_paths

REPORT = "/api/v1/clients/Acme%20Tooling/report?month=2026-11"


def assert_hardened(response: ClientResponse, what: str) -> None:
    """The headers every answer has; HTML also a CSP that forbids framing."""
    headers = response.headers
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") == "same-origin", what
    assert headers.get("X-Frame-Options") == "DENY", what
    if response.content_type == "text/html":
        assert "frame-ancestors 'none'" in headers.get("Content-Security-Policy", ""), what


async def test_every_kind_of_answer_carries_the_security_headers(client: TestClient, clock: Clock) -> None:
    await critical_alert(client, clock)
    strangers = ["/login", "/", "/healthz", "/static/app.css", "/api/v1/alerts", "/no/such/page",
                 "/api/v1/push/not-a-job"]
    for path in strangers:
        response = await client.get(path, allow_redirects=False)
        assert_hardened(response, path)
        assert "Strict-Transport-Security" not in response.headers, "no HSTS over plain http"
    for path in ["/api/v1/alerts", "/api/v1/devices", REPORT, f"{REPORT}&format=bad", "/api/v1/feed?after=x"]:
        assert_hardened(await client.get(path, headers=TECH), path)
    await log_in(client)
    for path in dashboard_paths(client.app, "GET"):
        assert_hardened(await client.get(path, allow_redirects=False), path)
    feed = await client.get("/api/v1/feed?after=0")
    assert_hardened(feed, "the live feed")
    feed.close()


async def test_the_apis_html_value_report_may_run_no_script_and_load_nothing(
    client: TestClient, clock: Clock
) -> None:
    await critical_alert(client, clock)
    response = await client.get(REPORT, headers=TECH)
    assert (response.status, response.content_type) == (200, "text/html")
    assert response.headers["Content-Security-Policy"] == LOCKED_CSP
    assert "default-src 'none'" in LOCKED_CSP and "script-src" not in LOCKED_CSP


async def test_hsts_is_sent_when_the_browser_came_over_https(client: TestClient) -> None:
    response = await client.get("/login", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"
    api = await client.get("/api/v1/alerts", headers={**TECH, "X-Forwarded-Proto": "https"})
    assert api.headers["Strict-Transport-Security"] == "max-age=31536000"


async def test_hsts_is_sent_when_the_collectors_public_url_is_https(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="t", public_url="https://rmm.example.com")
    async with TestClient(TestServer(create_app(settings))) as client:
        for path in ("/login", "/healthz"):
            assert (await client.get(path)).headers["Strict-Transport-Security"] == "max-age=31536000", path
