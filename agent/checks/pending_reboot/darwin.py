"""macOS pending-reboot provider: downloaded updates that say `Action: restart`."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import psutil

from agent.checks import CheckContext
from agent.checks.pending_reboot import RebootFacts, sessions_from, tty_last_input
from agent.checks.updates.darwin import list_updates
from shared.pending_reboot import RebootReason


class DarwinProvider:
    """Pending-reboot facts of a Mac."""

    def __init__(
        self,
        context: CheckContext,
        users: Callable[[], Iterable[Any]] = psutil.users,
        boot_time: Callable[[], float] = psutil.boot_time,
    ) -> None:
        self.context = context
        self.users = users
        self.boot_time = boot_time

    def facts(self, now: datetime) -> RebootFacts:
        """Restart-requiring updates from the catalogue already downloaded (no network scan)."""
        restart = [entry for entry in list_updates(self.context.run, scan=False) if entry.restart]
        reasons = (
            [
                RebootReason(
                    source="softwareupdate",
                    confidence="high",
                    detail="update needs a restart: " + ", ".join(entry.title for entry in restart),
                )
            ]
            if restart
            else []
        )
        boot_session = self.context.run(["sysctl", "-n", "kern.bootsessionuuid"], timeout=10.0)
        return RebootFacts(
            reasons=reasons,
            boot_time=datetime.fromtimestamp(self.boot_time(), UTC),
            boot_id=boot_session.stdout.strip() or None if boot_session.returncode == 0 else None,
            sessions=sessions_from(self.users(), now, lambda tty: tty_last_input(self.context.root, tty)),
        )
