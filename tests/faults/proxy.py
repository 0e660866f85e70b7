"""A proxy between agents and the collector(s) that answers errors on demand (500, 408, ...) or passes requests on.

With several collectors it takes turns between them, as a load balancer does, and passes a request to the next
when one does not answer. It runs its own event loop on a thread, so a test can sleep or poll other processes
while it serves.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from itertools import count

import aiohttp
from aiohttp import web

from tests.e2e.harness import free_port

# Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1), plus the ones aiohttp sets.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "content-length", "content-encoding", "host", "date", "server"})


class FaultProxy:
    """Forwards every request to one of `upstreams` in turn, unless `fault` names a status to answer instead."""

    def __init__(self, *upstreams: str) -> None:
        self.upstreams = [upstream.rstrip("/") for upstream in upstreams]
        self._turn = count()
        self.port = free_port()
        # The status every request gets while set; None: pass requests on.
        self.fault: int | None = None
        self.answers: Counter[int] = Counter()
        # Answers of 503 without the Retry-After header that tells an agent when to send again.
        self.unhinted = 0
        # Requests per second of the monotonic clock: the peak request rate.
        self.per_second: Counter[int] = Counter()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        """Base URL agents are given."""
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def _stop(self) -> None:
        assert self._runner is not None and self._session is not None
        await self._session.close()
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.per_second[int(time.monotonic())] += 1
        fault = self.fault
        if fault is not None:
            self.answers[fault] += 1
            return web.json_response({"error": f"fault injected by the test proxy ({fault})"}, status=fault)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        first = next(self._turn)
        for attempt in range(len(self.upstreams)):
            upstream_url = self.upstreams[(first + attempt) % len(self.upstreams)]
            try:
                async with self._session.request(request.method, upstream_url + request.path_qs, data=body,
                                                 headers=headers, allow_redirects=False) as upstream:
                    payload = await upstream.read()
                    self.answers[upstream.status] += 1
                    if upstream.status == 503 and "Retry-After" not in upstream.headers:
                        self.unhinted += 1
                    kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                    return web.Response(status=upstream.status, body=payload, headers=kept)
            except aiohttp.ClientConnectorError:
                continue  # that collector is down: the next one takes the request
            except (aiohttp.ClientError, TimeoutError) as exc:
                self.answers[502] += 1
                return web.json_response({"error": f"upstream failed: {exc}"}, status=502)
        self.answers[502] += 1
        return web.json_response({"error": "no collector reachable"}, status=502)

    def peak_rate(self) -> int:
        """The most requests the proxy took within one second."""
        return max(self.per_second.values(), default=0)
