"""Running external commands (smartctl, restic, PowerShell...) behind one small, replaceable seam."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class CommandNotFound(Exception):
    """The program is not installed (or not on PATH)."""


@dataclass(frozen=True)
class CommandResult:
    """What a finished command returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """Runs a command and returns its result; tests pass recorded outputs through the same seam."""

    def __call__(self, argv: Sequence[str], timeout: float = 60.0) -> CommandResult: ...


# Tools' messages in English and numbers with a dot, whatever the device's language: the parsers read them.
C_LOCALE = {"LC_ALL": "C", "LANG": "C"}
# Windows PowerShell 5.1 writes piped output in the OEM code page (850 on a German PC): ask it for UTF-8.
POWERSHELL_UTF8 = "[Console]::OutputEncoding = [System.Text.Encoding]::UTF8; "


def powershell(script: str) -> list[str]:
    """The argv that runs a Windows PowerShell script without profile or prompts, writing UTF-8."""
    return ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", POWERSHELL_UTF8 + script]


# Each collect's running commands (by its thread), so that its budget running out can kill what it started.
_LIVE: dict[int, set[subprocess.Popen[str]]] = {}
_LIVE_LOCK = threading.Lock()
# A helper thread working for a collect (e.g. reading disks side by side) files its commands under it.
_WORKING_FOR = threading.local()
# Its own process group on POSIX: killing it takes the tool's children too (a shell script's sleep, ssh...).
_OWN_GROUP: dict[str, Any] = {"start_new_session": True} if os.name == "posix" else {}


def _kill(process: subprocess.Popen[str]) -> None:
    """Kill a command and, on POSIX, the process group it leads."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def run_command(argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
    """Run a program without a shell, in the C locale; a non-zero exit is a result, not an exception.

    A program that outlives `timeout` is killed (subprocess.TimeoutExpired is raised), and so is one
    whose check ran out of its budget meanwhile (see `kill_commands_of`).
    """
    try:
        process = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            encoding="utf-8", errors="replace", env={**os.environ, **C_LOCALE}, **_OWN_GROUP,
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(f"{argv[0]} is not installed or not on PATH") from exc
    owner = command_owner()
    with _LIVE_LOCK:
        _LIVE.setdefault(owner, set()).add(process)
    try:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill(process)
            process.communicate()
            raise
    finally:
        with _LIVE_LOCK:
            _LIVE[owner].discard(process)
            if not _LIVE[owner]:
                del _LIVE[owner]
    return CommandResult(tuple(argv), process.returncode, stdout, stderr)


def command_owner() -> int:
    """The collect the calling thread's commands belong to: its own thread, or the one it works for."""
    return getattr(_WORKING_FOR, "owner", None) or threading.get_ident()


def working_for(owner: int, work: Callable[[T], R]) -> Callable[[T], R]:
    """`work` as run by a helper thread on behalf of the collect `owner` (whose budget kills its commands)."""

    def run(item: T) -> R:
        _WORKING_FOR.owner = owner
        try:
            return work(item)
        finally:
            _WORKING_FOR.owner = None

    return run


def kill_commands_of(thread_id: int) -> list[str]:
    """Kill every command the thread is running now; returns their program names."""
    with _LIVE_LOCK:
        processes = list(_LIVE.get(thread_id, ()))
    for process in processes:
        _kill(process)
    return [os.path.basename(str(process.args[0])) for process in processes]
