"""Typed keys of the collector's application state."""

from __future__ import annotations

import asyncio
from datetime import datetime

from aiohttp import web

from collector.alerts.dedupe import OnChange
from collector.auth import AgentAuthenticator
from collector.feed import Feed
from collector.ingest import Ingest
from collector.notify.pipeline import Notifier
from collector.offline import Availability
from collector.settings import Settings
from collector.store import Store
from shared.clock import Clock

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
FEED = web.AppKey("feed", Feed)
AUTH = web.AppKey("auth", AgentAuthenticator)
INGEST = web.AppKey("ingest", Ingest)
UP_SINCE = web.AppKey("up_since", datetime)
AVAILABILITY = web.AppKey("availability", Availability)
# The collector's time: the wall clock, or a clock the tests move.
CLOCK = web.AppKey("clock", Clock)
# The notification step, told of every change of an alert (None: nothing is notified).
ON_CHANGE = web.AppKey("on_change", OnChange | None)
NOTIFIER = web.AppKey("notifier", Notifier)
# Set once the collector is shutting down: /readyz turns load balancers away.
STOPPING = web.AppKey("stopping", asyncio.Event)
