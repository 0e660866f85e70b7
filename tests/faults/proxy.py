"""A proxy between agents and the collector that answers errors on demand (500, 408, ...) or passes requests on.

It runs its own event loop on a thread, so a test can sleep or poll other processes while it serves.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

import aiohttp
from aiohttp import web

from tests.e2e.harness import free_port

# Headers that belong to one connection, not to the message (RFC 9110 section 7.6.1), plus the ones aiohttp sets.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade",
                        "content-length", "content-encoding", "host", "date", "server"})


class FaultProxy:
    """Forwards every request to `upstream`, unless `fault` names a status to answer instead."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.port = free_port()
        # The status every request gets while set; None: pass requests on.
        self.fault: int | None = None
        self.answers: Counter[int] = Counter()
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
        fault = self.fault
        if fault is not None:
            self.answers[fault] += 1
            return web.json_response({"error": f"fault injected by the test proxy ({fault})"}, status=fault)
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            async with self._session.request(request.method, self.upstream + request.path_qs, data=body,
                                             headers=headers, allow_redirects=False) as upstream:
                payload = await upstream.read()
                self.answers[upstream.status] += 1
                kept = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
                return web.Response(status=upstream.status, body=payload, headers=kept)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.answers[502] += 1
            return web.json_response({"error": f"upstream unreachable: {exc}"}, status=502)
