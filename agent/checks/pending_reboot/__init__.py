"""The pending_reboot check: asks the platform's provider why a reboot waits, since when, and who is on."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

from agent.checks import CheckContext, ProviderCheck, platform_provider
from agent.checks.pending_reboot.memory import boot_key, earliest_since, judge, state_dir_of
from agent.checks.rootfs import below
from shared.base import Signal
from shared.pending_reboot import InteractiveSession, PendingReboot, RebootAction, RebootReason


@dataclass(frozen=True)
class RebootFacts:
    """What a provider found; the check turns it into the wire signal."""

    reasons: list[RebootReason] = field(default_factory=list)
    pending_since: datetime | None = None
    boot_time: datetime | None = None
    boot_id: str | None = None
    sessions: list[InteractiveSession] = field(default_factory=list)
    # What could not be read; reported beside the reasons that were, never instead of them.
    errors: list[str] = field(default_factory=list)


class Provider(Protocol):
    """One platform's way of finding pending-reboot facts."""

    def facts(self, now: datetime) -> RebootFacts: ...


def sessions_from(
    users: Iterable[Any],
    now: datetime,
    idle_of: Callable[[str | None], datetime | None],
) -> list[InteractiveSession]:
    """Interactive sessions from psutil.users() entries; `idle_of` gives a terminal's last input time."""
    sessions = []
    for user in users:
        last_input = idle_of(user.terminal)
        idle = max(0.0, (now - last_input).total_seconds()) if last_input else None
        started = datetime.fromtimestamp(user.started, UTC) if user.started else None
        sessions.append(
            InteractiveSession(user=user.name, terminal=user.terminal, started=started, idle_seconds=idle)
        )
    return sessions


def tty_last_input(root: Path, terminal: str | None) -> datetime | None:
    """When the user last typed on a tty/pts: its device's access time (what `w` shows as idle)."""
    if not terminal:
        return None
    try:
        return datetime.fromtimestamp(below(root, f"/dev/{terminal}").stat().st_atime, UTC)
    except OSError:
        return None


def provider_for(platform: str, context: CheckContext) -> Provider:
    """The provider for `platform` (a sys.platform value)."""
    names = {"windows": "WindowsProvider", "darwin": "DarwinProvider", "linux": "LinuxProvider"}
    return cast(Provider, platform_provider(__name__, names, platform, context))


class PendingRebootCheck(ProviderCheck[Provider]):
    """Reports whether a reboot is pending, with reasons, age, boot identity and logged-on sessions."""

    provider_for = staticmethod(provider_for)
    kind: ClassVar[str] = "pending_reboot"
    timeout: ClassVar[float] = 120.0
    default_interval: ClassVar[float] = 3600.0

    def __init__(self, context: CheckContext | None = None, platform: str = sys.platform) -> None:
        super().__init__(context, platform)
        # Set by the nightly maintenance job; reported with every signal so the technician sees why not.
        self.last_action: RebootAction | None = None

    def collect(self) -> list[Signal]:
        """One pending_reboot signal, with the reasons that survived the policy's last reboot."""
        now = self.context.clock()
        facts = self.provider.facts(now)
        state_dir = state_dir_of(self.context)
        survived = judge(state_dir, facts.reasons, facts.boot_id, facts.boot_time)
        boot = boot_key(facts.boot_id, facts.boot_time)
        return [
            PendingReboot(
                collected_at=now,
                pending=any(reason.confidence == "high" for reason in facts.reasons),
                reasons=facts.reasons,
                pending_since=earliest_since(state_dir, facts.reasons, facts.pending_since, boot, now),
                boot_time=facts.boot_time,
                boot_id=facts.boot_id,
                sessions=facts.sessions,
                last_action=self.last_action,
                policy_reboot=survived,
                errors=facts.errors,
            )
        ]
