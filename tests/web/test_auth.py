"""Who may use the dashboard: every page and form refuses strangers, every form wants its CSRF token,
sessions start at the login form and end at logout, and the API takes a session as it takes the token."""

from __future__ import annotations

import re

import pytest
from aiohttp.test_utils import TestClient
from aiohttp.web import AbstractResource, Application

from collector import keys
from collector.web.login import safe_next
from collector.web.sessions import COOKIE
from tests.support.clock import Clock
from tests.web.conftest import LOGIN_CSRF, NAME, PASSWORD, critical_alert, log_in

# Values for the path parameters of the dashboard's routes.
SAMPLES = {"alert_id": "1", "silence_id": "1", "token_hash": "a" * 64, "name": "phone", "agent_id": "ag_x",
           "action": "acknowledge", "kind": "start", "token": "not-a-job", "verb": "disable", "switch": "disable",
           "session_hash": "b" * 64, "change": "archive",
           "candidate": "44:19:b6:12:34:56", "step": "pause"}
NOT_DASHBOARD = ("/api/", "/static", "/healthz", "/readyz", "/login")
AGENT_API = ("/api/v1/enrol", "/api/v1/reports", "/api/v1/site-config", "/api/v1/push", "/api/v1/openapi.json")


def dashboard_paths(app: Application, method: str) -> list[str]:
    """Every dashboard route of a method (not the API, static files, health or login), with sample ids."""
    paths = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if route.method == method and not canonical.startswith(NOT_DASHBOARD):
            paths.append(re.sub(r"\{(\w+)\}", lambda m: SAMPLES.get(m[1], "1"), canonical))
    return sorted(set(paths))


async def test_every_page_sends_a_stranger_to_the_login_page(client: TestClient) -> None:
    pages = dashboard_paths(client.app, "GET")
    assert {"/", "/alerts/1", "/clients", "/devices/ag_x", "/settings/channels", "/settings/silences",
            "/settings/tokens"} <= set(pages)
    for path in pages:
        response = await client.get(path, allow_redirects=False)
        assert response.status == 303, path
        assert response.headers["Location"].startswith("/login?next=%2F"), path


async def test_every_form_refuses_a_stranger_and_a_forged_cookie(client: TestClient) -> None:
    forms = dashboard_paths(client.app, "POST")
    assert {"/alerts/1/acknowledge", "/alerts/1/silence", "/settings/channels", "/settings/silences",
            f"/settings/tokens/{'a' * 64}/revoke", "/logout"} <= set(forms)
    for path in forms:
        assert (await client.post(path, data={"csrf": "x"})).status == 401, path
        forged = await client.post(path, data={"csrf": "x"}, cookies={COOKIE: "made-up"})
        assert forged.status == 401, path


async def test_every_form_refuses_a_missing_or_wrong_csrf_token(client: TestClient, clock: Clock) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    silence = {"client": "Acme Tooling", "minutes": "60", "comment": "maintenance"}
    for path in dashboard_paths(client.app, "POST"):
        for wrong in ({}, {"csrf": "not-the-token"}, {"csrf": csrf[:-1]}):
            response = await client.post(path, data={**silence, **wrong}, allow_redirects=False)
            assert response.status == 403, (path, wrong)
        header = await client.post(path, data=silence, headers={"X-CSRF-Token": "wrong"},
                                   allow_redirects=False)
        assert header.status == 403, path
    async with client.app[keys.STORE].transaction() as tx:
        assert await tx.silences() == []
        alert = await tx.alert(1)
        assert alert is not None and alert.acknowledged_at is None
    done = await client.post("/settings/silences", data={**silence, "csrf": csrf}, allow_redirects=False)
    assert done.status == 303
    assert (await client.get("/clients")).status == 200, "refused forms did not log the browser out"


async def test_logging_in_needs_the_forms_own_csrf_token_and_the_right_password(client: TestClient) -> None:
    [token] = LOGIN_CSRF.findall(await (await client.get("/login")).text())
    good = {"csrf": token, "name": NAME, "password": PASSWORD}
    assert (await client.post("/login", data={**good, "csrf": ""})).status == 403
    assert (await client.post("/login", data={**good, "csrf": "forged"})).status == 403
    [token] = LOGIN_CSRF.findall(await (await client.get("/login")).text())
    wrong = await client.post("/login", data={**good, "csrf": token, "password": "guess guess guess"})
    assert wrong.status == 401
    assert "Wrong name or password." in await wrong.text()
    [token] = LOGIN_CSRF.findall(await wrong.text())
    nobody = await client.post("/login", data={**good, "csrf": token, "name": "mallory"})
    assert nobody.status == 401
    [token] = LOGIN_CSRF.findall(await nobody.text())
    response = await client.post("/login?next=/clients", data={**good, "csrf": token}, allow_redirects=False)
    assert (response.status, response.headers["Location"]) == (303, "/clients")
    [cookie] = [c for c in response.headers.getall("Set-Cookie") if c.startswith(f"{COOKIE}=")]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


async def test_the_session_cookie_is_secure_behind_an_https_proxy(client: TestClient) -> None:
    https = {"X-Forwarded-Proto": "https"}
    form = await client.get("/login", headers=https)
    assert "Secure" in form.headers["Set-Cookie"]
    [token] = LOGIN_CSRF.findall(await form.text())
    # The jar keeps Secure cookies away from plain http, so the login form's cookie goes along by hand.
    fields = {"csrf": token, "name": NAME, "password": PASSWORD}
    response = await client.post("/login", headers=https, cookies={"fieldpost_login": token}, data=fields,
                                 allow_redirects=False)
    [cookie] = [c for c in response.headers.getall("Set-Cookie") if c.startswith(f"{COOKIE}=")]
    assert "Secure" in cookie and "HttpOnly" in cookie


