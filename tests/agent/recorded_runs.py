"""A command runner for tests that answers from recorded outputs, and fails like a missing tool otherwise."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from agent.commands import CommandNotFound, CommandResult

FIXTURES = Path(__file__).parent.parent / "fixtures"


class Recorded:
    """argv prefix -> (fixture file, exit status); any other program is 'not installed'. Logs every call."""

    def __init__(self, answers: dict[tuple[str, ...], tuple[str, int]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, ...]] = []

    def __call__(self, argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        for prefix, (name, code) in self.answers.items():
            if argv[: len(prefix)] == prefix:
                return CommandResult(argv, code, (FIXTURES / name).read_text() if name else "", "")
        raise CommandNotFound(f"{argv[0]} is not installed or not on PATH")
