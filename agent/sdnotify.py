"""systemd's readiness and watchdog protocol (sd_notify), spoken directly: one datagram per message."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping


def notify(message: str, env: Mapping[str, str] = os.environ) -> bool:
    """Send `message` (e.g. "READY=1") to $NOTIFY_SOCKET; False when not started by systemd with one."""
    address = env.get("NOTIFY_SOCKET", "")
    if not address.startswith(("/", "@")):
        return False
    # A leading "@" names a socket in the abstract namespace, which the kernel spells with a NUL byte.
    target = "\0" + address[1:] if address.startswith("@") else address
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(target)
        sock.sendall(message.encode())
    return True


def watchdog_interval(env: Mapping[str, str] = os.environ) -> float | None:
    """Seconds between watchdog pings (half of WatchdogSec=), or None when systemd expects none from us."""
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    # WATCHDOG_PID is set when the variables were meant for one process; a child must not answer for it.
    if not usec.isdigit() or int(usec) == 0 or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000


async def supervise(stop: asyncio.Event, env: Mapping[str, str] = os.environ) -> None:
    """Tell systemd the agent is ready, ping its watchdog until `stop` is set, then say it is stopping.

    The pings come from the event loop itself, so a loop blocked by a stuck call stops them and systemd
    restarts the service (WatchdogSec= in the unit); without systemd this only waits for `stop`.
    """
    interval = watchdog_interval(env)
    notify("READY=1", env)
    try:
        while not stop.is_set():
            if interval is not None:
                notify("WATCHDOG=1", env)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        notify("STOPPING=1", env)
