"""Checks: small classes that only collect facts; the base owns timeout, thread hop and failure."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from agent.commands import CommandNotFound, Runner, run_command
from shared.base import Signal
from shared.clock import Clock, system_clock
from shared.wire import ERROR_MAX, Unknown

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckContext:
    """What a check may use: its config section, a command runner, the filesystem root to read, its state."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    run: Runner = run_command
    root: Path = Path("/")
    # The agent's own state directory (None: the platform default), for checks that keep records there.
    state_dir: Path | None = None
    # The agent's one clock: every collected_at comes from it.
    clock: Clock = system_clock


class Check:
    """Base of every check: subclasses set `kind` and implement `collect`, which may block."""

    kind: ClassVar[str]
    timeout: ClassVar[float] = 120.0
    default_interval: ClassVar[float] = 300.0

    def __init__(self, context: CheckContext | None = None) -> None:
        self.context = context or CheckContext()

    def collect(self) -> list[Signal]:
        """Gather the facts; runs in a worker thread, so blocking calls are fine here."""
        raise NotImplementedError

    async def run(self) -> list[Signal]:
        """Collect off the event loop within the timeout; any failure becomes an `unknown` signal."""
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.collect), self.timeout)
        except TimeoutError:
            error = f"timed out after {self.timeout:.0f} s"
        except CommandNotFound as exc:
            error = str(exc)
        except Exception as exc:
            log.exception("check %s failed", self.kind)
            error = f"{type(exc).__name__}: {exc}"
        # A failure quoting a whole tool output must still fit the wire schema's bound.
        if len(error) > ERROR_MAX:
            error = error[: ERROR_MAX - 1] + "…"
        return [Unknown(collected_at=self.context.clock(), check=self.kind, error=error)]
