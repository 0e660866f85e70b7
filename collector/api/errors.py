"""Domain errors as HTTP, in one place: the status each maps to, and the API's middleware answering in JSON."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web

from collector.api import error
from collector.services.errors import Conflict, DomainError, Invalid, NotFound
from collector.services.inputs import M, validated

API_PREFIX = "/api/"


class BadQuery(Invalid):
    """A value in the URL's query is malformed: the request itself is wrong (400), not what it asks for."""


# In order: the first kind an error is an instance of decides (a BadQuery is also Invalid).
STATUS: dict[type[DomainError], int] = {BadQuery: 400, NotFound: 404, Invalid: 422, Conflict: 409}


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


@contextmanager
def query_values() -> Iterator[None]:
    """Read the URL's query inside this: a value refused as Invalid is answered 400 (BadQuery), never 500."""
    try:
        yield
    except BadQuery:
        raise
    except Invalid as exc:
        raise BadQuery(exc.field, exc.reason, exc.problems) from None


def whole_number(field: str, text: str | None, default: int, low: int, high: int) -> int:
    """A whole number from low to high as a query gives it (absent: `default`), or BadQuery naming the field."""
    if text is None:
        return default
    if not re.fullmatch(r"-?[0-9]{1,19}", text) or not low <= int(text) <= high:
        raise BadQuery(field, f"must be a whole number from {low} to {high}, got {text[:40]!r}")
    return int(text)


async def parse(request: web.Request, model: type[M]) -> M:
    """The request's JSON body as `model` (an empty body: `{}`), or Invalid naming each bad field."""
    return validated(model, await request.read())
