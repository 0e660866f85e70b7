"""Settings pages: notification channels (with a test message), silences, and enrolment tokens."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from collector import keys
from collector.alerts.silence import Matchers, Silence
from collector.api.notifications import (
    ChannelRefused,
    ChannelRequest,
    SilenceRequest,
    channel_view,
    silence_view,
    store_channel,
)
from collector.auth import token_hash
from collector.install import install_commands
from collector.notify.deliver import deliver
from collector.notify.render import render_test
from collector.store import Tx
from collector.web.alerts import DURATIONS, RULES, SEVERITIES, save_silence
from collector.web.render import render, see_other
from collector.web.sessions import SESSION, form, page, served_over_https

# Lifetimes offered for a new enrolment token (None: never expires).
EXPIRIES = {"": "never", "1": "1 day", "7": "7 days", "30": "30 days"}
LISTS = ("clients", "kinds")

M = TypeVar("M", bound=BaseModel)


def problems(exc: ValidationError) -> list[str]:
    """Each bad field of a form, in words."""
    return [f"{'.'.join(map(str, e['loc'])) or 'form'}: {e['msg']}" for e in exc.errors()]


async def fields_of(request: web.Request) -> dict[str, Any]:
    """A form's filled-in fields (blank ones left out: the models' defaults apply); lists split at commas."""
    filled: dict[str, Any] = {}
    for name, value in (await request.post()).items():
        if name == "csrf" or not isinstance(value, str) or not value.strip():
            continue
        filled[name] = [v.strip() for v in value.split(",") if v.strip()] if name in LISTS else value.strip()
    return filled


def parse(model: type[M], fields: dict[str, Any]) -> M | list[str]:
    """The form as the API's request model, or what is wrong with it."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        return problems(exc)


Reader = Callable[[web.Request, Tx], Awaitable[dict[str, Any]]]


async def _channels(request: web.Request, tx: Tx) -> dict[str, Any]:
    """What the channels page lists."""
    return {"channels": [channel_view(c) for c in await tx.channels()], "rules": RULES}


async def _silences(request: web.Request, tx: Tx) -> dict[str, Any]:
    """What the silences page lists and offers."""
    return {"silences": [silence_view(s) for s in await tx.silences()],
            "clients": [c.name for c in await tx.clients()], "rules": RULES, "severities": SEVERITIES,
            "durations": DURATIONS}


async def _tokens(request: web.Request, tx: Tx) -> dict[str, Any]:
    """What the enrolment tokens page lists and offers."""
    return {"tokens": await tx.enrolment_tokens(), "clients": await tx.clients(), "expiries": EXPIRIES,
            "collector_url": collector_url(request)}


PAGES: dict[str, Reader] = {"channels": _channels, "silences": _silences, "tokens": _tokens}


