"""The collector's HTTP API: agents' endpoints (enrol, reports) and the technician's (alerts, devices, feed)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


def error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    """A JSON error response: `{"error": message, ...}`."""
    return web.json_response({"error": message, **extra}, status=status, headers=headers)
