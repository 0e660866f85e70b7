"""Endpoints for notification channels and silences: create, list, edit, switch off, delete, test, expire."""

from __future__ import annotations

import json

from aiohttp import web

from collector.api.errors import parse
from collector.api.technician import owner, technician
from collector.api.wiring import channels, silences
from collector.services.channels import ChannelInput
from collector.services.errors import Invalid
from collector.services.silences import SilenceInput
from collector.services.views import channel_view, silence_view


@owner
async def list_channels(request: web.Request) -> web.Response:
    """`GET /api/v1/channels`."""
    return web.json_response({"channels": [channel_view(c) for c in await channels(request).list()]})


@owner
async def create_channel(request: web.Request) -> web.Response:
    """`POST /api/v1/channels`: a new channel, after checking that apprise understands its URL."""
    channel = await channels(request).create(await parse(request, ChannelInput))
    return web.json_response(channel_view(channel), status=201)


@owner
async def test_channel(request: web.Request) -> web.Response:
    """`POST /api/v1/channels/{name}/test`: send a test message now and say how it went."""
    result = await channels(request).test(request.match_info["name"])
    return web.json_response({"ok": result.ok, "error": result.error}, status=200 if result.ok else 502)


@owner
async def edit_channel(request: web.Request) -> web.Response:
    """`PATCH /api/v1/channels/{name}` with the settings to change (as `POST /api/v1/channels` takes them)."""
    try:
        changes = json.loads(await request.read() or b"{}")
    except ValueError:
        changes = None
    if not isinstance(changes, dict):
        raise Invalid(None, "send a JSON object of the settings to change")
    channel = await channels(request).edit(request.match_info["name"], changes)
    return web.json_response(channel_view(channel))


@owner
async def switch_channel(request: web.Request) -> web.Response:
    """`POST /api/v1/channels/{name}/disable|enable`: switch the channel off (nothing is queued) or on."""
    channel = await channels(request).switch(request.match_info["name"], request.match_info["switch"] == "enable")
    return web.json_response(channel_view(channel))


@owner
async def delete_channel(request: web.Request) -> web.Response:
    """`DELETE /api/v1/channels/{name}`: remove it with its queue and delivery log."""
    await channels(request).delete(request.match_info["name"])
    return web.json_response({"deleted": request.match_info["name"]})


@technician
async def list_silences(request: web.Request) -> web.Response:
    """`GET /api/v1/silences`: silences not expired by hand, newest first."""
    return web.json_response({"silences": [silence_view(s) for s in await silences(request).list()]})


@technician
async def create_silence(request: web.Request) -> web.Response:
    """`POST /api/v1/silences`: hold notifications of matching alerts (they are still recorded)."""
    silence = await silences(request).create(await parse(request, SilenceInput))
    return web.json_response(silence_view(silence), status=201)


@technician
async def expire_silence(request: web.Request) -> web.Response:
    """`POST /api/v1/silences/{id}/expire`: end a silence now; held notifications go out at the next round."""
    silence_id = int(request.match_info["silence_id"])
    expired_at = await silences(request).expire(silence_id)
    return web.json_response({"silence_id": silence_id, "expired_at": expired_at.isoformat()})


def setup(app: web.Application) -> None:
    """Register the routes."""
    app.router.add_get("/api/v1/channels", list_channels)
    app.router.add_post("/api/v1/channels", create_channel)
    app.router.add_post("/api/v1/channels/{name}/test", test_channel)
    app.router.add_patch("/api/v1/channels/{name}", edit_channel)
    app.router.add_delete("/api/v1/channels/{name}", delete_channel)
    app.router.add_post("/api/v1/channels/{name}/{switch:disable|enable}", switch_channel)
    app.router.add_get("/api/v1/silences", list_silences)
    app.router.add_post("/api/v1/silences", create_silence)
    app.router.add_post(r"/api/v1/silences/{silence_id:\d{1,18}}/expire", expire_silence)
