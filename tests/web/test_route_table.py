"""Every route of the collector states what a caller needs (public, agent, push token, technician, owner), read
from `app.router`: a new route without a declared requirement, or with one that differs from this table, fails."""

from __future__ import annotations

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from aiohttp.web_urldispatcher import AbstractRoute

from collector import keys
from collector.access import Access, required
from collector.services.technicians import Technicians
from tests.support.collector import TECH
from tests.web.conftest import log_in
from tests.web.test_auth import sample_path

# METHOD path: requirement, for every route but HEAD (which answers as its GET does).
TABLE = """
POST /api/v1/enrol: agent
POST /api/v1/reports: agent
GET /api/v1/site-config: agent
GET /api/v1/sites/{client}/{site}/network-devices: technician
POST /api/v1/sites/{client}/{site}/network-devices: technician
DELETE /api/v1/sites/{client}/{site}/network-devices/{name}: technician
GET /api/v1/sites/{client}/{site}/network-device-candidates: technician
POST /api/v1/sites/{client}/{site}/network-device-candidates/{candidate}/adopt: technician
POST /api/v1/sites/{client}/{site}/network-device-candidates/{candidate}/dismiss: technician
GET /sites/{client}/{site}/network-devices: technician
POST /sites/{client}/{site}/network-devices: technician
POST /sites/{client}/{site}/network-devices/{name}/remove: technician
GET /api/v1/clients/{name}/escrow: technician
PUT /api/v1/clients/{name}/escrow: technician
POST /api/v1/clients/{name}/escrow/purge: technician
GET /api/v1/devices/{agent_id}/escrow: technician
POST /api/v1/devices/{agent_id}/escrow/reveal: technician
POST /clients/{client}/escrow: technician
POST /sites/{client}/{site}/network-devices/candidates/{candidate}/dismiss: technician
GET /api/v1/openapi.json: public
GET /api/v1/push/{token}: push token
POST /api/v1/push/{token}: push token
GET /api/v1/push/{token}/{kind}: push token
POST /api/v1/push/{token}/{kind}: push token
GET /healthz: public
GET /readyz: public
GET /api/v1/audit: owner
GET /static: public
GET /login: public
POST /login: public
GET /login/code: public
POST /login/code: public
GET /settings/two-factor: technician
POST /settings/two-factor/setup: technician
POST /settings/two-factor/enable: technician
POST /settings/two-factor/disable: technician
GET /settings/sessions: technician
POST /settings/sessions/{session_hash}/revoke: technician
POST /logout: technician
GET /api/v1/alerts: technician
GET /api/v1/alerts/{alert_id}: technician
POST /api/v1/alerts/{alert_id}/{action}: technician
GET /api/v1/devices: technician
GET /api/v1/clients: technician
GET /api/v1/feed: technician
GET /api/v1/channels: owner
POST /api/v1/channels: owner
POST /api/v1/channels/{name}/test: owner
PATCH /api/v1/channels/{name}: owner
DELETE /api/v1/channels/{name}: owner
POST /api/v1/channels/{name}/{switch}: owner
PUT /api/v1/devices/{agent_id}/class: technician
PUT /api/v1/clients/{name}/hours: technician
POST /devices/{agent_id}/class: technician
POST /clients/{name}/hours: technician
GET /api/v1/silences: technician
POST /api/v1/silences: technician
POST /api/v1/silences/{silence_id}/expire: technician
GET /: technician
GET /alerts/{alert_id}: technician
POST /alerts/{alert_id}/{action}: technician
POST /alerts/{alert_id}/silence: technician
GET /clients: technician
GET /devices/{agent_id}: technician
GET /settings: technician
GET /settings/channels: owner
GET /settings/silences: technician
GET /settings/tokens: owner
GET /settings/audit: owner
POST /settings/channels: owner
POST /settings/channels/{name}/test: owner
POST /settings/channels/{name}/{verb}: owner
POST /settings/silences: technician
POST /settings/silences/{silence_id}/expire: technician
POST /settings/tokens: owner
POST /settings/tokens/{token_hash}/revoke: owner
GET /incidents: technician
POST /incidents: technician
GET /incidents/{incident_id}: technician
POST /alerts/{alert_id}/incident: technician
POST /incidents/{incident_id}/timer/start: technician
POST /incidents/{incident_id}/timer/stop: technician
POST /incidents/{incident_id}/time: technician
POST /incidents/{incident_id}/notes: technician
POST /incidents/{incident_id}/parts: technician
POST /incidents/{incident_id}/close: technician
POST /incidents/{incident_id}/title: technician
POST /incidents/{incident_id}/time-saved: technician
POST /incidents/{incident_id}/time-saved/delete: technician
POST /incidents/{incident_id}/time/{entry_id}: technician
POST /incidents/{incident_id}/time/{entry_id}/delete: technician
POST /incidents/{incident_id}/parts/{part_id}/delete: technician
GET /billing: technician
GET /billing/contracts: owner
POST /billing/contracts: owner
POST /billing/rates: owner
GET /billing/settings: owner
POST /billing/settings: owner
POST /billing/clients/{client}/tax: owner
POST /api/v1/clients/{client}/tax: owner
GET /billing/clients/{client}: technician
GET /billing/clients/{client}/invoice: technician
GET /billing/clients/{client}/report: technician
POST /billing/clients/{client}/invoices: owner
POST /billing/clients/{client}/charges: owner
POST /billing/invoices/{number}/void: owner
GET /billing/invoices/{number}: technician
POST /api/v1/clients/{client}/invoices: owner
POST /api/v1/clients/{client}/charges: owner
GET /api/v1/clients/{client}/invoices: technician
GET /api/v1/invoices/{number}: technician
POST /api/v1/invoices/{number}/void: owner
GET /api/v1/billing/settings: technician
POST /api/v1/billing/settings: owner
POST /api/v1/devices/{agent_id}/billing: owner
GET /api/v1/clients/{client}/devices: technician
GET /api/v1/clients/{client}/invoice: technician
GET /api/v1/clients/{client}/report: technician
GET /api/v1/incidents: technician
POST /api/v1/incidents: technician
GET /api/v1/incidents/{incident_id}: technician
POST /api/v1/incidents/{incident_id}/notes: technician
POST /api/v1/incidents/{incident_id}/alerts: technician
POST /api/v1/incidents/{incident_id}/close: technician
POST /api/v1/incidents/{incident_id}/timer/{action}: technician
POST /api/v1/incidents/{incident_id}/time: technician
POST /api/v1/incidents/{incident_id}/parts: technician
POST /api/v1/time/{entry_id}/override: technician
POST /api/v1/incidents/{incident_id}/title: technician
POST /api/v1/incidents/{incident_id}/time-saved: technician
GET /api/v1/clients/{client}/report-schedule: technician
PUT /api/v1/clients/{client}/report-schedule: owner
DELETE /api/v1/clients/{client}/report-schedule: owner
DELETE /api/v1/incidents/{incident_id}/time-saved: technician
POST /api/v1/time/{entry_id}: technician
DELETE /api/v1/time/{entry_id}: technician
DELETE /api/v1/parts/{part_id}: technician
GET /api/v1/clients/{client}/contracts: owner
POST /api/v1/clients/{client}/contracts: owner
GET /api/v1/rates: owner
POST /api/v1/rates: owner
POST /api/v1/clients: technician
GET /api/v1/clients/{client}: technician
PATCH /api/v1/clients/{client}: technician
POST /api/v1/clients/{client}/{change}: owner
PUT /api/v1/clients/{client}/demo: owner
POST /api/v1/clients/{client}/contacts: technician
PUT /api/v1/clients/{client}/contacts/{contact_id}: technician
DELETE /api/v1/clients/{client}/contacts/{contact_id}: technician
POST /api/v1/clients/{client}/sites: technician
PATCH /api/v1/clients/{client}/sites/{site}: technician
POST /api/v1/clients/{client}/sites/{site}/{change}: technician
POST /clients: technician
GET /clients/{client}: technician
POST /clients/{client}/details: technician
POST /clients/{client}/contacts: technician
POST /clients/{client}/contacts/{contact_id}/remove: technician
POST /clients/{client}/contacts/{contact_id}/billing: technician
POST /clients/{client}/sites: technician
POST /clients/{client}/sites/{site}/rename: technician
POST /clients/{client}/sites/{site}/{change}: technician
POST /clients/{client}/{change}: owner
POST /clients/{client}/demo: owner
GET /backups: technician
POST /backups: owner
GET /backups/{job_id}/{step}: owner
POST /backups/{job_id}/{step}: owner
"""


