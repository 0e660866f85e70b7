"""Settings pages: notification channels (with a test message), silences, and enrolment tokens."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web

from collector import keys
from collector.api.audit import entries as audit_entries
from collector.api.errors import status_of
from collector.api.wiring import channels, clients, silences, tokens
from collector.headers import served_over_https
from collector.install import install_commands
from collector.services.channels import ChannelInput
from collector.services.errors import DomainError
from collector.services.inputs import validated
from collector.services.silences import SilenceInput
from collector.services.tokens import DEFAULT_LIFETIME, DEFAULT_USES
from collector.services.views import channel_view, silence_view
from collector.web.alerts import DURATIONS, RULES, SEVERITIES
from collector.web.render import reasons, render, see_other
from collector.web.sessions import SESSION, form, owner_form, owner_page, page
from shared.loopback import is_loopback

# Lifetimes offered for a new enrolment token (None: never expires).
EXPIRIES = {"": "never", "1": "1 day", "7": "7 days", "30": "30 days"}
LISTS = ("clients", "kinds")

async def fields_of(request: web.Request) -> dict[str, Any]:
    """A form's filled-in fields (blank ones left out: the models' defaults apply); lists split at commas."""
    filled: dict[str, Any] = {}
    for name, value in (await request.post()).items():
        if name == "csrf" or not isinstance(value, str) or not value.strip():
            continue
        filled[name] = [v.strip() for v in value.split(",") if v.strip()] if name in LISTS else value.strip()
    return filled


Reader = Callable[[web.Request], Awaitable[dict[str, Any]]]


async def _channels(request: web.Request) -> dict[str, Any]:
    """What the channels page lists."""
    return {"channels": [channel_view(c) for c in await channels(request).list()], "rules": RULES}


async def _silences(request: web.Request) -> dict[str, Any]:
    """What the silences page lists and offers."""
    return {"silences": [silence_view(s) for s in await silences(request).list()],
            "clients": [c.name for c in await clients(request).list()], "rules": RULES,
            "severities": SEVERITIES, "durations": DURATIONS}


async def _tokens(request: web.Request) -> dict[str, Any]:
    """What the enrolment tokens page lists and offers."""
    return {"tokens": await tokens(request).list(), "clients": await clients(request).list(),
            "expiries": EXPIRIES, "collector_url": collector_url(request),
            "default_days": str(DEFAULT_LIFETIME.days), "default_uses": DEFAULT_USES}


async def _audit(request: web.Request) -> dict[str, Any]:
    """The newest entries of the audit log (`?before=ID` pages back)."""
    return {"entries": await audit_entries(request)}


PAGES: dict[str, Reader] = {"channels": _channels, "silences": _silences, "tokens": _tokens, "audit": _audit}
# The settings pages a technician sees; the others (channels, enrolment tokens) are the owner's.
TECHNICIAN_PAGES = ("silences",)


async def show(request: web.Request, name: str, status: int = 200, **context: Any) -> web.Response:
    """A settings page with what it lists and what the last form left to show (errors, fields, a token)."""
    listed = await PAGES[name](request)
    return render(request, f"{name}.html", status=status,
                  **{"errors": [], "filled": {}, "created": None, **listed, **context})


async def settings_page(request: web.Request) -> web.Response:
    """`GET /settings/channels|silences|tokens|audit`: what is set up, and a form for a new one."""
    return await show(request, request.path.removeprefix("/settings/"))


def collector_url(request: web.Request) -> str:
    """Where agents reach the collector: `public_url` when set, else the host this browser reached, over https
    (agents refuse plain http to another machine) unless it is this machine reached over http."""
    public = request.app[keys.SETTINGS].public_url
    if public:
        return public.rstrip("/")
    plain = not served_over_https(request) and is_loopback(request.url.host or "")
    return f"{'http' if plain else 'https'}://{request.host}"


# Channels ------------------------------------------------------------------------------------------------

@owner_form
async def create_channel(request: web.Request) -> web.Response:
    """`POST /settings/channels`: a new channel, checked as the API checks it."""
    filled = await fields_of(request)
    try:
        channel = await channels(request).create(validated(ChannelInput, filled))
    except DomainError as exc:
        return await show(request, "channels", status_of(exc), errors=reasons(exc), filled=filled)
    return see_other("/settings/channels", flash=f"Channel {channel.name!r} created.")


@owner_form
async def test_channel(request: web.Request) -> web.Response:
    """`POST /settings/channels/{name}/test`: send a test message now and say how it went."""
    name = request.match_info["name"]
    try:
        result = await channels(request).test(name)
    except DomainError:
        return see_other("/settings/channels", flash=f"There is no channel {name!r}.")
    outcome = "sent" if result.ok else f"failed: {result.error}"
    return see_other("/settings/channels", flash=f"Test message to {name!r} {outcome}")


@owner_form
async def change_channel(request: web.Request) -> web.Response:
    """`POST /settings/channels/{name}/edit|disable|enable|delete`: change, switch off or on, or remove it."""
    name, verb = request.match_info["name"], request.match_info["verb"]
    service = channels(request)
    try:
        if verb == "edit":
            filled = await fields_of(request)
            await service.edit(name, {key: value for key, value in filled.items()
                                      if key in ("url", "min_severity") and value})
        elif verb == "delete":
            await service.delete(name)
        else:
            await service.switch(name, verb == "enable")
    except DomainError as exc:
        return see_other("/settings/channels", flash=f"Channel {name!r} not changed: {'; '.join(reasons(exc))}")
    done = {"edit": "changed", "delete": "deleted", "enable": "switched on", "disable": "switched off"}[verb]
    return see_other("/settings/channels", flash=f"Channel {name!r} {done}.")


# Silences ------------------------------------------------------------------------------------------------

@form
async def create_silence(request: web.Request) -> web.Response:
    """`POST /settings/silences`: a one-off silence for some minutes, or a recurring maintenance window."""
    filled = await fields_of(request)
    try:
        silence = await silences(request).create(validated(SilenceInput, filled), request[SESSION].name)
    except DomainError as exc:
        return await show(request, "silences", status_of(exc), errors=reasons(exc), filled=filled)
    return see_other("/settings/silences", flash=f"Silence {silence.silence_id} created.")


@form
async def expire_silence(request: web.Request) -> web.Response:
    """`POST /settings/silences/{id}/expire`: end a silence now."""
    silence_id = int(request.match_info["silence_id"])
    try:
        await silences(request).expire(silence_id)
    except DomainError:
        return see_other("/settings/silences", flash=f"There is no active silence {silence_id}.")
    return see_other("/settings/silences", flash=f"Silence {silence_id} expired.")


# Enrolment tokens ----------------------------------------------------------------------------------------

@owner_form
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
    try:
        token = await tokens(request).create(client, site, timedelta(days=int(days)) if days else None,
                                             int(uses) if uses else None)
    except DomainError as exc:
        return await show(request, "tokens", status_of(exc), errors=reasons(exc))
    url = fields.get("collector_url") or collector_url(request)
    created = {"token": token, "client": client, "site": site, "commands": install_commands(url, token)}
    return await show(request, "tokens", 201, created=created)


@owner_form
async def revoke_token(request: web.Request) -> web.Response:
    """`POST /settings/tokens/{hash}/revoke`: stop a token from enrolling more PCs."""
    try:
        await tokens(request).revoke(request.match_info["token_hash"])
    except DomainError:
        return see_other("/settings/tokens", flash="No such token, or revoked before.")
    return see_other("/settings/tokens", flash="Token revoked.")


async def first_settings_page(request: web.Request) -> web.Response:
    """`GET /settings`: the first settings page this account may see."""
    return see_other("/settings/channels" if request[SESSION].role == "owner" else "/settings/silences")


def setup(app: web.Application) -> None:
    """Register the settings pages."""
    app.router.add_get("/settings", page(first_settings_page))
    for name in PAGES:
        guard = page if name in TECHNICIAN_PAGES else owner_page
        app.router.add_get(f"/settings/{name}", guard(settings_page))
    app.router.add_post("/settings/channels", create_channel)
    app.router.add_post("/settings/channels/{name}/test", test_channel)
    app.router.add_post("/settings/channels/{name}/{verb:edit|disable|enable|delete}", change_channel)
    app.router.add_post("/settings/silences", create_silence)
    app.router.add_post(r"/settings/silences/{silence_id:\d{1,18}}/expire", expire_silence)
    app.router.add_post("/settings/tokens", create_token)
    app.router.add_post(r"/settings/tokens/{token_hash:[0-9a-f]{64}}/revoke", revoke_token)
