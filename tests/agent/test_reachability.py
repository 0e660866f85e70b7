"""The reachability check probes the site document's devices for real on loopback (TCP, HTTP, TLS expiry,
the unprivileged ICMP socket or its TCP stand-in), and parses Windows' echo tools from recorded outputs."""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.checks import CheckContext
from agent.checks.reachability import ReachabilityCheck
from agent.checks.reachability.windows import PingExe, parse_ping, parse_test_connection
from agent.commands import CommandNotFound, CommandResult
from agent.identity import enrol
from agent.site_config import DOCUMENT_FILE, accept, fetch, keep_fresh, pin_key, pinned_key, stored_document
from collector import keys
from collector.app import create_app
from collector.auth import token_hash
from collector.settings import Settings
from shared.reachability import (
    DocumentRefused,
    Reachability,
    SiteConfig,
    Target,
    public_key_text,
    sign_document,
)
from shared.wire import Unknown
from tests.support.clock import Clock
from tests.support.collector import TECH
from tests.support.tls import CertificateAuthority

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "windows"
# Thirty days before the test CA's certificates expire (2100-01-01): the check reads days from its clock.
NOW = datetime(2099, 12, 2, tzinfo=UTC)


def recorded(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_test_connection_replies_give_latency_and_loss() -> None:
    three = parse_test_connection(recorded("reachability-test-connection-three.json"))
    assert (three.state, three.sent, three.received, three.latency_ms) == ("up", 3, 3, 1.0)
    one = parse_test_connection(recorded("reachability-test-connection-one.json"))
    assert (one.state, one.received, one.latency_ms) == ("up", 1, 4.0)
    none = parse_test_connection(recorded("reachability-test-connection-none.json"))
    assert (none.state, none.received, none.latency_ms) == ("down", 0, None)


def test_ping_exe_counts_only_the_devices_own_replies() -> None:
    up = parse_ping(recorded("reachability-ping-up.txt"))
    assert (up.state, up.received, up.latency_ms) == ("up", 3, 1.5)
    # "Destination host unreachable" comes from this PC: ping.exe counts it received, the device did not answer.
    unreachable = parse_ping(recorded("reachability-ping-unreachable.txt"))
    assert (unreachable.state, unreachable.received) == ("down", 0)


async def test_windows_falls_back_to_ping_exe_where_powershell_is_missing() -> None:
    def run(argv: list[str], timeout: float = 60.0) -> CommandResult:
        if argv[0] == "powershell.exe":
            raise CommandNotFound("powershell.exe")
        return CommandResult(tuple(argv), 0, recorded("reachability-ping-up.txt"), "")

    outcome = await PingExe(CheckContext(run=run)).echo("192.168.1.20", 3, 1.0)
    assert (outcome.state, outcome.how) == ("up", "icmp (ping.exe)")


def keep_document(state_dir: Path, *targets: Target, version: int = 4) -> None:
    """A site document as the agent keeps it after fetching it: signed, its key pinned."""
    key = Ed25519PrivateKey.generate()
    config = SiteConfig(version=version, client="Acme Tooling", site="Main office", issued_at=NOW,
                        targets=list(targets))
    pin_key(state_dir, public_key_text(key))
    (state_dir / DOCUMENT_FILE).write_bytes(sign_document(key, config))


@pytest.fixture
async def https_device(tmp_path: Path) -> AsyncIterator[int]:
    """A device's web page on loopback https with a certificate expiring 2100-01-01."""
    files = CertificateAuthority(tmp_path / "ca", "device").server("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(files.cert, files.key)
    app = web.Application()

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="login") if request.path == "/" else web.Response(status=404)

    app.router.add_get("/{path:.*}", page)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=context)
    yield server.port  # type: ignore[misc]
    await server.close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_real_probes_on_loopback_report_up_down_and_could_not_look(tmp_path: Path, https_device: int) -> None:
    url = f"https://127.0.0.1:{https_device}/"
    keep_document(
        tmp_path,
        Target(name="NAS", address="127.0.0.1", kind="nas", probe="http", url=url, tls_days=60),
        Target(name="NAS page gone", address="127.0.0.1", kind="nas", probe="http", url=url + "gone"),
        Target(name="Recorder RTSP", address="127.0.0.1", kind="camera_recorder", probe="tcp", port=https_device),
        Target(name="Switch", address="127.0.0.1", kind="switch", probe="tcp", port=closed_port()),
        Target(name="Printer", address="printer.invalid", kind="printer", probe="icmp"),
        Target(name="Router", address="127.0.0.1", kind="router", probe="icmp"),
    )
    check = ReachabilityCheck(CheckContext(state_dir=tmp_path, clock=lambda: NOW), platform="linux")
    [signal] = await check.run()
    assert isinstance(signal, Reachability) and signal.config_version == 4
    found = {r.target.name: r for r in signal.results}
    nas = found["NAS"]
    assert (nas.state, nas.http_status, nas.received, nas.tls_days_left) == ("up", 200, 3, 30.0), nas.error
    assert nas.latency_ms is not None and nas.loss_percent == 0
    assert (found["NAS page gone"].state, found["NAS page gone"].error) == ("down", "answered HTTP 404, expected 200")
    assert found["Recorder RTSP"].state == "up"
    switch = found["Switch"]
    assert switch.state == "down" and "refused" in (switch.error or "") and switch.loss_percent == 100
    printer = found["Printer"]
    assert printer.state == "could_not_look" and "cannot resolve printer.invalid" in (printer.error or "")
    # Echo on loopback: the unprivileged socket where this PC's group may use it, else the TCP stand-in.
    assert found["Router"].state == "up"