# Where `next` may send the browser after login: a path of this collector, or else the feed ("/").
NEXT_TARGETS = [
    ("/settings/tokens", "/settings/tokens"),
    ("/alerts/1?from=feed#history", "/alerts/1?from=feed#history"),
    ("/%2F%2Fevil.example", "/%2F%2Fevil.example"),  # a path of ours (the browser keeps the escapes)
    ("//evil.example/x", "/"),
    ("/\t/evil.example/", "/"),  # browsers drop the tab: //evil.example/
    ("/\n/evil.example/", "/"),
    ("/\r\n/evil.example/", "/"),
    ("/ /evil.example/", "/"),
    ("\\\\evil.example", "/"),
    ("/\\evil.example", "/"),
    ("https://evil.example/", "/"),
    ("javascript:alert(1)", "/"),
    ("evil.example", "/"),
    ("", "/"),
    ("/\x7f/evil.example", "/"),
]


@pytest.mark.parametrize(("target", "expected"), NEXT_TARGETS)
def test_next_is_followed_only_to_a_path_of_this_collector(target: str, expected: str) -> None:
    assert safe_next(target) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("/settings/tokens", "/settings/tokens"), ("/%09/evil.example/", "/"), ("//evil.example/x", "/"),
    ("https://evil.example/", "/"), ("/%5Cevil.example", "/"), ("%5C%5Cevil.example", "/"),
])
async def test_after_login_it_goes_back_only_to_a_page_of_this_collector(
    client: TestClient, raw: str, expected: str
) -> None:
    [token] = LOGIN_CSRF.findall(await (await client.get("/login")).text())
    url = client.make_url("/login").with_query(None)
    response = await client.session.post(f"{url}?next={raw}", allow_redirects=False,
                                         data={"csrf": token, "name": NAME, "password": PASSWORD})
    assert response.headers["Location"] == expected, raw
    again = await client.session.get(f"{url}?next={raw}", allow_redirects=False)  # logged in: straight on
    assert again.headers["Location"] == expected, raw


async def test_logging_out_ends_the_session_for_pages_and_the_api(client: TestClient) -> None:
    csrf = await log_in(client)
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    assert (await client.get("/api/v1/alerts")).status == 200
    out = await client.post("/logout", data={"csrf": csrf}, allow_redirects=False)
    assert (out.status, out.headers["Location"]) == (303, "/login")
    again = {COOKIE: cookie}
    assert (await client.get("/", cookies=again, allow_redirects=False)).status == 303
    assert (await client.get("/api/v1/alerts", cookies=again)).status == 401
    assert (await client.get("/api/v1/feed", cookies=again)).status == 401


async def test_the_api_takes_a_session_for_reads_and_for_writes_only_with_the_csrf_header(
    client: TestClient, clock: Clock
) -> None:
    csrf = await log_in(client)
    await critical_alert(client, clock)
    [alert] = (await (await client.get("/api/v1/alerts")).json())["alerts"]
    feed = await client.get("/api/v1/feed?after=0")
    assert (feed.status, feed.headers["Content-Type"]) == (200, "text/event-stream")
    assert b"retry: 3000" in await feed.content.readuntil(b"\n\n")
    feed.close()
    path = f"/api/v1/alerts/{alert['alert_id']}/acknowledge"
    assert (await client.post(path, json={})).status == 401
    assert (await client.post(path, json={}, headers={"X-CSRF-Token": "wrong"})).status == 401
    acked = await client.post(path, json={"note": "from the browser"}, headers={"X-CSRF-Token": csrf})
    assert acked.status == 200
    assert (await acked.json())["acknowledged_by"] == "technician"


def sample_path(resource: AbstractResource) -> str:
    """A path the resource matches, its parameters filled from SAMPLES (an action also as a timer's)."""
    canonical = resource.canonical
    for samples in (SAMPLES, {**SAMPLES, "action": "start"}):
        path = re.sub(r"\{(\w+)\}", lambda m, samples=samples: samples.get(m[1], "1"), canonical)
        pattern = resource.get_info().get("pattern")
        if pattern is None or pattern.fullmatch(path):
            return path
    raise AssertionError(f"no sample path for {canonical}")


def api_paths(app: Application) -> list[tuple[str, str]]:
    """Every technician API route (method, sample path): not the agents' enrolment, reports, push pings or OpenAPI."""
    routes = []
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if canonical.startswith("/api/v1/") and not canonical.startswith(AGENT_API) and route.method != "HEAD":
            routes.append((route.method, sample_path(route.resource)))
    return sorted(set(routes))


async def test_the_api_refuses_the_technician_token_in_the_url(client: TestClient, clock: Clock) -> None:
    await critical_alert(client, clock)
    routes = api_paths(client.app)
    assert {("GET", "/api/v1/feed"), ("POST", "/api/v1/alerts/1/acknowledge")} <= set(routes)
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer tech-secret"}):
            response = await client.request(method, path, params={"token": "tech-secret"}, json={}, headers=headers)
            assert response.status == 400, (method, path)
            assert "not accepted in the URL" in (await response.json())["error"], (method, path)
    async with client.app[keys.STORE].read() as tx:
        alert = await tx.alert(1)
    assert alert is not None and alert.acknowledged_at is None