async def show(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    """A settings page with what it lists and what the last form left to show (errors, fields, a token)."""
    async with request.app[keys.STORE].transaction() as tx:
        listed = await PAGES[name](request, tx)
    return render(request, f"{name}.html", status=status,
                  **{"errors": [], "filled": {}, "created": None, **listed, **context})


@page
async def settings_page(request: web.Request) -> web.Response:
    """`GET /settings/channels|silences|tokens`: what is set up, and a form for a new one."""
    return await show(request, request.path.removeprefix("/settings/"))


def collector_url(request: web.Request) -> str:
    """The collector's address as this browser reached it: a good guess for where agents reach it."""
    return f"{'https' if served_over_https(request) else 'http'}://{request.host}"


# Channels ------------------------------------------------------------------------------------------------

@form
async def create_channel(request: web.Request) -> web.Response:
    """`POST /settings/channels`: a new channel, checked as the API checks it."""
    filled = await fields_of(request)
    body = parse(ChannelRequest, filled)
    if isinstance(body, list):
        return await show(request, "channels", 422, errors=body, filled=filled)
    try:
        channel = await store_channel(request.app, body)
    except ChannelRefused as exc:
        return await show(request, "channels", exc.status, errors=[str(exc)], filled=filled)
    return see_other("/settings/channels", flash=f"Channel {channel.name!r} created.")


@form
async def test_channel(request: web.Request) -> web.Response:
    """`POST /settings/channels/{name}/test`: send a test message now and say how it went."""
    name = request.match_info["name"]
    async with request.app[keys.STORE].transaction() as tx:
        channel = next((c for c in await tx.channels() if c.name == name), None)
    if channel is None:
        return see_other("/settings/channels", flash=f"There is no channel {name!r}.")
    result = await deliver(channel.url, *render_test(channel.name))
    outcome = "sent" if result.ok else f"failed: {result.error}"
    return see_other("/settings/channels", flash=f"Test message to {name!r} {outcome}")


# Silences ------------------------------------------------------------------------------------------------

@form
async def create_silence(request: web.Request) -> web.Response:
    """`POST /settings/silences`: a one-off silence for some minutes, or a recurring maintenance window."""
    filled = await fields_of(request)
    body = parse(SilenceRequest, filled)
    if isinstance(body, list):
        return await show(request, "silences", 422, errors=body, filled=filled)
    now = request.app[keys.CLOCK]()
    matchers = Matchers(body.client, body.site, body.device, body.kind, body.severity)
    ends_at = now + timedelta(minutes=body.minutes) if body.minutes else body.ends_at
    duration = timedelta(minutes=body.duration_minutes) if body.duration_minutes else None
    try:
        wanted = Silence(0, matchers, body.starts_at or now, ends_at, body.cron, duration, body.timezone,
                         body.comment, request[SESSION].name)
    except ValueError as exc:
        return await show(request, "silences", 422, errors=[str(exc)], filled=filled)
    silence = await save_silence(request, wanted)
    return see_other("/settings/silences", flash=f"Silence {silence.silence_id} created.")


@form
async def expire_silence(request: web.Request) -> web.Response:
    """`POST /settings/silences/{id}/expire`: end a silence now."""
    silence_id = int(request.match_info["silence_id"])
    now = request.app[keys.CLOCK]()
    async with request.app[keys.STORE].transaction() as tx:
        expired = await tx.expire_silence(silence_id, now)
        if expired:
            await tx.append_feed(now, "silence.expired", {"silence_id": silence_id})
    request.app[keys.FEED].notify()
    message = f"Silence {silence_id} expired." if expired else f"There is no active silence {silence_id}."
    return see_other("/settings/silences", flash=message)


# Enrolment tokens ----------------------------------------------------------------------------------------

@form
async def create_token(request: web.Request) -> web.Response:
    """`POST /settings/tokens`: a token for a client's site, shown once with the agent install commands."""
    fields = await fields_of(request)
    client, site = fields.get("client", ""), fields.get("site", "")
    days, uses = fields.get("expires_days", ""), fields.get("uses", "")
    errors = [f"{name}: required" for name, value in (("client", client), ("site", site)) if not value]
    if days not in EXPIRIES:
        errors.append("expires_days: choose one of the offered lifetimes")
    if uses and (not uses.isdigit() or int(uses) < 1):
        errors.append("uses: a whole number of at least 1, or empty for unlimited")
    if errors:
        return await show(request, "tokens", 422, errors=errors)
    token = "fp_enrol_" + secrets.token_urlsafe(24)
    now = request.app[keys.CLOCK]()
    async with request.app[keys.STORE].transaction() as tx:
        where = await tx.site(client, site)
        expires = now + timedelta(days=int(days)) if days else None
        await tx.add_enrolment_token(token_hash(token), where, now, expires, int(uses) if uses else None)
    url = fields.get("collector_url") or collector_url(request)
    created = {"token": token, "client": client, "site": site, "commands": install_commands(url, token)}
    return await show(request, "tokens", 201, created=created)


@form
async def revoke_token(request: web.Request) -> web.Response:
    """`POST /settings/tokens/{hash}/revoke`: stop a token from enrolling more PCs."""
    hashed = request.match_info["token_hash"]
    async with request.app[keys.STORE].transaction() as tx:
        done = await tx.revoke_enrolment_token(hashed, request.app[keys.CLOCK]())
    return see_other("/settings/tokens", flash=(
        "Token revoked." if done else "No such token, or revoked before."))


async def first_settings_page(request: web.Request) -> web.Response:
    """`GET /settings`: the first settings page."""
    return see_other("/settings/channels")


def setup(app: web.Application) -> None:
    """Register the settings pages."""
    app.router.add_get("/settings", page(first_settings_page))
    for name in PAGES:
        app.router.add_get(f"/settings/{name}", settings_page)
    app.router.add_post("/settings/channels", create_channel)
    app.router.add_post("/settings/channels/{name}/test", test_channel)
    app.router.add_post("/settings/silences", create_silence)
    app.router.add_post(r"/settings/silences/{silence_id:\d+}/expire", expire_silence)
    app.router.add_post("/settings/tokens", create_token)
    app.router.add_post(r"/settings/tokens/{token_hash:[0-9a-f]{64}}/revoke", revoke_token)