def declared(client: TestClient) -> dict[tuple[str, str], Access | None]:
    """Each route of the running app (method, path) and the requirement its handler declares."""
    return {(route.method, route.resource.canonical if route.resource else "?"): required(route)
            for route in client.app.router.routes()}


def expected() -> dict[tuple[str, str], Access]:
    """The table above, parsed."""
    rows = {}
    for line in TABLE.strip().splitlines():
        route, _, access = line.rpartition(": ")
        method, _, path = route.partition(" ")
        rows[(method, path)] = Access(access)
    return rows


async def test_every_route_declares_what_a_caller_needs_as_the_table_says(client: TestClient) -> None:
    routes = declared(client)
    undeclared = sorted(f"{method} {path}" for (method, path), access in routes.items() if access is None)
    assert undeclared == [], "declare what these routes require (collector.access)"
    heads = {(m, p): a for (m, p), a in routes.items() if m == "HEAD"}
    assert all(routes[("GET", path)] == access for (_, path), access in heads.items())
    assert {route: access for route, access in routes.items() if route[0] != "HEAD"} == expected()


async def refusal(client: TestClient, method: str, path: str) -> ClientResponse:
    return await client.request(method, path, data={"csrf": "x"}, allow_redirects=False)


async def test_each_declared_requirement_is_enforced_on_a_stranger(client: TestClient) -> None:
    for route in client.app.router.routes():
        access = required(route)
        if route.method == "HEAD" or route.resource is None:
            continue
        path = "/static/app.css" if route.resource.canonical == "/static" else sample_path(route.resource)
        response = await refusal(client, route.method, path)
        where = f"{route.method} {path}"
        if access in (Access.TECHNICIAN, Access.OWNER):
            if route.method == "GET" and not path.startswith("/api/"):
                assert response.status == 303 and response.headers["Location"].startswith("/login"), where
            else:
                assert response.status == 401, where
        elif access is Access.AGENT:
            assert response.status in (401, 422), where  # no signature; no enrolment token
        elif access is Access.PUSH:
            assert response.status == 404, where  # no such job
        elif path.startswith("/login/code"):
            # A login's second step without the password's: back to the password, or 403 without its CSRF.
            assert access is Access.PUBLIC and response.status in (303, 403), where
        else:
            assert access is Access.PUBLIC and response.status in (200, 403), where  # 403: login without its CSRF


