"""How the agent reaches its collector: HTTPS (optionally pinned to one CA), plain HTTP only to this machine
unless the configuration or `--insecure-http` allows it."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from shared.loopback import is_loopback

# An idle connection to the collector is kept this long, so that heartbeats a minute apart reuse it (no TCP
# and TLS set-up per report); under the 75 s after which aiohttp's server and nginx close an idle one, so the
# agent lets go first and rarely sends on a connection the other side is closing.
KEEP_ALIVE_SECONDS = 65.0


class InsecureTransport(ValueError):
    """The collector URL would send the agent's secrets unprotected; the message says why and what to do."""


def check_collector_url(url: str, insecure_http: bool = False) -> None:
    """Refuse plain `http://` to another machine unless `insecure_http`; `InsecureTransport` says why."""
    parts = urlsplit(url)
    if parts.scheme != "http" or insecure_http or is_loopback(parts.hostname or ""):
        return
    https = parts._replace(scheme="https", netloc=parts.hostname or "").geturl()
    raise InsecureTransport(
        f"refusing {url}: plain http:// to another machine would let anyone on the network path read the "
        "enrolment token and the reports, and change what the collector is told. Use the collector's "
        f"https:// address (e.g. {https}; pin a private CA with agent.ca_file), or, only on a network you "
        "trust, allow it with --insecure-http (configuration: agent.insecure_http = true)"
    )


def ssl_context(ca_file: Path | None) -> ssl.SSLContext | bool:
    """TLS settings for the collector: trust only `ca_file` when given (pinning), else the system's CAs."""
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise InsecureTransport(f"agent.ca_file {ca_file}: cannot load a CA certificate from it ({exc})") from exc


def collector_session(tls: ssl.SSLContext | bool, timeout: float) -> aiohttp.ClientSession:
    """An HTTP session to the collector that verifies its certificate with `tls` (from `ssl_context`) and
    keeps its connection between requests."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout),
                                 connector=aiohttp.TCPConnector(ssl=tls, keepalive_timeout=KEEP_ALIVE_SECONDS))
