"""The `fieldpost` command line: its commands and help, and its errors as one line against a real collector."""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import shared
from collector import keys
from collector.api.wiring import escrow_key_path
from collector.app import create_app
from collector.services.escrow import EscrowKey
from collector.settings import Settings
from shared.escrow import public_of, seal
from shared.printer_ip_conflict import NeighbourEntry, PrinterIpConflict
from technician.cli import build_parser
from tests.support.agents import REPORTS
from tests.support.clock import Clock
from tests.support.collector import enrolled

ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(f"technician.{p.stem}" for p in (ROOT / "technician").glob("*.py") if p.stem != "__main__")


def fieldpost(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `fieldpost ARGS` as the technician would, without a config file in the way."""
    return subprocess.run([sys.executable, "-m", "technician", *args], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})


def parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                          argparse.ArgumentParser]]:
    """Every (command path, parser) below `parser`, itself included."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, (*path, name))


def test_every_command_runs_a_handler_and_explains_itself() -> None:
    commands = [(path, p) for path, p in parsers(build_parser()) if path]
    assert {path[0] for path, _ in commands} == {"alerts", "devices", "device", "incident", "time", "contract",
                                              "rates", "billing", "invoice", "report", "report-mail", "silence",
                                              "channel", "diagnose", "device-class", "client-hours", "client", "site",
                                              "network-device", "escrow"}
    assert len(commands) > 30
    for path, parser in commands:
        assert parser.description, f"fieldpost {' '.join(path)} --help says what it does"
        groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not groups or not groups[0].required:
            assert callable(parser.get_default("func")), f"fieldpost {' '.join(path)} has a handler"
    assert "fieldpost alerts snooze 42 --for 2h" in fieldpost("alerts", "snooze", "--help").stdout
    assert "CSV exports are safe to open in a spreadsheet" in fieldpost("invoice", "--help").stdout


def test_version() -> None:
    done = fieldpost("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"fieldpost {shared.__version__}")


def test_the_technician_package_needs_no_collector() -> None:
    # Every module imports, and the parser builds, with the collector package impossible to import.
    probe = f"""
import importlib, sys
class NoCollector:
    def find_spec(self, name, path=None, target=None):
        if name == "collector" or name.startswith("collector."):
            raise ImportError("no collector here")
sys.meta_path.insert(0, NoCollector())
for name in {MODULES!r}:
    importlib.import_module(name)
from technician.cli import main
sys.exit(main(["diagnose", "smartctl", "disk.json"]))
"""
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False, cwd=ROOT)
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [
        "fieldpost: diagnose needs the collector's code (no collector here): pip install 'fieldpost[collector]'"
    ]
    assert len(MODULES) >= 10


def free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_missing_token_or_a_url_that_is_not_http_is_one_line() -> None:
    missing = fieldpost("--url", "http://127.0.0.1:1", "devices")
    assert missing.returncode == 1
    [line] = missing.stderr.splitlines()
    assert line.startswith("fieldpost: no technician token: pass --token, set FIELDPOST_TOKEN")
    wrong = fieldpost("--url", "collector.example:8470", "--token", "tech-secret", "devices")
    assert wrong.returncode == 1
    assert wrong.stderr.splitlines() == [
        "fieldpost: collector URL 'collector.example:8470' must start with http:// or https://"
    ]


def test_an_unreachable_collector_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = fieldpost("--url", url, "--token", "tech-secret", "alerts")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith(f"fieldpost: cannot reach the collector at {url}: ")


@pytest.fixture
async def collector_url(tmp_path: Path, clock: Clock) -> AsyncIterator[str]:
    """The URL of a real collector app with the technician token `tech-secret`."""
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret")
    async with TestServer(create_app(settings, clock=clock)) as server:
        yield str(server.make_url("")).rstrip("/")


async def test_a_wrong_token_is_one_line(collector_url: str) -> None:
    done = await asyncio.to_thread(fieldpost, "--url", collector_url, "--token", "wrong", "devices")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("fieldpost: collector refused the technician token (401): check --token")
    assert done.stdout == ""
    right = await asyncio.to_thread(fieldpost, "--url", collector_url, "--token", "tech-secret", "devices")
    assert (right.returncode, right.stdout) == (0, "no devices enrolled yet\n"), right.stderr



async def test_business_hours_and_device_classes_are_set_from_the_command_line(collector_url: str) -> None:
    tech = ("--url", collector_url, "--token", "tech-secret")
    unknown = await asyncio.to_thread(fieldpost, *tech, "client-hours", "Nobody", "--days", "mon-fri")
    assert unknown.returncode == 1 and "there is no client 'Nobody'" in unknown.stderr
    bad = await asyncio.to_thread(fieldpost, *tech, "client-hours", "Nobody", "--days", "monday")
    assert bad.returncode == 1 and "'monday' is not a day" in bad.stderr, bad.stderr
    device = await asyncio.to_thread(fieldpost, *tech, "device-class", "no-such-agent", "server")
    assert device.returncode == 1 and "there is no device no-such-agent" in device.stderr


async def test_clients_sites_and_contacts_are_managed_from_the_command_line(collector_url: str) -> None:
    tech = ("--url", collector_url, "--token", "tech-secret")

    async def run(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(fieldpost, *tech, *args)

    assert (await run("client", "add", "Acme")).returncode == 0
    taken = await run("client", "add", "Acme")
    assert taken.returncode == 1 and "there is a client named 'Acme' already" in taken.stderr
    done = await run("client", "set", "Acme", "--name", "Acme Tooling", "--billing-email", "accounts@acme.example",
                     "--billing-address", "Hauptstr. 1\\n10115 Berlin")
    assert "billing address: Hauptstr. 1, 10115 Berlin" in done.stdout, done.stderr
    bad = await run("client", "set", "Acme Tooling", "--billing-email", "accounts")
    assert bad.returncode == 1 and "billing_email" in bad.stderr and "not an e-mail address" in bad.stderr
    contact = await run("client", "contact", "Acme Tooling", "Eva Weber", "--email", "eva@acme.example",
                        "--role", "owner", "--billing")
    assert "Eva Weber, owner <eva@acme.example> [billing]" in contact.stdout, contact.stderr
    assert "sites: Main office (0 devices)" in (await run("site", "add", "Acme Tooling", "Main office")).stdout
    renamed = await run("site", "rename", "Acme Tooling", "Main office", "Head office")
    assert "sites: Head office (0 devices)" in renamed.stdout
    assert (await run("client", "demo", "Acme Tooling", "on")).returncode == 0
    assert "demo" in (await run("client", "list")).stdout
    assert (await run("client", "archive", "Acme Tooling")).returncode == 0
    assert (await run("client", "list")).stdout == "no clients\n"
    assert "Acme Tooling (archived, demo, not billed)" in (await run("client", "show", "Acme Tooling")).stdout


async def test_network_devices_are_declared_listed_and_removed_from_the_command_line(
    tmp_path: Path, clock: Clock
) -> None:
    app = create_app(Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret"), clock=clock)
    async with TestServer(app) as server:
        tech = ("--url", str(server.make_url("")).rstrip("/"), "--token", "tech-secret")
        await network_devices_from_the_command_line(app, tech)


async def network_devices_from_the_command_line(app: web.Application, tech: tuple[str, ...]) -> None:
    site = ("Acme Tooling", "Main office")
    none = await asyncio.to_thread(fieldpost, *tech, "network-device", "list", *site)
    assert none.returncode == 1 and "there is no site 'Main office'" in none.stderr
    async with app[keys.STORE].transaction() as tx:
        await tx.site(*site)  # as the first enrolment token for the site makes it
    added = await asyncio.to_thread(fieldpost, *tech, "network-device", "add", *site, "Recorder", "192.168.1.20",
                                    "--kind", "camera_recorder", "--tcp", "554", "--hours", "07:00-19:00")
    assert added.returncode == 0, added.stderr
    assert "Recorder (camera_recorder, 192.168.1.20) is probed by Main office's agents: tcp:554" in added.stdout
    bad = await asyncio.to_thread(fieldpost, *tech, "network-device", "add", *site, "NAS", "nas.local", "--kind",
                                  "nas", "--tls-days", "20")
    assert bad.returncode == 1 and "tls_days needs an https:// url" in bad.stderr
    listed = await asyncio.to_thread(fieldpost, *tech, "network-device", "list", *site)
    assert "Recorder" in listed.stdout and "07:00-19:00" in listed.stdout
    removed = await asyncio.to_thread(fieldpost, *tech, "network-device", "remove", *site, "Recorder")
    assert removed.returncode == 0 and "Recorder is no longer probed" in removed.stdout


async def test_discovered_devices_are_listed_adopted_and_dismissed_from_the_command_line(
    tmp_path: Path, clock: Clock
) -> None:
    app = create_app(Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret"), clock=clock)
    async with TestClient(TestServer(app)) as client:
        tech = ("--url", str(client.make_url("")).rstrip("/"), "--token", "tech-secret")
        site = ("Acme Tooling", "Main office")

        async def run(*args: str) -> subprocess.CompletedProcess[str]:
            return await asyncio.to_thread(fieldpost, *tech, "network-device", *args)

        agent = await enrolled(client, "RECEPTION-PC")
        assert (await run("candidates", *site)).stdout == (
            "no devices of camera, NAS or network makers seen that are not monitored yet\n")
        neighbours = [NeighbourEntry(ip="192.168.1.31", mac="44:19:b6:12:34:56"),  # Hikvision
                      NeighbourEntry(ip="192.168.1.40", mac="00:11:32:aa:bb:cc")]  # Synology
        body = agent.body(agent.envelope([PrinterIpConflict(collected_at=clock.now, neighbours=neighbours)]))
        assert (await client.post(REPORTS, data=body, headers=agent.headers(body))).status == 200

        listed = (await run("candidates", *site)).stdout.splitlines()
        assert listed[0].split() == ["ADDRESS", "HARDWARE", "ADDRESS", "MAKER", "KIND", "SEEN", "BY"]
        assert listed[1].split() == ["192.168.1.31", "44:19:b6:12:34:56", "Hikvision", "camera", "RECEPTION-PC"]
        unknown = await run("adopt", *site, "192.168.1.99")
        assert unknown.returncode == 1
        assert "'192.168.1.99' is not among the devices of Main office not monitored yet" in unknown.stderr
        assert "192.168.1.31 (44:19:b6:12:34:56)" in unknown.stderr  # what is offered instead
        assert "is not among" in (await run("dismiss", *site, "00:00:00:00:00:01")).stderr
        adopted = await run("adopt", *site, "192.168.1.31", "--name", "Camera yard", "--tcp", "554")
        assert adopted.returncode == 0, adopted.stderr
        assert "Camera yard (camera, 192.168.1.31) is probed by Main office's agents: tcp:554" in adopted.stdout
        dismissed = await run("dismiss", *site, "00:11:32:AA:BB:CC")
        assert dismissed.returncode == 0, dismissed.stderr
        assert "Synology 192.168.1.40 (00:11:32:aa:bb:cc) is no longer offered for Main office" in dismissed.stdout
        assert "not monitored yet" in (await run("candidates", *site)).stdout
        assert "Camera yard" in (await run("list", *site)).stdout
    assert "CANDIDATE is its IP address or its hardware address" in fieldpost("network-device", "dismiss",
                                                                              "--help").stdout


async def test_a_proxys_error_page_is_one_line() -> None:
    # What a reverse proxy answers while the collector behind it is down: an HTML page, not the API's JSON.
    async def bad_gateway(request: web.Request) -> web.Response:
        page = "<html>\n<body>502 Bad Gateway</body>\n</html>\n"
        return web.Response(status=502, content_type="text/html", text=page)

    proxy = web.Application()
    proxy.router.add_get("/{tail:.*}", bad_gateway)
    async with TestServer(proxy) as server:
        url = str(server.make_url("")).rstrip("/")
        done = await asyncio.to_thread(fieldpost, "--url", url, "--token", "tech-secret", "alerts")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line == "fieldpost: collector answered 502: <html> <body>502 Bad Gateway</body> </html>"


PROTECTOR = "{4D3E9C2A-6B1F-4E8A-9C7D-2F5B8A1E0C34}"


async def test_escrow_is_turned_on_revealed_and_purged_from_the_command_line(tmp_path: Path, clock: Clock) -> None:
    app = create_app(Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret",
                              clock_skew_seconds=10**9), clock=clock)
    async with TestClient(TestServer(app)) as client:
        tech = ("--url", str(client.make_url("")).rstrip("/"), "--token", "tech-secret")

        async def run(*args: str) -> subprocess.CompletedProcess[str]:
            return await asyncio.to_thread(fieldpost, *tech, "escrow", *args)

        agent = await enrolled(client, "LAPTOP-7")
        assert "Acme Tooling: escrow off (never turned on)" in (await run("status", "Acme Tooling")).stdout
        on = await run("on", "Acme Tooling")
        assert on.returncode == 0 and "Acme Tooling: escrow on (turned on by API token" in on.stdout
        # A key as the device seals it, to the collector's own escrow key.
        public = public_of(EscrowKey(escrow_key_path(app[keys.SETTINGS])).private())
        async with app[keys.STORE].transaction() as tx:
            sealed = seal(public, agent.agent_id, "C:", PROTECTOR, "-".join(["111111"] * 8))
            await tx.save_escrowed_keys(agent.agent_id, [("C:", PROTECTOR, sealed.model_dump_json())], clock.now)
        listed = await run("keys", "--device", agent.agent_id)
        assert PROTECTOR in listed.stdout and "111111" not in listed.stdout
        revealed = await run("reveal", "--device", agent.agent_id, "--volume", "C:")
        assert revealed.returncode == 0 and "-".join(["111111"] * 8) in revealed.stdout
        off = await run("off", "Acme Tooling")
        assert "escrow off" in off.stdout and "stay until `fieldpost escrow purge`" in off.stdout
        refused = await run("purge", "Acme Tooling")
        assert refused.returncode == 1 and "add --yes" in refused.stderr
        purged = await run("purge", "Acme Tooling", "--yes")
        assert "1 escrowed recovery key of Acme Tooling deleted" in purged.stdout
        gone = await run("reveal", "--device", agent.agent_id, "--volume", "C:")
        assert gone.returncode == 1 and "no recovery key escrowed" in gone.stderr