async def as_session(client: TestClient, route: AbstractRoute, csrf: str) -> ClientResponse:
    """The route called by the logged-in browser (forms with the session's CSRF token, scripts' header too)."""
    return await client.request(route.method, sample_path(route.resource), data={"csrf": csrf},
                                headers={"X-CSRF-Token": csrf}, allow_redirects=False)


def routes_needing(client: TestClient, *needs: Access) -> list[AbstractRoute]:
    return [r for r in client.app.router.routes() if r.method != "HEAD" and required(r) in needs]


async def test_a_technician_account_is_refused_every_owner_route_and_served_the_others(client: TestClient) -> None:
    ben = await Technicians(client.app[keys.STORE], client.app[keys.CLOCK]).add("ben", "another good password")
    assert ben.role == "technician", "accounts after the first are technicians unless told otherwise"
    csrf = await log_in(client, "ben", "another good password")
    owners = routes_needing(client, Access.OWNER)
    assert len(owners) == TABLE.count(": owner")
    for route in owners:
        response = await as_session(client, route, csrf)
        assert response.status == 403, f"{route.method} {route.resource.canonical}"
        assert "only the collector's owner may do this" in (await response.text()).lower()
    for route in routes_needing(client, Access.TECHNICIAN):
        if route.resource.canonical in ("/logout", "/api/v1/feed"):
            continue  # logging out ends the session; the feed never ends
        response = await as_session(client, route, csrf)
        assert response.status != 403, f"{route.method} {route.resource.canonical}"
    settings = await client.get("/settings", allow_redirects=False)
    assert settings.headers["Location"] == "/settings/silences"


async def test_the_owner_and_the_token_are_served_every_owner_route(client: TestClient) -> None:
    for route in routes_needing(client, Access.OWNER):
        if not route.resource.canonical.startswith("/api/"):
            continue  # the token opens the API; the pages want a browser session
        response = await client.request(route.method, sample_path(route.resource), json={}, headers=TECH,
                                        allow_redirects=False)
        assert response.status not in (401, 403), f"{route.method} {route.resource.canonical}"
    csrf = await log_in(client)  # anna, the first account: the owner
    for route in routes_needing(client, Access.OWNER):
        response = await as_session(client, route, csrf)
        assert response.status not in (401, 403), f"{route.method} {route.resource.canonical}"


async def test_a_technician_is_not_shown_links_to_the_owners_pages(client: TestClient) -> None:
    await Technicians(client.app[keys.STORE], client.app[keys.CLOCK]).add("ben", "another good password")
    await log_in(client, "ben", "another good password")
    for path in ("/settings/silences", "/billing"):
        page = await (await client.get(path)).text()
        assert 'href="/settings/channels"' not in page and 'href="/settings/tokens"' not in page, path
        assert 'href="/billing/contracts"' not in page, path
    client.session.cookie_jar.clear()
    await log_in(client)
    page = await (await client.get("/settings/silences")).text()
    assert 'href="/settings/channels"' in page and 'href="/settings/tokens"' in page
