"""The services over the running collector's store, clock and live feed, for the API's and dashboard's handlers."""

from __future__ import annotations

from aiohttp import web

from collector import keys
from collector.services.alerts import Alerts
from collector.services.billing import Billing
from collector.services.channels import Channels
from collector.services.clients import Clients
from collector.services.contracts import Contracts
from collector.services.devices import Devices, offline_after
from collector.services.incidents import Incidents
from collector.services.silences import Silences
from collector.services.technicians import Technicians
from collector.services.tokens import Tokens


def incidents(request: web.Request) -> Incidents:
    """Incidents and the work on them."""
    app = request.app
    return Incidents(app[keys.STORE], app[keys.CLOCK], app[keys.FEED].notify)


def contracts(request: web.Request) -> Contracts:
    """Contracts and break/fix rates."""
    app = request.app
    return Contracts(app[keys.STORE], app[keys.CLOCK], app[keys.FEED].notify)


def billing(request: web.Request) -> Billing:
    """Billing settings, devices' billing, ledgers, invoices and value reports."""
    app = request.app
    return Billing(app[keys.STORE], app[keys.CLOCK], app[keys.FEED].notify)


def silences(request: web.Request) -> Silences:
    """Silences."""
    app = request.app
    return Silences(app[keys.STORE], app[keys.CLOCK], app[keys.FEED].notify)


def channels(request: web.Request) -> Channels:
    """Notification channels (a new one is picked up by the notifier at once)."""
    app = request.app
    return Channels(app[keys.STORE], app[keys.CLOCK], app[keys.FEED].notify,
                    changed=app[keys.NOTIFIER].forget_channels)


def devices(request: web.Request) -> Devices:
    """Devices, online on the collector's clock."""
    app = request.app
    return Devices(app[keys.STORE], app[keys.CLOCK], offline_after(app[keys.SETTINGS]))


def clients(request: web.Request) -> Clients:
    """Clients and their sites."""
    return Clients(request.app[keys.STORE], request.app[keys.CLOCK])


def tokens(request: web.Request) -> Tokens:
    """Enrolment tokens."""
    return Tokens(request.app[keys.STORE], request.app[keys.CLOCK])


def technicians(request: web.Request) -> Technicians:
    """Technician accounts."""
    return Technicians(request.app[keys.STORE], request.app[keys.CLOCK])


def alerts(request: web.Request) -> Alerts:
    """Alerts and the technician's actions on them (notifications follow each change)."""
    app = request.app
    return Alerts(app[keys.STORE], app[keys.CLOCK], app[keys.FEED].notify, app[keys.ON_CHANGE])
