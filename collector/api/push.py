"""The push URL backup scripts call: `/api/v1/push/<job token>[/start|/success|/warning|/fail]`.

POST, or GET for tools that can only GET. The body, if any, is the end of the run's log; `?bytes=N` is
the size of the backup. The token is the credential, so calls are rate-limited per token.
"""

from __future__ import annotations

import math
import re
import time
from typing import cast

from aiohttp import web

from collector import keys, push
from collector.access import Access, declare
from collector.api import error
from collector.auth import token_hash
from collector.ratelimit import RateLimiter
from collector.store import PingKind

PATH = "/api/v1/push/{token}"
MAX_BODY = 100 * 1024
PINGS_PER_MINUTE = 6


LIMITER = web.AppKey("push_limiter", RateLimiter)


async def read_log(request: web.Request) -> bytes | None:
    """The request body, or None when it is larger than MAX_BODY."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in request.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


@declare(Access.PUSH)
async def ping(request: web.Request) -> web.Response:
    """Record a run's start or end for the job whose token is in the path, and judge the job."""
    token = request.match_info["token"]
    # The route admits only the ping kinds; no kind in the path means success, as in Healthchecks.
    kind = cast(PingKind, request.match_info.get("kind", "success"))
    wait = request.app[LIMITER].take(token_hash(token), time.monotonic())
    if wait:
        return error(429, f"too many pings for this job: at most {PINGS_PER_MINUTE} a minute",
                     headers={"Retry-After": str(math.ceil(wait))})
    size = request.query.get("bytes")
    if size is not None and not re.fullmatch(r"[0-9]{1,18}", size):
        return error(400, f"bytes must be a whole number of bytes, got {size!r}")
    body = await read_log(request)
    if body is None:
        return error(413, f"the log excerpt is over {MAX_BODY // 1024} KB: send its end (tail -c 10000)")
    app = request.app
    try:
        outcome = await push.record_ping(app[keys.STORE], app[keys.SETTINGS], token, kind,
                                         app[keys.CLOCK](), int(size) if size is not None else None, body,
                                         app[keys.ON_CHANGE])
    except push.DeviceRevoked as exc:
        return error(403, str(exc))
    if outcome is None:
        return error(404, "unknown backup job token")
    return web.json_response({"job": outcome.job, "device": outcome.hostname, "ping": kind,
                              "status": outcome.status, "summary": outcome.summary})


def setup(app: web.Application) -> None:
    """Add the push routes (POST and GET; no HEAD, which link checkers send) and the rate limiter."""
    app[LIMITER] = RateLimiter(PINGS_PER_MINUTE, PINGS_PER_MINUTE)
    kinds = "|".join(push.PING_KINDS)
    for path in (PATH, PATH + "/{kind:" + kinds + "}"):
        app.router.add_post(path, ping)
        app.router.add_get(path, ping, allow_head=False)
