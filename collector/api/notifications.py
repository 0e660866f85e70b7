"""Endpoints for notification channels and silences: create, list, test, expire."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from collector import keys
from collector.alerts.silence import Matchers, Silence
from collector.api import error
from collector.api.technician import technician
from collector.notify.deliver import deliver, redact, validate_url
from collector.notify.render import render_test
from collector.store import ChannelRow


class StrictBody(BaseModel):
    """A request body: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


def zone(value: str) -> str:
    """An IANA time zone name."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (e.g. Europe/Berlin)") from None
    return value


class ChannelRequest(StrictBody):
    """The body of `POST /api/v1/channels`."""

    name: str = Field(min_length=1, max_length=80)
    url: str = Field(description="apprise URL: mailto://, ntfy://, pover://, tgram://, json://, ...")
    min_severity: Literal["warning", "critical"] = "warning"
    clients: list[str] = Field(default_factory=list, description="only these clients (empty: all)")
    kinds: list[str] = Field(default_factory=list, description="only these rules (empty: all)")
    quiet_start: time | None = Field(None, description="quiet hours start (local): warnings wait for the digest")
    quiet_end: time | None = None
    timezone: str = "UTC"
    digest_at: time | None = Field(None, description="local time of the daily digest")
    group_wait_seconds: float = Field(30, ge=0)
    group_interval_seconds: float = Field(300, ge=0)
    repeat_interval_seconds: float = Field(4 * 3600, gt=0)

    _zone = field_validator("timezone")(zone)


class SilenceRequest(StrictBody):
    """The body of `POST /api/v1/silences`: `minutes` from now, or a window, or a recurring cron window."""

    client: str | None = None
    site: str | None = None
    device: str | None = None
    kind: str | None = None
    severity: Literal["warning", "critical", "unknown"] | None = None
    minutes: float | None = Field(None, gt=0, description="one-off: from now, for this long")
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    cron: str | None = Field(None, description="recurring: crontab, e.g. '0 22 * * 6' (Saturdays 22:00)")
    duration_minutes: float | None = Field(None, gt=0, description="recurring: length of each window")
    timezone: str = "UTC"
    comment: str = Field(min_length=1, max_length=500, description="why, for whoever wonders later")

    _zone = field_validator("timezone")(zone)


def channel_view(channel: ChannelRow) -> dict[str, Any]:
    """A channel as the API shows it (secrets in its URL hidden)."""
    return {
        "name": channel.name, "url": redact(channel.url), "min_severity": channel.min_severity,
        "clients": list(channel.clients), "kinds": list(channel.kinds),
        "quiet_hours": (f"{channel.quiet_start:%H:%M}-{channel.quiet_end:%H:%M}"
                        if channel.quiet_start and channel.quiet_end else None),
        "timezone": channel.timezone, "digest_at": channel.digest_at.strftime("%H:%M") if channel.digest_at else None,
        "last_sent_at": channel.last_sent_at.isoformat() if channel.last_sent_at else None,
        "broken": channel.broken_reason,
    }


def silence_view(silence: Silence) -> dict[str, Any]:
    """A silence as the API shows it."""
    matchers = {k: v for k, v in vars(silence.matchers).items() if v is not None}
    return {
        "silence_id": silence.silence_id, "matchers": matchers, "starts_at": silence.starts_at.isoformat(),
        "ends_at": silence.ends_at.isoformat() if silence.ends_at else None, "cron": silence.cron,
        "duration_minutes": silence.duration.total_seconds() / 60 if silence.duration else None,
        "timezone": silence.timezone, "comment": silence.comment, "created_by": silence.created_by,
    }


def invalid(exc: ValidationError) -> web.Response:
    """422 naming each bad field."""
    return error(422, "bad request", problems=[
        {"field": ".".join(map(str, e["loc"])) or "(body)", "message": e["msg"]} for e in exc.errors()
    ])


@technician
async def list_channels(request: web.Request) -> web.Response:
    """`GET /api/v1/channels`."""
    async with request.app[keys.STORE].transaction() as tx:
        channels = await tx.channels()
    return web.json_response({"channels": [channel_view(c) for c in channels]})


class ChannelRefused(Exception):
    """A channel cannot be created as asked; `status` is the HTTP status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def store_channel(app: web.Application, body: ChannelRequest) -> ChannelRow:
    """Check the URL (does apprise understand it?) and quiet hours, create the channel, tell the feed."""
    problem = await asyncio.to_thread(validate_url, body.url)
    if problem:
        raise ChannelRefused(422, f"url: {problem}")
    if (body.quiet_start is None) != (body.quiet_end is None):
        raise ChannelRefused(422, "quiet hours need both a start and an end")
    now = app[keys.CLOCK]()
    wanted = ChannelRow(
        0, body.name, body.url, body.min_severity, tuple(body.clients), tuple(body.kinds), body.quiet_start,
        body.quiet_end, body.timezone, body.digest_at, timedelta(seconds=body.group_wait_seconds),
        timedelta(seconds=body.group_interval_seconds), timedelta(seconds=body.repeat_interval_seconds),
    )
    try:
        async with app[keys.STORE].transaction() as tx:
            channel = await tx.add_channel(wanted, now)
            await tx.append_feed(now, "channel.created", channel_view(channel))
    except ValueError as exc:
        raise ChannelRefused(409, str(exc)) from exc
    app[keys.NOTIFIER].forget_channels()
    app[keys.FEED].notify()
    return channel


