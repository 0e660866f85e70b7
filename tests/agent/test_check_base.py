"""The check base class: a check that fails or hangs is reported as unknown, never as healthy."""

from __future__ import annotations

import asyncio
import os
import threading

import psutil

from agent.checks import Check
from agent.commands import CommandNotFound, powershell, run_command
from shared.base import Signal
from shared.wire import ERROR_MAX, Unknown


class Broken(Check):
    """A check whose collection raises."""

    kind = "disk_health"

    def collect(self) -> list[Signal]:
        raise PermissionError("/dev/sda: access denied")


class Missing(Check):
    """A check whose program is not installed."""

    kind = "backup_results"

    def collect(self) -> list[Signal]:
        raise CommandNotFound("restic is not installed or not on PATH")


class Hanging(Check):
    """A check that blocks until released."""

    kind = "printer_ip_conflict"
    timeout = 0.05

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def collect(self) -> list[Signal]:
        self.release.wait(10)
        return []


async def test_an_exception_becomes_an_unknown_signal_carrying_the_error() -> None:
    [signal] = await Broken().run()
    assert isinstance(signal, Unknown)
    assert (signal.check, signal.error) == ("disk_health", "PermissionError: /dev/sda: access denied")


async def test_a_missing_program_becomes_an_unknown_signal_saying_so() -> None:
    [signal] = await Missing().run()
    assert isinstance(signal, Unknown)
    assert signal.error == "restic is not installed or not on PATH"


async def test_a_check_that_outlives_its_timeout_becomes_unknown() -> None:
    check = Hanging()
    try:
        [signal] = await check.run()
    finally:
        check.release.set()
    assert isinstance(signal, Unknown)
    assert signal.check == "printer_ip_conflict"
    assert signal.error.startswith("timed out after")


class HungTool(Check):
    """A check whose tool hangs (a `sleep` standing in for smartctl on a dying disk, or restic on a dead NAS)."""

    kind = "backup_results"
    timeout = 0.5

    def collect(self) -> list[Signal]:
        self.context.run(["sh", "-c", "sleep 300; echo never"], 600)
        return []


class Quick(Check):
    """A check that answers at once."""

    kind = "pending_reboot"

    def collect(self) -> list[Signal]:
        return [Unknown(collected_at=self.context.clock(), check="pending_reboot", error="fine")]


def sleeps_of(pid: int) -> list[psutil.Process]:
    return [p for p in psutil.Process(pid).children(recursive=True) if p.name() == "sleep"]


async def test_a_hung_tool_is_killed_and_the_other_checks_keep_reporting() -> None:
    hung, quick = HungTool(), Quick()
    # More runs than the shared thread pool has workers: a hung collect that kept one would starve the rest.
    for _ in range(8):
        stuck, answered = await asyncio.gather(hung.run(), quick.run())
        [signal] = stuck
        assert isinstance(signal, Unknown)
        assert signal.error == "timed out after 0.5 s; killed sh"
        assert answered[0].error == "fine"
        hung._running.join(10)
        assert not hung._running.is_alive(), "the collect ended once its tool was killed"
    assert sleeps_of(os.getpid()) == [], "no tool left running"


async def test_a_collect_stuck_where_nothing_can_kill_it_is_not_started_again() -> None:
    check = Hanging()
    try:
        [first] = await check.run()
        threads = threading.active_count()
        [second] = await check.run()
        assert first.error.startswith("timed out after")
        assert second.error.startswith("still stuck in the run that timed out after")
        assert threading.active_count() == threads, "no second thread for the same check"
    finally:
        check.release.set()
    check._running.join(10)
    assert await check.run() == [], "once it ends, the check runs again"


class Verbose(Check):
    """A check whose failure quotes a whole tool output."""

    kind = "updates"

    def collect(self) -> list[Signal]:
        raise RuntimeError("apt-get failed: " + "E: Could not get lock /var/lib/dpkg/lock-frontend\n" * 1000)


async def test_a_failure_quoting_a_huge_output_is_cut_to_fit_the_wire_schema() -> None:
    [signal] = await Verbose().run()
    assert isinstance(signal, Unknown)
    assert signal.error.startswith("RuntimeError: apt-get failed: E: Could not get lock")
    assert len(signal.error) == ERROR_MAX and signal.error.endswith("…")


def test_external_commands_run_in_the_c_locale_whatever_the_device_speaks(monkeypatch) -> None:
    monkeypatch.setenv("LANG", "de_DE.UTF-8")
    monkeypatch.setenv("LC_ALL", "fr_FR.UTF-8")
    done = run_command(["sh", "-c", 'echo "$LC_ALL $LANG"'])
    assert done.stdout.strip() == "C C"


def test_powershell_is_asked_to_write_utf8_not_the_oem_code_page() -> None:
    argv = powershell("Get-WinEvent -LogName 'Veeam Agent' | ConvertTo-Json")
    assert argv[:4] == ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command"]
    assert argv[4].startswith("[Console]::OutputEncoding = [System.Text.Encoding]::UTF8; Get-WinEvent")