async def test_a_site_document_changed_on_disk_makes_the_check_unknown_not_healthy(tmp_path: Path) -> None:
    keep_document(tmp_path, Target(name="Router", address="127.0.0.1", kind="router", probe="icmp"))
    kept = tmp_path / DOCUMENT_FILE
    kept.write_bytes(kept.read_bytes().replace(b"127.0.0.1", b"127.0.0.9"))
    [signal] = await ReachabilityCheck(CheckContext(state_dir=tmp_path, clock=lambda: NOW), platform="linux").run()
    assert isinstance(signal, Unknown) and "not signed by the collector" in signal.error


async def test_before_the_first_site_document_there_is_nothing_to_probe(tmp_path: Path) -> None:
    [signal] = await ReachabilityCheck(CheckContext(state_dir=tmp_path, clock=lambda: NOW), platform="linux").run()
    assert isinstance(signal, Reachability) and (signal.config_version, signal.results) == (0, [])


async def test_an_enrolled_agent_pins_the_key_fetches_its_site_document_and_probes_it(
    tmp_path: Path, clock: Clock
) -> None:
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret", clock_skew_seconds=10**9)
    app = create_app(settings, clock=clock)
    async with TestServer(app, host="127.0.0.1") as server:
        url = str(server.make_url("")).rstrip("/")
        async with app[keys.STORE].transaction() as tx:
            site = await tx.site("Acme Tooling", "Main office")
            await tx.add_enrolment_token(token_hash("tok"), site, clock.now, None, None)
        state_dir = tmp_path / "agent"
        identity = await enrol(state_dir, url, "tok", hostname="RECEPTION-PC", clock=clock)
        assert pinned_key(state_dir) is not None  # pinned at enrolment, before any document
        router = Target(name="Router", address="127.0.0.1", kind="router", probe="tcp", port=server.port)
        added = await await_post(url, "/api/v1/sites/Acme%20Tooling/Main%20office/network-devices",
                                 router.model_dump(exclude_none=True))
        assert added == 201
        # As the service keeps it fresh: fetched at once (then every `every` seconds until stopped, here at once).
        stop = asyncio.Event()
        stop.set()
        async with aiohttp.ClientSession() as session:
            await keep_fresh(session, identity, url, state_dir, stop, clock)
        config = stored_document(state_dir)
        assert config is not None and (config.version, [t.name for t in config.targets]) == (1, ["Router"])
        async with aiohttp.ClientSession() as session:
            assert await fetch(session, identity, url, state_dir, clock) == config.model_copy(
                update={"issued_at": clock.now})
        check = ReachabilityCheck(CheckContext(state_dir=state_dir, clock=clock), platform="linux")
        [signal] = await check.run()
        assert isinstance(signal, Reachability) and signal.results[0].state == "up"

        # Another collector (another key) serving this agent's site: its document is refused, the kept one stays.
        impostor = Ed25519PrivateKey.generate()
        forged = sign_document(impostor, config.model_copy(update={"version": 9}))
        with pytest.raises(DocumentRefused, match="not signed"):
            accept(state_dir, forged, identity)
        assert stored_document(state_dir) == config


async def await_post(url: str, path: str, body: dict[str, object]) -> int:
    async with aiohttp.ClientSession() as session, session.post(url + path, json=body, headers=TECH) as response:
        return response.status
