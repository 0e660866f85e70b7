"""`fieldpost-agent install` / `uninstall` into a temporary root, enrolling with a real collector on loopback."""

from __future__ import annotations

import asyncio
import os
import socket
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from agent import sdnotify
from agent.cli import main as agent_main
from agent.config import parse_config
from agent.identity import load_identity
from agent.install import NOTHING_CHANGED, NOTHING_REMOVED, InstallError, Systemd, install, layout, uninstall
from collector import keys
from collector.app import create_app
from collector.auth import token_hash
from collector.settings import Settings
from collector.store import Store
from tests.packaging.servicemanager import FakeServiceManager

TOKEN = "fp_enrol_install-test"
AGENT = "/opt/fieldpost/bin/fieldpost-agent"
WINDOWS_ENV = {"ProgramData": r"C:\ProgramData"}
UNIT = "fieldpost-agent.service"


class Collector:
    """A real collector app on loopback, with one enrolment token for Acme Tooling's main office."""

    def __init__(self, server: TestServer) -> None:
        self.url = str(server.make_url("")).rstrip("/")
        self.store: Store = server.app[keys.STORE]

    async def hostnames(self) -> list[str]:
        async with self.store.transaction() as tx:
            return [agent.hostname for agent in await tx.agents()]


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    settings = Settings(db=str(tmp_path / "collector.db"), admin_token="tech-secret")
    async with TestServer(create_app(settings), host="127.0.0.1") as server:
        running = Collector(server)
        async with running.store.transaction() as tx:
            site = await tx.site("Acme Tooling", "Main office")
            await tx.add_enrolment_token(token_hash(TOKEN), site, datetime.now(UTC), None, None)
        yield running


