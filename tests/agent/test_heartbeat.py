"""The heartbeat check on this machine, and its default-gateway parsers on recorded routing tables."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import psutil

import shared
from agent.checks import CheckContext
from agent.checks.heartbeat import (
    HeartbeatCheck,
    cidr,
    default_gateway,
    has_battery,
    has_desktop,
    parse_netstat_rn,
    parse_proc_net_route,
    parse_route_print,
)
from agent.checks.registry import all_checks
from agent.commands import CommandResult
from agent.outbox import OUTBOX_FILE, Outbox
from shared.wire import Heartbeat
from tests.support.clock import Clock

ROUTES = Path(__file__).resolve().parents[1] / "fixtures" / "heartbeat"


async def test_it_reports_a_valid_heartbeat_for_this_machine() -> None:
    check = HeartbeatCheck()
    check.first_cpu_sample_seconds = 0.05
    [signal] = await check.run()
    assert isinstance(signal, Heartbeat), signal
    assert signal.hostname == socket.gethostname()
    assert signal.agent_version == shared.__version__
    assert signal.cpu_count == psutil.cpu_count()
    assert signal.memory_total_bytes == psutil.virtual_memory().total
    assert signal.uptime_seconds > 0
    assert signal.collected_at > signal.boot_time
    assert any(fs.mount == "/" for fs in signal.filesystems)
    addresses = [a for i in signal.interfaces for a in i.addresses]
    assert addresses and all("/" in a for a in addresses)
    assert not any(a.startswith(("127.", "::1/")) for a in addresses), "loopback is left out"
    assert Heartbeat.model_validate_json(signal.model_dump_json()) == signal


def test_it_is_registered_under_its_kind() -> None:
    assert all_checks()["heartbeat"] is HeartbeatCheck


def test_it_reads_the_linux_default_gateway_from_proc_net_route() -> None:
    assert parse_proc_net_route((ROUTES / "proc-net-route-linux.txt").read_text()) == "192.0.2.1"


def test_it_reads_proc_net_route_below_the_context_root(tmp_path: Path) -> None:
    (tmp_path / "proc/net").mkdir(parents=True)
    (tmp_path / "proc/net/route").write_text((ROUTES / "proc-net-route-linux.txt").read_text())
    assert default_gateway("linux", tmp_path, _no_commands) == "192.0.2.1"
    assert default_gateway("linux", tmp_path / "empty", _no_commands) is None


def test_it_reads_the_windows_default_gateway_from_route_print() -> None:
    assert parse_route_print((ROUTES / "route-print-4-windows.txt").read_text()) == "192.168.1.254"


def test_it_reads_the_macos_default_gateway_from_netstat() -> None:
    assert parse_netstat_rn((ROUTES / "netstat-rn-macos.txt").read_text()) == "10.10.10.1"


def test_no_default_route_means_no_gateway() -> None:
    linux = (ROUTES / "proc-net-route-linux.txt").read_text().splitlines()
    assert parse_proc_net_route("\n".join(line for line in linux if "\t00000000\t" not in line)) is None
    assert parse_route_print("IPv4 Route Table\nActive Routes:\n  None\n") is None


class Recorded:
    """A runner that answers one command with recorded output."""

    def __init__(self, argv: Sequence[str], stdout: str) -> None:
        self.argv = tuple(argv)
        self.stdout = stdout

    def __call__(self, argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
        assert tuple(argv) == self.argv
        return CommandResult(self.argv, 0, self.stdout, "")


def _no_commands(argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
    raise AssertionError(f"no command expected on Linux, got {argv}")


def test_it_asks_route_and_netstat_on_windows_and_macos() -> None:
    windows = Recorded(["route", "print", "-4"], (ROUTES / "route-print-4-windows.txt").read_text())
    macos = Recorded(["netstat", "-rn", "-f", "inet"], (ROUTES / "netstat-rn-macos.txt").read_text())
    assert default_gateway("win32", Path("/"), windows) == "192.168.1.254"
    assert default_gateway("darwin", Path("/"), macos) == "10.10.10.1"


async def test_without_a_routing_table_the_heartbeat_has_no_gateway() -> None:
    check = HeartbeatCheck(CheckContext(run=_no_commands, root=Path("/nonexistent")))
    check.first_cpu_sample_seconds = 0.05
    [signal] = await check.run()
    assert isinstance(signal, Heartbeat)
    assert signal.default_gateway is None


def test_it_writes_addresses_in_cidr_form() -> None:
    assert cidr("192.168.1.9", "255.255.255.0") == "192.168.1.9/24"
    assert cidr("fe80::1%en0", "ffff:ffff:ffff:ffff::") == "fe80::1/64"
    assert cidr("2001:db8::5", None) == "2001:db8::5/128"


async def test_the_heartbeat_says_when_the_collector_refused_reports(tmp_path: Path, clock: Clock) -> None:
    outbox = Outbox(tmp_path / OUTBOX_FILE, "ag_test", "boot-1", clock=clock)
    try:
        first = outbox.put([heartbeat_at(clock.now)])
        outbox.mark_rejected(first, "422 envelopes.0.signals.0.heartbeat.boot_time: Input should be greater than ...")
        clock.advance(minutes=1)
    finally:
        outbox.close()
    check = HeartbeatCheck(CheckContext(state_dir=tmp_path, clock=clock))
    check.first_cpu_sample_seconds = 0.05
    [signal] = await check.run()
    assert isinstance(signal, Heartbeat), signal
    assert (signal.refused_reports, signal.last_refusal_queued_at) == (1, clock.now - timedelta(minutes=1))
    assert signal.last_refusal and signal.last_refusal.startswith("422 envelopes.0.signals.0.heartbeat.boot_time")
    [clean] = await HeartbeatCheck(CheckContext(state_dir=tmp_path / "new", clock=clock)).run()
    assert isinstance(clean, Heartbeat) and (clean.refused_reports, clean.last_refusal) == (0, None)


def heartbeat_at(at: datetime) -> Heartbeat:
    """A minimal heartbeat collected at `at`."""
    return Heartbeat(collected_at=at, hostname="pc-01", os_name="Linux", os_version="12", agent_version="0.1",
                     boot_time=at, uptime_seconds=0, cpu_count=1, cpu_percent=0, memory_total_bytes=1,
                     memory_used_percent=0)


def test_a_linux_machine_with_a_graphical_session_installed_has_a_desktop(tmp_path: Path) -> None:
    assert not has_desktop(tmp_path), "a bare Linux is a server"
    (tmp_path / "usr/share/wayland-sessions").mkdir(parents=True)
    (tmp_path / "usr/share/wayland-sessions/gnome.desktop").write_text("[Desktop Entry]\n")
    assert has_desktop(tmp_path)


async def test_the_heartbeat_says_what_the_device_is() -> None:
    check = HeartbeatCheck(CheckContext(root=Path("/nonexistent")))
    check.first_cpu_sample_seconds = 0.05
    [signal] = await check.run()
    assert isinstance(signal, Heartbeat)
    # This test machine: Linux without a desktop (a server) unless it has a battery or is not Linux.
    assert signal.device_class in ("server", "workstation", "laptop")
    if signal.os_name == "Linux" and not has_battery():
        assert signal.device_class == "server"
