"""Endpoints agents call: enrolment with a token, and signed report uploads."""

from __future__ import annotations

import base64
import binascii
import logging
import math
import secrets
import time

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from collector import keys
from collector.access import Access, declare
from collector.api import error, unavailable
from collector.auth import AuthError, ClockSkew, token_hash
from collector.ratelimit import RateLimiter
from collector.services import network_devices
from collector.services.tokens import REFUSED_HINT
from collector.store import AgentRow, EnrolmentRefused
from shared.base import PRINTABLE
from shared.http import RECONNECT_HEADER
from shared.reachability import public_key_text
from shared.wire import SCHEMA_VERSION, ReportBatch

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
UPLOAD_LIMITER = web.AppKey("upload_limiter", RateLimiter)


class EnrolRequest(BaseModel):
    """The body of `POST /api/v1/enrol`."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200)
    public_key: str = Field(description="Base64 of the raw 32-byte Ed25519 public key", max_length=64,
                            pattern=r"^[A-Za-z0-9+/]*={0,2}$")
    hostname: str = Field(min_length=1, max_length=255, pattern=PRINTABLE)


def problems(exc: ValidationError) -> list[dict[str, str]]:
    """Each bad field of a validation error, named by its dotted path."""
    found = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(body)"
        message = err["msg"]
        if err["loc"] and err["loc"][-1] == "schema_version" and err["type"] == "literal_error":
            message = f"unsupported schema version {err['input']!r}: this collector accepts {SCHEMA_VERSION}"
        found.append({"field": field, "message": message})
    return found


def invalid(exc: ValidationError, what: str) -> web.Response:
    """422 naming each bad field; malformed JSON is said to be so."""
    errors = exc.errors()
    if errors and errors[0]["type"] == "json_invalid":
        return error(422, f"malformed JSON: {errors[0]['ctx'].get('error', errors[0]['msg'])}")
    return error(422, f"{what} does not match the schema", problems=problems(exc))


async def read_body(request: web.Request) -> bytes:
    """The request body, or 413 when it is larger than the collector accepts."""
    limit = request.app[keys.SETTINGS].max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    return await request.read()


@declare(Access.AGENT)
async def enrol(request: web.Request) -> web.Response:
    """Exchange an enrolment token and a public key for an agent id, in the token's client and site."""
    try:
        body = EnrolRequest.model_validate_json(await read_body(request))
        public_key = base64.b64decode(body.public_key, validate=True)
    except ValidationError as exc:
        return invalid(exc, "enrolment request")
    except binascii.Error:
        return error(422, "public_key is not valid base64")
    if len(public_key) != 32:
        return error(422, "public_key must be a raw 32-byte Ed25519 key")
    now = request.app[keys.CLOCK]()
    agent_id = "ag_" + secrets.token_hex(8)
    store = request.app[keys.STORE]
    try:
        async with store.transaction() as tx:
            site = await tx.consume_enrolment_token(token_hash(body.token), now)
            agent = AgentRow(agent_id, public_key, body.hostname, site, now)
            await tx.add_agent(agent)
            config_key = public_key_text(await network_devices.config_key(tx))
            await tx.append_feed(now, "device.enrolled", {
                "agent_id": agent_id, "hostname": body.hostname,
                "client": site.client_name, "site": site.site_name,
            })
    except EnrolmentRefused as exc:
        return error(401, f"{exc}; {REFUSED_HINT}")
    return web.json_response(
        {"agent_id": agent_id, "client": site.client_name, "site": site.site_name, "config_key": config_key},
        status=201,
    )


async def note_skew(request: web.Request, skew: ClockSkew) -> None:
    """Count the refusal on the device, so that a PC whose clock is off shows it, and tell the feed at the
    first since the device was last heard from (even its first report). Best effort: the refusal is
    answered even when the count cannot be written."""
    agent, now = skew.agent, request.app[keys.CLOCK]()
    try:
        async with request.app[keys.STORE].transaction() as tx:
            if await tx.note_skew(agent.agent_id, now, skew.offset_seconds):
                await tx.append_feed(now, "device.clock_skew", {
                    "agent_id": agent.agent_id, "hostname": agent.hostname, "client": agent.site.client_name,
                    "site": agent.site.site_name, "offset_seconds": skew.offset_seconds,
                })
    except Exception:
        log.warning("could not count the clock-skew refusal of agent %s", agent.agent_id, exc_info=True)


@declare(Access.AGENT)
async def reports(request: web.Request) -> web.Response:
    """Accept a signed batch of envelopes: authenticate, validate, then ingest (store, evaluate, publish)."""
    body = await read_body(request)
    try:
        agent_id = await request.app[keys.AUTH].authenticate(
            request.headers, request.method, REPORTS_PATH, body, request.app[keys.CLOCK]().timestamp()
        )
    except ClockSkew as exc:
        await note_skew(request, exc)
        return error(401, str(exc))
    except AuthError as exc:
        return error(401, str(exc))
    limiter = request.app.get(UPLOAD_LIMITER)
    wait = limiter.take(agent_id, time.monotonic()) if limiter else 0.0
    if wait:
        per_minute = request.app[keys.SETTINGS].agent_uploads_per_minute
        return error(429, f"too many uploads from this device (at most {per_minute:g} a minute after a burst); "
                     "send again later", headers={"Retry-After": str(math.ceil(wait))})
    try:
        # Timestamps are bounded by the collector's clock: `now` is the validation context.
        batch = ReportBatch.model_validate_json(body, context={"now": request.app[keys.CLOCK]()})
    except ValidationError as exc:
        return invalid(exc, "report")
    strangers = sorted({e.agent_id for e in batch.envelopes} - {agent_id})
    if strangers:
        return error(422, f"envelopes name agent {strangers[0]!r} but were signed by {agent_id!r}")
    try:
        result = await request.app[keys.INGEST].ingest(agent_id, batch, request.app[keys.CLOCK]())
    except AuthError as exc:
        # Revoked or deleted since its key was kept: checked in the transaction that would have stored it.
        return error(401, str(exc))
    except Exception as exc:
        # Nothing of the batch was committed; the agent keeps it and sends it again.
        if request.app[keys.STORE].is_transient(exc):
            request.app[keys.AVAILABILITY].failed(request.app[keys.CLOCK]())
        return unavailable(f"could not store the report ({type(exc).__name__}); send it again later")
    return web.json_response({"accepted": result.accepted, "duplicates": result.duplicates})



async def reconnect_hint(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer to a report, whatever its status, tells the agent how long it may wait between tries
    while the collector is unreachable: catch-up after an outage is bounded by this, not by its backoff."""
    if request.path == REPORTS_PATH:
        response.headers[RECONNECT_HEADER] = str(request.app[keys.SETTINGS].agent_reconnect_seconds)


def setup(app: web.Application) -> None:
    """Add the agents' routes (enrolment, reports), the per-device upload limit and the reconnection hint."""
    settings = app[keys.SETTINGS]
    app.on_response_prepare.append(reconnect_hint)
    if settings.agent_uploads_per_minute:
        app[UPLOAD_LIMITER] = RateLimiter(settings.agent_uploads_per_minute, settings.agent_upload_burst)
    app.router.add_post("/api/v1/enrol", enrol)
    app.router.add_post(REPORTS_PATH, reports)
