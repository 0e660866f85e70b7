"""The collector's HTTP API: agents' endpoints (enrol, reports) and the technician's (alerts, devices, feed)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

# How soon a client should try again after a 503: a busy or locked database is usually free within seconds.
RETRY_AFTER_SECONDS = 10


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    """A JSON error response: `{"error": message, ...}`."""
    return web.json_response({"error": message, **extra}, status=status, headers=headers)


def unavailable(message: str) -> web.Response:
    """503 + Retry-After: a transient condition of the collector, the request is worth sending again."""
    return error(503, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
