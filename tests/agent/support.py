"""Test parts for the agent: signals, an identity and a scripted collector (see conftest)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
from nacl.signing import SigningKey

from agent.identity import Identity
from collector.auth import verify
from shared.signing import AGENT_HEADER, SIGNATURE_HEADER, TIME_HEADER
from shared.wire import Heartbeat, ReportBatch, Unknown

T0 = datetime(2024, 5, 6, 7, 0, tzinfo=UTC)


@asynccontextmanager
async def loopback_server(
    path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> AsyncIterator[str]:
    """A real HTTP server on 127.0.0.1 answering POST `path`; yields its base URL."""
    app = web.Application()
    app.router.add_post(path, handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def heartbeat(hostname: str = "pc-01", at: datetime = T0) -> Heartbeat:
    """A small valid heartbeat."""
    return Heartbeat(
        collected_at=at,
        hostname=hostname,
        os_name="Linux",
        os_version="Debian 12",
        agent_version="0.1.0",
        boot_time=T0,
        uptime_seconds=(at - T0).total_seconds(),
        cpu_count=4,
        cpu_percent=3.0,
        memory_total_bytes=8 << 30,
        memory_used_percent=40.0,
    )


def unknown(
    check: str = "disk_health", error: str = "smartctl is not installed", at: datetime = T0
) -> Unknown:
    """An `unknown` signal: a non-routine signal whose content is its error."""
    return Unknown(collected_at=at, check=check, error=error)


def make_identity(collector_url: str = "http://127.0.0.1:1", agent_id: str = "ag_test") -> Identity:
    """An identity with a fresh key, as enrolment would leave it."""
    return Identity(
        agent_id=agent_id,
        collector_url=collector_url,
        client="Acme Tooling",
        site="Main office",
        enrolled_at=T0,
        key=SigningKey.generate(),
    )


Reply = tuple[int, Any, dict[str, str]]


@dataclass
class FakeCollector:
    """A loopback HTTP server answering reports from a script; by default it accepts every envelope.

    It checks each request as the real collector would see it: a valid signature and a valid batch.
    """

    identity: Identity
    script: list[Reply | Callable[[ReportBatch], Reply]] = field(default_factory=list)
    batches: list[ReportBatch] = field(default_factory=list)
    received: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def reports(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = request.headers
        assert headers[AGENT_HEADER] == self.identity.agent_id
        assert verify(
            self.identity.key.verify_key,
            headers[AGENT_HEADER],
            "POST",
            "/api/v1/reports",
            body,
            int(headers[TIME_HEADER]),
            headers[SIGNATURE_HEADER],
        )
        batch = ReportBatch.model_validate_json(body)
        self.batches.append(batch)
        self.received.set()
        reply = self.script.pop(0) if self.script else accept_all
        status, payload, extra = reply(batch) if callable(reply) else reply
        return web.Response(
            status=status, text=json.dumps(payload), headers=extra, content_type="application/json"
        )

    @property
    def seqs_received(self) -> list[list[int]]:
        """The sequence numbers of each request, in order."""
        return [[e.seq for e in batch.envelopes] for batch in self.batches]


def accept_all(batch: ReportBatch) -> Reply:
    """The collector's 200: every envelope accepted."""
    return 200, {"accepted": [e.seq for e in batch.envelopes], "duplicates": []}, {}