@pytest.fixture(autouse=True)
def umask() -> Iterator[None]:
    """A usual umask, so that the modes asserted for created directories do not depend on the caller's."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def tree(root: Path) -> dict[str, str]:
    """Every path under `root` with its mode, directories marked with a trailing slash."""
    return {f"{path.relative_to(root)}{'/' if path.is_dir() else ''}": f"{stat.S_IMODE(path.stat().st_mode):04o}"
            for path in sorted(root.rglob("*"))}


def snapshot(root: Path) -> dict[Path, tuple[int, int, bytes]]:
    """Mode, modification time and content of every file: what a second install must leave alone."""
    return {path: (path.stat().st_mode, path.stat().st_mtime_ns, path.read_bytes() if path.is_file() else b"")
            for path in root.rglob("*")}


async def test_it_installs_the_linux_agent_and_a_second_install_changes_nothing(
        tmp_path: Path, collector: Collector) -> None:
    root, systemd, said = tmp_path / "root", FakeServiceManager(), []
    done = await install(collector.url, TOKEN, root, "linux", run=systemd, program=AGENT,
                         hostname="RECEPTION-01", say=said.append)

    assert tree(root) == {
        "etc/": "0755", "etc/fieldpost/": "0755", "etc/fieldpost/agent.toml": "0640",
        "etc/systemd/": "0755", "etc/systemd/system/": "0755",
        "etc/systemd/system/fieldpost-agent.service": "0644",
        "var/": "0755", "var/lib/": "0755", "var/lib/fieldpost/": "0700",
        "var/lib/fieldpost/agent.key": "0600", "var/lib/fieldpost/identity.json": "0600",
        "var/lib/fieldpost/collector-config.pub": "0600",
    }
    config = parse_config((root / "etc/fieldpost/agent.toml").read_text(), "agent.toml")
    assert (config.agent.collector_url, config.agent.state_dir) == (collector.url, Path("/var/lib/fieldpost"))
    unit = (root / "etc/systemd/system/fieldpost-agent.service").read_bytes()
    assert unit == Systemd().service_file(layout("linux"), AGENT)
    identity = load_identity(root / "var/lib/fieldpost")
    assert (identity.client, identity.site, identity.collector_url) == ("Acme Tooling", "Main office", collector.url)
    assert await collector.hostnames() == ["RECEPTION-01"]
    assert systemd.changes() == [("systemctl", "daemon-reload"), ("systemctl", "enable", UNIT),
                                 ("systemctl", "start", UNIT)]
    assert done == said == [
        "wrote /etc/fieldpost/agent.toml (0640)",
        f"enrolled as {identity.agent_id} for client 'Acme Tooling', site 'Main office'",
        "wrote /etc/systemd/system/fieldpost-agent.service (0644)",
        "ran systemctl daemon-reload", f"ran systemctl enable {UNIT}", f"ran systemctl start {UNIT}",
    ]

    before, calls = snapshot(root), len(systemd.changes())
    said.clear()
    assert await install(collector.url, TOKEN, root, "linux", run=systemd, program=AGENT, say=said.append) == []
    assert said == [NOTHING_CHANGED]
    assert snapshot(root) == before
    assert len(systemd.changes()) == calls
    assert await collector.hostnames() == ["RECEPTION-01"]


async def test_uninstall_keeps_the_identity_for_a_reinstall_and_purge_removes_it(
        tmp_path: Path, collector: Collector) -> None:
    root, systemd = tmp_path / "root", FakeServiceManager()
    await install(collector.url, TOKEN, root, "linux", run=systemd, program=AGENT, say=lambda _: None)
    agent_id = load_identity(root / "var/lib/fieldpost").agent_id

    assert uninstall(True, root, "linux", run=systemd, say=lambda _: None) == [
        f"ran systemctl disable --now {UNIT}", "removed /etc/systemd/system/fieldpost-agent.service",
        "ran systemctl daemon-reload", "removed /etc/fieldpost/agent.toml", "removed /etc/fieldpost"]
    assert sorted(p for p in tree(root) if p.startswith("var/lib/fieldpost")) == [
        "var/lib/fieldpost/", "var/lib/fieldpost/agent.key", "var/lib/fieldpost/collector-config.pub",
        "var/lib/fieldpost/identity.json"]
    assert systemd.installed == systemd.running == set()

    again = await install(collector.url, "a token that would be refused", root, "linux", run=systemd,
                          program=AGENT, say=lambda _: None)
    assert not any(line.startswith("enrolled") for line in again)
    assert load_identity(root / "var/lib/fieldpost").agent_id == agent_id

    purged = uninstall(False, root, "linux", run=systemd, say=lambda _: None)
    assert "removed /var/lib/fieldpost" in purged
    assert tree(root) == {"etc/": "0755", "etc/systemd/": "0755", "etc/systemd/system/": "0755",
                          "var/": "0755", "var/lib/": "0755"}
    said: list[str] = []
    assert uninstall(False, root, "linux", run=systemd, say=said.append) == []
    assert said == [NOTHING_REMOVED]


async def test_a_refused_token_leaves_the_pc_unenrolled_and_the_service_unstarted(
        tmp_path: Path, collector: Collector) -> None:
    root, systemd = tmp_path / "root", FakeServiceManager()
    with pytest.raises(InstallError, match="unknown enrolment token"):
        await install(collector.url, "fp_enrol_wrong", root, "linux", run=systemd, program=AGENT, say=lambda _: None)
    assert not (root / "var/lib/fieldpost/identity.json").exists()
    assert systemd.calls == []


async def test_it_refuses_to_repoint_an_installed_agent_at_another_collector(
        tmp_path: Path, collector: Collector) -> None:
    root, systemd = tmp_path / "root", FakeServiceManager()
    await install(collector.url, TOKEN, root, "linux", run=systemd, program=AGENT, say=lambda _: None)
    with pytest.raises(InstallError, match="uninstall --purge"):
        await install("https://other.example.net", TOKEN, root, "linux", run=systemd, program=AGENT,
                      say=lambda _: None)


async def test_it_installs_the_windows_service_with_restart_on_failure(tmp_path: Path, collector: Collector) -> None:
    root, scm = tmp_path / "root", FakeServiceManager()
    python = r"C:\Program Files\Python312\python.exe"
    done = await install(collector.url, TOKEN, root, "win32", run=scm, program=python, env=WINDOWS_ENV,
                         say=lambda _: None)
    assert scm.changes() == [
        ("icacls", r"C:\ProgramData\fieldpost", "/inheritance:r", "/grant:r", "*S-1-5-18:(OI)(CI)F",
         "/grant:r", "*S-1-5-32-544:(OI)(CI)F"),
        ("sc.exe", "create", "fieldpost-agent", "binPath=", f'"{python}" -m agent.winservice',
         "start=", "delayed-auto", "DisplayName=", "fieldpost agent"),
        ("sc.exe", "description", "fieldpost-agent", "Reports this PC's health to the technician's collector"),
        ("sc.exe", "failure", "fieldpost-agent", "reset=", "86400", "actions=",
         "restart/10000/restart/10000/restart/60000"),
        ("sc.exe", "failureflag", "fieldpost-agent", "1"),
        ("sc.exe", "start", "fieldpost-agent"),
    ]
    assert done[:2] == [r"created C:\ProgramData\fieldpost, readable by SYSTEM and Administrators only",
                        r"wrote C:\ProgramData\fieldpost\agent.toml (0600)"]
    config = parse_config((root / "ProgramData/fieldpost/agent.toml").read_text(), "agent.toml")
    assert str(config.agent.state_dir) == r"C:\ProgramData\fieldpost"
    assert (root / "ProgramData/fieldpost/identity.json").exists()

    assert await install(collector.url, TOKEN, root, "win32", run=scm, program=python, env=WINDOWS_ENV,
                         say=lambda _: None) == []
    assert uninstall(False, root, "win32", run=scm, env=WINDOWS_ENV, say=lambda _: None) == [
        "ran sc.exe stop fieldpost-agent", "ran sc.exe delete fieldpost-agent",
        r"removed C:\ProgramData\fieldpost\agent.toml", r"removed C:\ProgramData\fieldpost"]


async def test_it_installs_the_macos_launch_daemon(tmp_path: Path, collector: Collector) -> None:
    root, launchd = tmp_path / "root", FakeServiceManager()
    await install(collector.url, TOKEN, root, "darwin", run=launchd, program=AGENT, say=lambda _: None)
    assert {path: mode for path, mode in tree(root).items() if "fieldpost" in path} == {
        "Library/Application Support/fieldpost/": "0700",
        "Library/Application Support/fieldpost/agent.key": "0600",
        "Library/Application Support/fieldpost/agent.toml": "0600",
        "Library/Application Support/fieldpost/collector-config.pub": "0600",
        "Library/Application Support/fieldpost/identity.json": "0600",
        "Library/LaunchDaemons/net.fieldpost.agent.plist": "0644",
        "Library/Logs/fieldpost/": "0755",
    }
    assert launchd.changes() == [("launchctl", "bootstrap", "system",
                                  "/Library/LaunchDaemons/net.fieldpost.agent.plist")]
    assert await install(collector.url, TOKEN, root, "darwin", run=launchd, program=AGENT,
                         say=lambda _: None) == []
    # A changed plist is only read by launchd on bootstrap: the daemon is booted out and in again.
    await install(collector.url, TOKEN, root, "darwin", run=launchd, program="/usr/local/bin/fieldpost-agent",
                  say=lambda _: None)
    assert launchd.changes()[-2:] == [("launchctl", "bootout", "system/net.fieldpost.agent"),
                                      ("launchctl", "bootstrap", "system",
                                       "/Library/LaunchDaemons/net.fieldpost.agent.plist")]


def listen(path: Path) -> socket.socket:
    """A datagram socket like the one systemd gives a Type=notify service in $NOTIFY_SOCKET."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(5)
    return sock


