"""Probes that need no root: TCP connect, HTTP(S) status via aiohttp, TLS certificate expiry, and the
Linux/macOS unprivileged ICMP echo (a datagram ICMP socket) with its TCP fallback."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass, replace
from datetime import datetime

import aiohttp
from yarl import URL

from shared.reachability import ProbeState

# Answers awaited per probe, and how long each may take.
COUNT = 3
TIMEOUT = 2.0
# Where the ICMP fallback knocks: a refused connection is an answer too (the host is there).
FALLBACK_PORTS = (80, 443)
# Errors that say the device did not answer (as opposed to: this PC cannot look).
DOWN_ERRNOS = {errno.EHOSTUNREACH, errno.ETIMEDOUT, errno.EHOSTDOWN}


@dataclass(frozen=True)
class Outcome:
    """What one probe found: up/down/could_not_look, answers out of tries, mean latency and what went wrong."""

    state: ProbeState
    sent: int = 0
    received: int = 0
    latency_ms: float | None = None
    http_status: int | None = None
    tls_days_left: float | None = None
    error: str | None = None
    how: str = ""


class NotAllowed(Exception):
    """This PC may not open an unprivileged ICMP socket (net.ipv4.ping_group_range excludes it)."""


def mean(values: list[float]) -> float | None:
    """The mean, rounded to a hundredth, or None of nothing."""
    return round(sum(values) / len(values), 2) if values else None


def tally(how: str, latencies: list[float], sent: int, error: str | None) -> Outcome:
    """Answers counted into an outcome: any answer is up."""
    return Outcome("up" if latencies else "down", sent, len(latencies), mean(latencies),
                   error=None if latencies else error, how=how)


async def resolve(address: str, ipv4: bool = False) -> str:
    """The IP address of a host name (an address is returned as it is); only IPv4 when `ipv4` (ICMP echo)."""
    family = socket.AF_INET if ipv4 else socket.AF_UNSPEC
    infos = await asyncio.get_running_loop().getaddrinfo(address, None, family=family, type=socket.SOCK_STREAM)
    return str(infos[0][4][0])


async def tcp_probe(address: str, port: int, count: int = COUNT, wait: float = TIMEOUT,
                    refused_is_up: bool = False) -> Outcome:
    """Connects to a port; for a declared port a refusal is down (the service is not there)."""
    latencies = []
    error = f"no answer on tcp port {port} within {wait:g} s"
    for _ in range(count):
        started = time.monotonic()
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), wait)
            writer.close()
            latencies.append((time.monotonic() - started) * 1000)
        except ConnectionRefusedError:
            if refused_is_up:
                latencies.append((time.monotonic() - started) * 1000)
            else:
                error = f"tcp port {port} refused the connection (the device is there, the service is not)"
        except TimeoutError:
            pass
        except OSError as exc:
            if exc.errno not in DOWN_ERRNOS:
                raise
            error = f"tcp port {port}: {exc.strerror}"
    return tally(f"tcp:{port}", latencies, count, error)


def _checksum(data: bytes) -> int:
    """The Internet checksum (the kernel fills it in for datagram ICMP sockets on Linux; macOS needs it)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def icmp_socket() -> socket.socket:
    """An unprivileged ICMP echo socket; NotAllowed where the OS keeps this PC out."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
    except (PermissionError, OSError) as exc:
        if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EPROTONOSUPPORT):
            raise NotAllowed(f"unprivileged ICMP echo not allowed here ({exc.strerror}; see "
                             "net.ipv4.ping_group_range)") from exc
        raise
    sock.setblocking(False)
    return sock


async def icmp_probe(address: str, count: int = COUNT, wait: float = TIMEOUT) -> Outcome:
    """Echo requests over an unprivileged ICMP socket; NotAllowed where it cannot be opened."""
    loop = asyncio.get_running_loop()
    latencies = []
    error = f"no echo reply within {wait:g} s"
    with icmp_socket() as sock:
        ident = os.getpid() & 0xFFFF
        for seq in range(1, count + 1):
            header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
            payload = b"fieldpost"
            packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload
            started = time.monotonic()
            try:
                await loop.sock_sendto(sock, packet, (address, 0))
                deadline = started + wait
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    reply, _ = await asyncio.wait_for(loop.sock_recvfrom(sock, 2048), left)
                    # The kernel rewrites the id of a datagram echo; the sequence number tells replies apart.
                    offset = 20 if reply and reply[0] >> 4 == 4 else 0  # macOS hands the IP header too
                    kind, _, _, _, got = struct.unpack("!BBHHH", reply[offset:offset + 8])
                    if kind == 0 and got == seq:
                        latencies.append((time.monotonic() - started) * 1000)
                        break
            except TimeoutError:
                pass
            except OSError as exc:
                if exc.errno == errno.ENETUNREACH:
                    raise  # no route from here: this PC cannot look
                error = f"echo failed: {exc.strerror}"
    return tally("icmp", latencies, count, error)


async def knock_probe(address: str, count: int = COUNT, wait: float = TIMEOUT) -> Outcome:
    """Instead of an echo: a TCP connect to common ports, where a refusal counts as an answer."""
    outcomes = [await tcp_probe(address, port, count, wait, refused_is_up=True) for port in FALLBACK_PORTS]
    best = max(outcomes, key=lambda o: o.received)
    how = "icmp not allowed here; tcp connect to " + ",".join(map(str, FALLBACK_PORTS))
    return replace(best, how=how, error=None if best.received else f"no answer on tcp {FALLBACK_PORTS}")


async def certificate_days(host: str, port: int, now: datetime, wait: float = TIMEOUT) -> float:
    """Days until the server's TLS certificate expires (self-signed ones too: devices use them)."""
    # Here, not at the top: only a target with tls_days needs it, and it costs the agent about 2 MiB.
    from cryptography import x509

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context, server_hostname=host),
                                       wait)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    finally:
        writer.close()
    expires = x509.load_der_x509_certificate(der).not_valid_after_utc
    return round((expires - now).total_seconds() / 86400, 2)


async def http_probe(url: str, expect: int, tls_days: int | None, now: datetime, count: int = COUNT,
                     wait: float = TIMEOUT) -> Outcome:
    """GET the URL (certificates not verified: devices answer with self-signed ones); up when the status is
    the expected one; with `tls_days`, the certificate's remaining days too."""
    latencies, status, error = [], None, f"no answer within {wait:g} s"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=wait)) as session:
        for _ in range(count):
            started = time.monotonic()
            try:
                async with session.get(url, ssl=False, allow_redirects=False) as response:
                    status = response.status
                    if status == expect:
                        latencies.append((time.monotonic() - started) * 1000)
                    else:
                        error = f"answered HTTP {status}, expected {expect}"
            except (aiohttp.ClientConnectionError, TimeoutError) as exc:
                error = f"no answer: {exc or type(exc).__name__}"
    outcome = replace(tally(f"{url} ({expect})", latencies, count, error), http_status=status)
    if tls_days is not None and url.startswith("https://"):
        parts = URL(url)
        # The status already says whether it answers; a certificate that cannot be read is no expiry known.
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError, ValueError):
            outcome = replace(outcome, tls_days_left=await certificate_days(parts.host or "", parts.port or 443, now))
    return outcome
