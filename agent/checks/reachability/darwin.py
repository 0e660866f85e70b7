"""Echo on macOS: the same unprivileged ICMP datagram socket as on Linux (macOS allows it to every user)."""

from __future__ import annotations

from agent.checks.reachability.linux import DatagramEcho

__all__ = ["DatagramEcho"]