@technician
async def create_channel(request: web.Request) -> web.Response:
    """`POST /api/v1/channels`: a new channel, after checking that apprise understands its URL."""
    try:
        body = ChannelRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        return invalid(exc)
    try:
        channel = await store_channel(request.app, body)
    except ChannelRefused as exc:
        return error(exc.status, str(exc))
    return web.json_response(channel_view(channel), status=201)


@technician
async def test_channel(request: web.Request) -> web.Response:
    """`POST /api/v1/channels/{name}/test`: send a test message now and say how it went."""
    async with request.app[keys.STORE].transaction() as tx:
        channel = next((c for c in await tx.channels() if c.name == request.match_info["name"]), None)
    if channel is None:
        return error(404, f"there is no channel {request.match_info['name']!r}")
    result = await deliver(channel.url, *render_test(channel.name))
    return web.json_response({"ok": result.ok, "error": result.error}, status=200 if result.ok else 502)


@technician
async def list_silences(request: web.Request) -> web.Response:
    """`GET /api/v1/silences`: silences not expired by hand, newest first."""
    async with request.app[keys.STORE].transaction() as tx:
        silences = await tx.silences()
    return web.json_response({"silences": [silence_view(s) for s in silences]})


@technician
async def create_silence(request: web.Request) -> web.Response:
    """`POST /api/v1/silences`: hold notifications of matching alerts (they are still recorded)."""
    try:
        body = SilenceRequest.model_validate_json(await request.read())
    except ValidationError as exc:
        return invalid(exc)
    now = request.app[keys.CLOCK]()
    matchers = Matchers(body.client, body.site, body.device, body.kind, body.severity)
    duration = timedelta(minutes=body.duration_minutes) if body.duration_minutes else None
    ends_at = now + timedelta(minutes=body.minutes) if body.minutes else body.ends_at
    try:
        wanted = Silence(0, matchers, body.starts_at or now, ends_at, body.cron, duration, body.timezone,
                         body.comment, "technician")
    except ValueError as exc:
        return error(422, str(exc))
    async with request.app[keys.STORE].transaction() as tx:
        silence = await tx.add_silence(wanted, now)
        await tx.append_feed(now, "silence.created", silence_view(silence))
    request.app[keys.FEED].notify()
    return web.json_response(silence_view(silence), status=201)


@technician
async def expire_silence(request: web.Request) -> web.Response:
    """`POST /api/v1/silences/{id}/expire`: end a silence now; held notifications go out at the next round."""
    silence_id = int(request.match_info["silence_id"])
    now = request.app[keys.CLOCK]()
    async with request.app[keys.STORE].transaction() as tx:
        if not await tx.expire_silence(silence_id, now):
            return error(404, f"there is no active silence {silence_id}")
        await tx.append_feed(now, "silence.expired", {"silence_id": silence_id})
    request.app[keys.FEED].notify()
    return web.json_response({"silence_id": silence_id, "expired_at": now.isoformat()})


def setup(app: web.Application) -> None:
    """Register the routes."""
    app.router.add_get("/api/v1/channels", list_channels)
    app.router.add_post("/api/v1/channels", create_channel)
    app.router.add_post("/api/v1/channels/{name}/test", test_channel)
    app.router.add_get("/api/v1/silences", list_silences)
    app.router.add_post("/api/v1/silences", create_silence)
    app.router.add_post(r"/api/v1/silences/{silence_id:\d+}/expire", expire_silence)
