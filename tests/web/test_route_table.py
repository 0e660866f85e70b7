"""Every route of the collector states what a caller needs (public, agent, push token, technician, owner), read
from `app.router`: a new route without a declared requirement, or with one that differs from this table, fails."""

from __future__ import annotations

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from collector.access import Access, required
from tests.web.test_auth import sample_path

# METHOD path: requirement, for every route but HEAD (which answers as its GET does).
TABLE = """
POST /api/v1/enrol: agent
POST /api/v1/reports: agent
GET /api/v1/push/{token}: push token
POST /api/v1/push/{token}: push token
GET /api/v1/push/{token}/{kind}: push token
POST /api/v1/push/{token}/{kind}: push token
GET /healthz: public
GET /static: public
GET /login: public
POST /login: public
POST /logout: technician
GET /api/v1/alerts: technician
GET /api/v1/alerts/{alert_id}: technician
POST /api/v1/alerts/{alert_id}/{action}: technician
GET /api/v1/devices: technician
GET /api/v1/clients: technician
GET /api/v1/feed: technician
GET /api/v1/channels: technician
POST /api/v1/channels: technician
POST /api/v1/channels/{name}/test: technician
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
GET /settings/channels: technician
GET /settings/silences: technician
GET /settings/tokens: technician
POST /settings/channels: technician
POST /settings/channels/{name}/test: technician
POST /settings/silences: technician
POST /settings/silences/{silence_id}/expire: technician
POST /settings/tokens: technician
POST /settings/tokens/{token_hash}/revoke: technician
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
GET /billing: technician
GET /billing/contracts: technician
POST /billing/contracts: technician
POST /billing/rates: technician
GET /billing/clients/{client}: technician
GET /billing/clients/{client}/invoice: technician
GET /billing/clients/{client}/report: technician
GET /api/v1/billing/settings: technician
POST /api/v1/billing/settings: technician
POST /api/v1/devices/{agent_id}/billing: technician
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
GET /api/v1/clients/{client}/contracts: technician
POST /api/v1/clients/{client}/contracts: technician
GET /api/v1/rates: technician
POST /api/v1/rates: technician
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
        else:
            assert access is Access.PUBLIC and response.status in (200, 403), where  # 403: login without its CSRF
