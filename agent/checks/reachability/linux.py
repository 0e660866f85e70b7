"""Echo on Linux (and macOS, which shares it): an unprivileged ICMP datagram socket, else TCP connects."""

from __future__ import annotations

from agent.checks import CheckContext
from agent.checks.reachability.probes import NotAllowed, Outcome, icmp_probe, knock_probe, resolve


class DatagramEcho:
    """ICMP echo without root (net.ipv4.ping_group_range must include the agent's group); where it does not,
    TCP connects to common ports stand in, a refusal counting as an answer."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    async def echo(self, address: str, count: int, wait: float) -> Outcome:
        """`count` echo requests, or the TCP stand-in."""
        ip = await resolve(address, ipv4=True)
        try:
            return await icmp_probe(ip, count, wait)
        except NotAllowed as exc:
            outcome = await knock_probe(ip, count, wait)
            return outcome if outcome.received else Outcome("could_not_look", outcome.sent, 0,
                                                            error=f"{exc}; no answer to tcp connects either",
                                                            how=outcome.how)
