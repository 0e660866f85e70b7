"""The technician's dashboard: server-rendered pages over the collector's store, live through the SSE feed.

`setup(app)` registers everything. A later section (incidents, billing) adds its pages with
`app.router.add_get(path, page(handler))` / `add_post(path, form(handler))` from `collector.web.sessions`,
renders with `collector.web.render.render`, and puts itself in the navigation with `add_nav`.
"""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from collector.web import account, admin, alerts, backups, billing, clients, devices, incidents, login, network_devices
from collector.web.render import NAV, TEMPLATES, NavItem, environment
from collector.web.sessions import STATIC_PREFIX, session_middleware


def add_nav(app: web.Application, label: str, path: str, below: tuple[str, ...] = (),
            before: str | None = None) -> None:
    """Add an entry to the navigation bar (before the one labelled `before`, else at the end)."""
    items = app[NAV]
    at = next((i for i, item in enumerate(items) if item.label == before), len(items))
    items.insert(at, NavItem(label, path, below))


def setup(app: web.Application) -> None:
    """Serve the dashboard from the collector: pages, static files, sessions."""
    app[TEMPLATES] = environment()
    app[NAV] = [
        NavItem("Feed", "/", ("/alerts/",)),
        NavItem("Clients", "/clients", ("/clients", "/devices/", "/backups")),
        NavItem("Settings", "/settings", ("/settings",)),
    ]
    app.middlewares.append(session_middleware)
    static = resources.files("collector.web") / "static"
    app.router.add_static(STATIC_PREFIX.rstrip("/"), str(static), append_version=True, name="static")
    login.setup(app)
    alerts.setup(app)
    devices.setup(app)
    clients.setup(app)
    backups.setup(app)
    network_devices.setup(app)
    admin.setup(app)
    account.setup(app)
    incidents.setup(app)
    billing.setup(app)
    add_nav(app, "Incidents", "/incidents", ("/incidents",), before="Clients")
    add_nav(app, "Billing", "/billing", ("/billing",), before="Settings")
