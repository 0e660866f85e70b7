"""The reachability check: probes the site's devices without an agent, as the verified site document lists
them, without root where the OS allows; a probe that cannot run here is reported as such, never as up or down."""

from __future__ import annotations

import asyncio
import socket
import sys
from typing import ClassVar, Protocol, cast

from agent.checks import Check, CheckContext, platform_provider
from agent.checks.reachability.probes import COUNT, TIMEOUT, Outcome, http_probe, resolve, tcp_probe
from agent.site_config import stored_document
from shared.base import Signal
from shared.reachability import ProbeResult, Reachability, Target

# Devices probed at once: a site's 64 devices in a few rounds, without flooding its network.
PARALLEL = 16


class Echo(Protocol):
    """One platform's ICMP echo (with its fallback where echo is not allowed)."""

    async def echo(self, address: str, count: int, wait: float) -> Outcome: ...


def echo_for(platform: str, context: CheckContext) -> Echo:
    """The echo of `platform` (a sys.platform value): ping.exe on Windows, an unprivileged socket elsewhere."""
    names = {"windows": "PingExe", "darwin": "DatagramEcho", "linux": "DatagramEcho"}
    return cast(Echo, platform_provider(__name__, names, platform, context))


async def probe(target: Target, echo: Echo, context: CheckContext) -> ProbeResult:
    """One target probed as declared (settings `count` and `wait_seconds` per answer); an error that says
    nothing of the device is `could_not_look`."""
    count, wait = int(context.settings.get("count", COUNT)), float(context.settings.get("wait_seconds", TIMEOUT))
    try:
        if target.probe == "http":
            assert target.url is not None  # a declared http probe has its URL
            outcome = await http_probe(target.url, target.expect_status or 200, target.tls_days, context.clock(),
                                       count, wait)
        elif target.probe == "tcp":
            assert target.port is not None
            outcome = await tcp_probe(await resolve(target.address), target.port, count, wait)
        else:
            outcome = await echo.echo(target.address, count, wait)
    except socket.gaierror as exc:
        outcome = Outcome("could_not_look", error=f"cannot resolve {target.address}: {exc.strerror}",
                          how=target.how())
    except OSError as exc:
        outcome = Outcome("could_not_look", error=f"cannot probe from here: {exc.strerror or exc}",
                          how=target.how())
    return ProbeResult(target=target, how=outcome.how or target.how(), state=outcome.state,
                       sent=outcome.sent, received=outcome.received, latency_ms=outcome.latency_ms,
                       http_status=outcome.http_status, tls_days_left=outcome.tls_days_left,
                       error=(outcome.error or "")[:500] or None)


class ReachabilityCheck(Check):
    """Reports each declared device of the site as up, down or could not look, with latency and loss."""

    kind: ClassVar[str] = "reachability"
    timeout: ClassVar[float] = 120.0
    # Every five minutes: a recorder that went dark is known within minutes, not when footage is needed.
    default_interval: ClassVar[float] = 300.0

    def __init__(self, context: CheckContext | None = None, platform: str = sys.platform) -> None:
        super().__init__(context)
        self.echo = echo_for(platform, self.context)

    def collect(self) -> list[Signal]:
        """One reachability signal: every target of the kept site document (none before the first)."""
        now = self.context.clock()
        config = stored_document(self.context.state_dir) if self.context.state_dir else None
        if config is None:
            return [Reachability(collected_at=now, config_version=0)]
        results = asyncio.run(self._probe_all(config.targets))
        return [Reachability(collected_at=now, config_version=config.version, results=results)]

    async def _probe_all(self, targets: list[Target]) -> list[ProbeResult]:
        """Every target, at most PARALLEL at once, in the document's order."""
        gate = asyncio.Semaphore(PARALLEL)

        async def one(target: Target) -> ProbeResult:
            async with gate:
                return await probe(target, self.echo, self.context)

        return list(await asyncio.gather(*(one(t) for t in targets)))
