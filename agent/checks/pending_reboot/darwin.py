"""macOS pending-reboot provider: boot identity and sessions; macOS records no pending-reboot flag we trust.

An update that `softwareupdate --list` offers with `Action: restart` is not a pending reboot: it is an
update that will need a restart when it is installed, and rebooting does not install it. It is reported
by the updates check, where it belongs; counting it here warned about a reboot and made the policy
restart Macs without installing anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import psutil

from agent.checks import CheckContext
from agent.checks.pending_reboot import RebootFacts, sessions_from, tty_last_input


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
        """No reasons; boot time, the boot session's UUID and logged-on sessions."""
        boot_session = self.context.run(["sysctl", "-n", "kern.bootsessionuuid"], timeout=10.0)
        return RebootFacts(
            boot_time=datetime.fromtimestamp(self.boot_time(), UTC),
            boot_id=boot_session.stdout.strip() or None if boot_session.returncode == 0 else None,
            sessions=sessions_from(self.users(), now, lambda tty: tty_last_input(self.context.root, tty)),
        )
