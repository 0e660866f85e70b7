"""The services over the running collector's store and clock, for the API's and dashboard's handlers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from aiohttp import web

from collector import keys
from collector.services.alerts import Alerts
from collector.services.base import Service
from collector.services.billing import Billing
from collector.services.channels import Channels
from collector.services.clients import Clients
from collector.services.contracts import Contracts
from collector.services.devices import Devices, offline_after
from collector.services.escrow import Escrow, EscrowKey
from collector.services.incidents import Incidents
from collector.services.network_devices import NetworkDevices
from collector.services.push_jobs import PushJobs
from collector.services.report_mail import ReportMail
from collector.services.silences import Silences
from collector.services.technicians import Technicians
from collector.services.tokens import Tokens
from collector.settings import Settings

S = TypeVar("S", bound=Service)


def _plain(cls: type[S]) -> Callable[[web.Request], S]:
    """A factory of a service that needs only the running collector's store and clock."""

    def make(request: web.Request) -> S:
        return cls(request.app[keys.STORE], request.app[keys.CLOCK])

    make.__doc__ = cls.__doc__
    return make


incidents = _plain(Incidents)
contracts = _plain(Contracts)
billing = _plain(Billing)
silences = _plain(Silences)
tokens = _plain(Tokens)
technicians = _plain(Technicians)
push_jobs = _plain(PushJobs)
report_mail = _plain(ReportMail)


def escrow_key_path(settings: Settings) -> Path | None:
    """Where the escrow key is kept: as set, else next to a SQLite database file; None for a PostgreSQL URL."""
    if settings.escrow_key_file is not None:
        return settings.escrow_key_file
    if settings.db == ":memory:" or "://" in settings.db:
        return None
    return Path(settings.db).resolve().with_name("escrow-key")


def escrow_key(request: web.Request) -> EscrowKey:
    """The collector's escrow key file."""
    return EscrowKey(escrow_key_path(request.app[keys.SETTINGS]))


def escrow(request: web.Request) -> Escrow:
    """Recovery-key escrow (the key kept in its file)."""
    return Escrow(request.app[keys.STORE], request.app[keys.CLOCK], escrow_key(request))


def network_devices(request: web.Request) -> NetworkDevices:
    """Devices without an agent, and the site document (with the escrow key where escrow is on)."""
    return NetworkDevices(request.app[keys.STORE], request.app[keys.CLOCK], escrow_key(request))


def channels(request: web.Request) -> Channels:
    """Notification channels (a new one is picked up by the notifier at once)."""
    app = request.app
    return Channels(app[keys.STORE], app[keys.CLOCK], changed=app[keys.NOTIFIER].forget_channels)


def clients(request: web.Request) -> Clients:
    """Clients (the notifier reads the channels again after a rename: channels name clients)."""
    app = request.app
    return Clients(app[keys.STORE], app[keys.CLOCK], renamed=app[keys.NOTIFIER].forget_channels)


def devices(request: web.Request) -> Devices:
    """Devices, online on the collector's clock."""
    app = request.app
    return Devices(app[keys.STORE], app[keys.CLOCK], offline_after(app[keys.SETTINGS]))


def alerts(request: web.Request) -> Alerts:
    """Alerts and the technician's actions on them (notifications follow each change)."""
    app = request.app
    return Alerts(app[keys.STORE], app[keys.CLOCK], app[keys.ON_CHANGE])
