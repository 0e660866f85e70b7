"""The collector's aiohttp application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from collector import audit, headers, keys, push, stale
from collector import web as dashboard
from collector.access import Access, declare
from collector.api import (
    agents,
    clients,
    contracts,
    error,
    incidents,
    network_devices,
    notifications,
    openapi,
    technician,
    unavailable,
)
from collector.api import audit as audit_api
from collector.api import billing as billing_api
from collector.api import escrow as escrow_api
from collector.api import push as push_api
from collector.api import report_mail as report_mail_api
from collector.api.errors import domain_errors
from collector.auth import ADMIN_TOKEN_META, AgentAuthenticator, token_hash
from collector.feed import Feed
from collector.ingest import Ingest
from collector.notify.pipeline import Notifier
from collector.offline import Availability, announce_downtime, run_sweeper
from collector.services import report_mail
from collector.settings import Settings
from collector.store import Store, open_store
from shared import __version__
from shared.clock import Clock, system_clock

log = logging.getLogger(__name__)

# Written by each health probe: a store that answers reads but refuses writes is not healthy.
HEALTH_PROBE_META = "health_probe_at"


def admin_token_file(settings: Settings) -> Path | None:
    """Where a generated technician token is written: next to the database file."""
    if settings.db == ":memory:" or "://" in settings.db:
        return None  # a database URL (PostgreSQL) has no folder: the token is logged once instead
    return Path(settings.db).resolve().with_name("admin-token")


def write_secret(path: Path, secret: str) -> None:
    """Write a secret readable by its owner only (never world-readable, not even briefly)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    os.chmod(path, 0o600)


async def issue_technician_token(store: Store, settings: Settings) -> str:
    """Create a new technician token, keep its hash and write it next to the database; returns it."""
    token = "fp_tech_" + secrets.token_urlsafe(24)
    async with store.transaction() as tx:
        await tx.set_meta(ADMIN_TOKEN_META, token_hash(token))
    path = admin_token_file(settings)
    if path is not None:
        write_secret(path, token)
    return token


async def ensure_technician_token(store: Store, settings: Settings) -> None:
    """Issue a technician token on first start (none in settings, none stored yet)."""
    if settings.admin_token:
        return
    async with store.transaction() as tx:
        if await tx.get_meta(ADMIN_TOKEN_META):
            return
    token = await issue_technician_token(store, settings)
    where = admin_token_file(settings)
    log.warning("technician token created%s", f" and written to {where}" if where else f": {token}")


async def write_problem(app: web.Application) -> str | None:
    """Why the store does not accept writes now (a real write is tried), or None when it does."""
    try:
        async with app[keys.STORE].transaction() as tx:
            await tx.set_meta(HEALTH_PROBE_META, app[keys.CLOCK]().isoformat())
    except Exception as exc:
        if app[keys.STORE].is_transient(exc):
            app[keys.AVAILABILITY].failed(app[keys.CLOCK]())
        return f"the database does not accept writes ({type(exc).__name__}: {exc})"
    return None


