"""Running external commands (smartctl, restic, PowerShell...) behind one small, replaceable seam."""

from __future__ import annotations

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


def run_command(argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
    """Run a program without a shell; a non-zero exit is a result, not an exception."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False,
            encoding="utf-8", errors="replace",
        )
    except FileNotFoundError as exc:
        raise CommandNotFound(f"{argv[0]} is not installed or not on PATH") from exc
    return CommandResult(tuple(argv), done.returncode, done.stdout, done.stderr)
