"""Running external commands (smartctl, restic, PowerShell...) behind one small, replaceable seam."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


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


def run_command(argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
    """Run a program without a shell, in the C locale; a non-zero exit is a result, not an exception.

    A program that outlives `timeout` is killed (subprocess.TimeoutExpired is raised).
    """
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False,
            encoding="utf-8", errors="replace", env={**os.environ, **C_LOCALE},
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(f"{argv[0]} is not installed or not on PATH") from exc
    return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)