async def test_it_tells_systemd_it_is_ready_pings_the_watchdog_and_says_it_stops(tmp_path: Path) -> None:
    with listen(tmp_path / "notify") as sock:
        env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "20000", "WATCHDOG_PID": str(os.getpid())}
        stop = asyncio.Event()
        task = asyncio.create_task(sdnotify.supervise(stop, env))
        received = [await asyncio.to_thread(sock.recv, 64) for _ in range(3)]
        stop.set()
        await task
        while (message := sock.recv(64)) == b"WATCHDOG=1":
            pass
    assert received == [b"READY=1", b"WATCHDOG=1", b"WATCHDOG=1"]
    assert message == b"STOPPING=1"


def test_it_reaches_an_abstract_notify_socket() -> None:
    name = f"fieldpost-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert sdnotify.notify("READY=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"READY=1"


def test_without_systemd_it_sends_nothing_and_answers_no_watchdog() -> None:
    assert not sdnotify.notify("READY=1", {})
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": "1"}) is None
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0


def test_the_install_command_refuses_a_bad_url_before_touching_anything(capsys: pytest.CaptureFixture[str]) -> None:
    assert agent_main(["install", "--collector", "fp.example.net", "--token", TOKEN]) == 1
    said = capsys.readouterr().err
    assert "fieldpost-agent install: --collector 'fp.example.net': Value error, must be an http" in said