@declare(Access.PUBLIC)
async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz`: 200 when the database accepts writes, else 503 with the reason."""
    problem = await write_problem(request.app)
    if problem is not None:
        return unavailable(problem)
    return web.json_response({"status": "ok", "version": __version__})


@declare(Access.PUBLIC)
async def readyz(request: web.Request) -> web.Response:
    """`GET /readyz`, for load balancers: 200 while this collector takes reports; 503 once it is stopping
    (so no new request is sent to it) or while its database does not accept writes."""
    if request.app[keys.STOPPING].is_set():
        return unavailable("the collector is stopping")
    problem = await write_problem(request.app)
    if problem is not None:
        return unavailable(problem)
    return web.json_response({"status": "ready", "version": __version__})


async def _stopping(app: web.Application) -> None:
    """At shutdown, before connections are closed: /readyz answers 503 from now on."""
    app[keys.STOPPING].set()


@web.middleware
async def json_errors(request: web.Request, handler: technician.Handler) -> web.StreamResponse:
    """HTTP errors raised anywhere become JSON `{"error": ...}` with the same status."""
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge as exc:
        limit = request.app[keys.SETTINGS].max_body_bytes
        return error(413, f"request body is larger than the collector accepts ({limit} bytes)",
                     status_text=exc.reason)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, exc.reason)


@web.middleware
async def transient_errors(request: web.Request, handler: technician.Handler) -> web.StreamResponse:
    """A database busy, locked, full or unreachable anywhere in a request answers 503 + Retry-After, not 500."""
    try:
        return await handler(request)
    except Exception as exc:
        if not request.app[keys.STORE].is_transient(exc):
            raise
        request.app[keys.AVAILABILITY].failed(request.app[keys.CLOCK]())
        log.warning("%s %s: database unavailable (%s: %s); answered 503", request.method, request.path,
                    type(exc).__name__, exc)
        return unavailable(f"the database is busy or unavailable ({type(exc).__name__}: {exc}); try again later")


async def _services(app: web.Application) -> AsyncIterator[None]:
    """Open the store, prepare the shared objects and run the sweepers; undo it all at shutdown."""
    settings = app[keys.SETTINGS]
    store = app[keys.STORE]
    await store.open()
    feed = Feed(store)
    app[keys.FEED] = feed
    # This process's commits wake the feed directly; other processes' commits arrive by watch_feed.
    store.on_feed_events(feed.notify)
    await store.watch_feed(feed.notify)
    app[keys.AUTH] = AgentAuthenticator(store, settings.clock_skew_seconds)
    notifier = Notifier(store, public_url=settings.public_url or "")
    app[keys.NOTIFIER] = notifier
    app[keys.ON_CHANGE] = notifier.on_change
    app[keys.INGEST] = Ingest(store, settings.rule_settings, lifecycle=settings.alerts.lifecycle(),
                              on_change=notifier.on_change, gather_seconds=settings.ingest_gather_ms / 1000)
    await ensure_technician_token(store, settings)
    app[keys.UP_SINCE] = app[keys.CLOCK]()
    app[keys.AVAILABILITY] = Availability(app[keys.UP_SINCE])
    await announce_downtime(store, settings, app[keys.UP_SINCE])
    sweepers = [
        asyncio.create_task(run_sweeper(store, settings, app[keys.AVAILABILITY], app[keys.CLOCK],
                                        notifier.on_change)),
        # A stuck check sends nothing either: its silence is judged against the clock too.
        asyncio.create_task(stale.run_sweeper(store, settings, app[keys.CLOCK], notifier.on_change)),
        # Late backups send nothing: push jobs are judged against the clock.
        asyncio.create_task(push.run_sweeper(store, settings, clock=app[keys.CLOCK],
                                             on_change=notifier.on_change)),
    ]
    if settings.notify_interval_seconds:
        sweepers.append(asyncio.create_task(run_dispatcher(notifier, settings, app[keys.CLOCK])))
    if settings.report_mail_check_seconds:
        sweepers.append(asyncio.create_task(report_mail.run_sweeper(store, app[keys.CLOCK],
                                                                    settings.report_mail_check_seconds)))
    yield
    for sweeper in sweepers:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
    await store.close()


async def run_dispatcher(notifier: Notifier, settings: Settings, clock: Clock) -> None:
    """Deliver queued notifications every `notify_interval_seconds` until cancelled."""
    while True:
        await asyncio.sleep(settings.notify_interval_seconds)
        try:
            await notifier.dispatch(clock())
        except Exception:
            log.exception("notification round failed; retrying in %s s", settings.notify_interval_seconds)


def create_app(
    settings: Settings, store: Store | None = None, clock: Clock = system_clock
) -> web.Application:
    """The collector as an aiohttp application (the store is opened when the app starts)."""
    app = web.Application(client_max_size=settings.max_body_bytes,
                          middlewares=[transient_errors, json_errors, domain_errors])
    app[keys.SETTINGS] = settings
    app[keys.CLOCK] = clock
    app[keys.ON_CHANGE] = None
    app[keys.STOPPING] = asyncio.Event()
    app[keys.STORE] = store or open_store(settings.db)
    app.on_shutdown.append(_stopping)
    app.cleanup_ctx.append(_services)
    headers.setup(app)
    agents.setup(app)
    openapi.setup(app)
    app.router.add_get("/api/v1/alerts", technician.list_alerts)
    # Ids in paths have at most 18 digits, everywhere: a longer number names no row (ids are 64-bit integers)
    # and would overflow the database's integer type, so it is not found rather than a server error.
    app.router.add_get(r"/api/v1/alerts/{alert_id:\d{1,18}}", technician.alert_detail)
    app.router.add_post(r"/api/v1/alerts/{alert_id:\d{1,18}}/{action:acknowledge|snooze|resolve}",
                        technician.alert_action)
    app.router.add_get("/api/v1/devices", technician.list_devices)
    app.router.add_get("/api/v1/clients", technician.list_clients)
    app.router.add_put("/api/v1/clients/{name}/hours", technician.set_client_hours)
    app.router.add_put("/api/v1/devices/{agent_id}/class", technician.set_device_class)
    app.router.add_get("/api/v1/feed", technician.feed)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    notifications.setup(app)
    push_api.setup(app)
    dashboard.setup(app)
    # Inside the session middleware, so it knows who is logged in.
    app.middlewares.append(audit.audit_changes)
    app.router.add_get("/api/v1/audit", audit_api.audit_log)
    billing_api.setup(app)
    report_mail_api.setup(app)
    incidents.setup(app)
    contracts.setup(app)
    clients.setup(app)
    network_devices.setup(app)
    escrow_api.setup(app)
    return app
