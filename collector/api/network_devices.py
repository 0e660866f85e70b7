"""Endpoints for devices without an agent: the technician declares them per site, the site's agents fetch the
signed site document that lists them."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector import keys
from collector.access import Access, declare
from collector.api import error, wiring
from collector.api.errors import parse
from collector.api.technician import technician
from collector.auth import AuthError, admitted
from collector.services.network_devices import Adoption, Candidate
from collector.store import NetworkDeviceRow
from shared.reachability import SITE_CONFIG_PATH, Target

DEVICES_PATH = "/api/v1/sites/{client}/{site}/network-devices"
CANDIDATES_PATH = "/api/v1/sites/{client}/{site}/network-device-candidates"


def network_device_view(row: NetworkDeviceRow) -> dict[str, Any]:
    """A declared device as the API shows it."""
    return {**row.target.model_dump(mode="json"), "how": row.target.how()}


@technician
async def list_network_devices(request: web.Request) -> web.Response:
    """`GET /api/v1/sites/{client}/{site}/network-devices`: the site's devices without an agent."""
    rows = await wiring.network_devices(request).list(request.match_info["client"], request.match_info["site"])
    return web.json_response({"network_devices": [network_device_view(row) for row in rows]})


@technician
async def add_network_device(request: web.Request) -> web.Response:
    """`POST /api/v1/sites/{client}/{site}/network-devices` with `{"name": "Recorder", "address": "10.0.0.20",
    "kind": "camera_recorder", "probe": "tcp", "port": 554}`."""
    target = await parse(request, Target)
    row = await wiring.network_devices(request).add(request.match_info["client"], request.match_info["site"], target)
    return web.json_response(network_device_view(row), status=201)


@technician
async def remove_network_device(request: web.Request) -> web.Response:
    """`DELETE /api/v1/sites/{client}/{site}/network-devices/{name}`."""
    info = request.match_info
    await wiring.network_devices(request).remove(info["client"], info["site"], info["name"])
    return web.json_response({"removed": info["name"]})


def candidate_view(candidate: Candidate) -> dict[str, Any]:
    """A device not monitored yet as the API shows it."""
    return {"address": candidate.address, "mac": candidate.mac, "vendor": candidate.vendor, "kind": candidate.kind,
            "seen_by": list(candidate.seen_by)}


@technician
async def list_candidates(request: web.Request) -> web.Response:
    """`GET /api/v1/sites/{client}/{site}/network-device-candidates`: devices of camera, NAS and network makers
    in the neighbour tables of the site's PCs within the last day, neither declared nor dismissed."""
    found = await wiring.network_devices(request).candidates(request.match_info["client"], request.match_info["site"])
    return web.json_response({"candidates": [candidate_view(c) for c in found]})


@technician
async def adopt_candidate(request: web.Request) -> web.Response:
    """`POST /api/v1/sites/{client}/{site}/network-device-candidates/{candidate}/adopt` with `{"name": "Camera
    yard", "kind": "camera", "probe": "tcp", "port": 554}` (all optional); `candidate`: its hardware or IP
    address. It becomes a declared device, probed at the address it was seen at."""
    info = request.match_info
    how = await parse(request, Adoption)
    row = await wiring.network_devices(request).adopt(info["client"], info["site"], info["candidate"], how)
    return web.json_response(network_device_view(row), status=201)


@technician
async def dismiss_candidate(request: web.Request) -> web.Response:
    """`POST /api/v1/sites/{client}/{site}/network-device-candidates/{candidate}/dismiss`: not offered again
    (by its hardware address, wherever it is seen next)."""
    info = request.match_info
    found = await wiring.network_devices(request).dismiss(info["client"], info["site"], info["candidate"])
    return web.json_response({"dismissed": candidate_view(found)})


@declare(Access.AGENT)
async def site_config(request: web.Request) -> web.Response:
    """`GET /api/v1/site-config`, signed by the agent: its site's document, signed by the collector's
    configuration key (data to probe, never commands)."""
    app = request.app
    try:
        agent_id = await app[keys.AUTH].authenticate(request.headers, "GET", SITE_CONFIG_PATH, b"",
                                                     app[keys.CLOCK]().timestamp())
        async with app[keys.STORE].read() as tx:
            agent = admitted(agent_id, await tx.agent(agent_id))
    except AuthError as exc:
        return error(401, str(exc))
    body = await wiring.network_devices(request).document(agent.site)
    return web.Response(body=body, content_type="application/json")


def setup(app: web.Application) -> None:
    """Add the routes of devices without an agent."""
    app.router.add_get(SITE_CONFIG_PATH, site_config)
    app.router.add_get(DEVICES_PATH, list_network_devices)
    app.router.add_post(DEVICES_PATH, add_network_device)
    app.router.add_delete(DEVICES_PATH + "/{name}", remove_network_device)
    app.router.add_get(CANDIDATES_PATH, list_candidates)
    app.router.add_post(CANDIDATES_PATH + "/{candidate}/adopt", adopt_candidate)
    app.router.add_post(CANDIDATES_PATH + "/{candidate}/dismiss", dismiss_candidate)
