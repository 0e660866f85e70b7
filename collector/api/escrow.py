"""Endpoints of recovery-key escrow: the client's switch, the device's escrowed keys (never their values), a
technician's reveal (recorded in the device's history and the audit log) and the explicit purge."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector.api import wiring
from collector.api.errors import parse
from collector.api.technician import technician
from collector.audit import actor_of
from collector.services.escrow import EscrowInput, RevealInput
from collector.store import EscrowedKeyRow, EscrowPolicy

CLIENT_PATH = "/api/v1/clients/{name}/escrow"
DEVICE_PATH = "/api/v1/devices/{agent_id}/escrow"


def policy_view(policy: EscrowPolicy | None) -> dict[str, Any]:
    """The client's escrow switch as the API shows it (off and never changed: no one, no time)."""
    if policy is None:
        return {"enabled": False, "changed_at": None, "changed_by": None}
    return {"enabled": policy.enabled, "changed_at": policy.changed_at.isoformat(), "changed_by": policy.changed_by}


def key_view(row: EscrowedKeyRow) -> dict[str, Any]:
    """An escrowed key without its value: which volume and protector, since when."""
    return {"volume": row.volume, "protector_id": row.protector_id, "escrowed_at": row.escrowed_at.isoformat()}


def who(request: web.Request) -> str:
    """The technician making the request, as recorded."""
    return actor_of(request) or "technician"


@technician
async def get_escrow(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{name}/escrow`: whether the client's recovery keys are escrowed, who changed it, when."""
    return web.json_response(policy_view(await wiring.escrow(request).policy(request.match_info["name"])))


@technician
async def set_escrow(request: web.Request) -> web.Response:
    """`PUT /api/v1/clients/{name}/escrow` with `{"enabled": true}`: the client's devices send their BitLocker
    recovery passwords sealed to the collector's escrow key (off: they stop; the kept keys stay until purged)."""
    wanted = await parse(request, EscrowInput)
    policy = await wiring.escrow(request).turn(request.match_info["name"], wanted.enabled, who(request))
    return web.json_response(policy_view(policy))


@technician
async def purge_escrow(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{name}/escrow/purge`: delete every recovery key the client's devices escrowed."""
    deleted = await wiring.escrow(request).purge(request.match_info["name"], who(request))
    return web.json_response({"deleted": deleted})


@technician
async def device_keys(request: web.Request) -> web.Response:
    """`GET /api/v1/devices/{agent_id}/escrow`: the device's escrowed keys (volume, protector, when; no values)."""
    rows = await wiring.escrow(request).keys(request.match_info["agent_id"])
    return web.json_response({"keys": [key_view(row) for row in rows]})


@technician
async def reveal(request: web.Request) -> web.Response:
    """`POST /api/v1/devices/{agent_id}/escrow/reveal` with `{"volume": "C:"}`: the volume's recovery
    passwords, opened with the collector's escrow key; recorded (who, when, which) in the device's history."""
    wanted = await parse(request, RevealInput)
    revealed = await wiring.escrow(request).reveal(request.match_info["agent_id"], wanted.volume, who(request))
    return web.json_response(
        {"keys": [{"volume": r.volume, "protector_id": r.protector_id, "escrowed_at": r.escrowed_at.isoformat(),
                   "recovery_password": r.password} for r in revealed]},
        headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    """Add the escrow routes."""
    app.router.add_get(CLIENT_PATH, get_escrow)
    app.router.add_put(CLIENT_PATH, set_escrow)
    app.router.add_post(CLIENT_PATH + "/purge", purge_escrow)
    app.router.add_get(DEVICE_PATH, device_keys)
    app.router.add_post(DEVICE_PATH + "/reveal", reveal)
