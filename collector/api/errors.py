"""Domain errors as HTTP, in one place: the status each maps to, and the API's middleware answering in JSON."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from collector.api import error
from collector.services.errors import Conflict, DomainError, Invalid, NotFound
from collector.services.inputs import M, validated

STATUS: dict[type[DomainError], int] = {NotFound: 404, Invalid: 422, Conflict: 409}
API_PREFIX = "/api/"


def status_of(exc: DomainError) -> int:
    """The HTTP status that says why an operation was refused."""
    return next(status for kind, status in STATUS.items() if isinstance(exc, kind))


def as_json(exc: DomainError) -> web.Response:
    """A refusal as the API answers it: `{"error": ...}`, with each bad field under `problems`."""
    extra: dict[str, Any] = {}
    if isinstance(exc, Invalid) and exc.problems:
        extra["problems"] = [{"field": p.field, "message": p.message} for p in exc.problems]
    return error(status_of(exc), exc.message, **extra)


@web.middleware
async def domain_errors(request: web.Request,
                        handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
    """A domain error raised by an API handler becomes its JSON refusal (the dashboard maps its own)."""
    try:
        return await handler(request)
    except DomainError as exc:
        if not request.path.startswith(API_PREFIX):
            raise
        return as_json(exc)


async def parse(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as `model` (an empty body: `{}`), or Invalid naming each bad field."""
    return validated(model, await request.read())
