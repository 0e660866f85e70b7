"""A stand-in for systemctl, launchctl, sc.exe, icacls and useradd, which cannot act on this machine's services."""

from __future__ import annotations

from collections.abc import Sequence

from agent.commands import CommandResult

# Exit statuses the real tools document: systemctl is-active's LSB "not running", getent's "no such key",
# Windows' ERROR_SERVICE_ALREADY_RUNNING / DOES_NOT_EXIST / NOT_ACTIVE (launchctl print: any non-zero status).
INACTIVE, NO_KEY, ALREADY_RUNNING, NO_SERVICE, NOT_ACTIVE = 3, 2, 1056, 1060, 1062


class FakeServiceManager:
    """Records every command and answers status queries from the state the earlier commands set up."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.installed: set[str] = set()
        self.running: set[str] = set()

    def __call__(self, argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
        argv = tuple(argv)
        self.calls.append(argv)
        return CommandResult(argv, self._answer(argv), "", "")

    def changes(self) -> list[tuple[str, ...]]:
        """The calls that change something (queries left out)."""
        queries = ("is-enabled", "is-active", "print", "query", "passwd")
        return [call for call in self.calls if call[1] not in queries]

    def _answer(self, argv: tuple[str, ...]) -> int:
        match argv:
            case ("systemctl", "is-enabled", "--quiet", name) | ("sc.exe", "query", name):
                return 0 if name in self.installed else (1 if argv[0] == "systemctl" else NO_SERVICE)
            case ("systemctl", "is-active", "--quiet", name) | ("launchctl", "print", name):
                return 0 if name in self.running else INACTIVE
            case ("getent", "passwd", name):
                return 0 if name in self.installed else NO_KEY
            case ("systemctl", "enable", name) | ("sc.exe", "create", name, *_) | ("useradd", *_, name):
                self.installed.add(name)
            case ("systemctl", "start", name) | ("launchctl", "bootstrap", "system", name):
                self.running.add(name if argv[0] == "systemctl" else "system/net.fieldpost.agent")
            case ("sc.exe", "start", name):
                if name in self.running:
                    return ALREADY_RUNNING
                self.running.add(name)
            case ("systemctl", "disable", "--now", name) | ("sc.exe", "delete", name):
                self.installed.discard(name)
                self.running.discard(name)
            case ("launchctl", "bootout", name):
                self.running.discard(name)
            case ("sc.exe", "stop", name):
                if name not in self.installed:
                    return NO_SERVICE
                if name not in self.running:
                    return NOT_ACTIVE
                self.running.discard(name)
        return 0
