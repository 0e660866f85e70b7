"""Checks: small classes that only collect facts; the base owns timeout, own thread, killing and failure."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from agent.commands import CommandNotFound, Runner, kill_commands_of, run_command
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
    # True for the run in the nightly maintenance window, when heavy work that is due is best done.
    maintenance: bool = False


class Check:
    """Base of every check: subclasses set `kind` and implement `collect`, which may block."""

    kind: ClassVar[str]
    timeout: ClassVar[float] = 120.0
    default_interval: ClassVar[float] = 300.0
    # The thread of the latest collect (a check runs one collect at a time).
    _running: threading.Thread | None = None
    _stuck: threading.Thread | None = None

    def __init__(self, context: CheckContext | None = None) -> None:
        self.context = context or CheckContext()

    def collect(self) -> list[Signal]:
        """Gather the facts; runs in a worker thread, so blocking calls are fine here."""
        raise NotImplementedError

    async def run(self) -> list[Signal]:
        """Collect in the check's own thread within its budget; any failure becomes an `unknown` signal.

        When the budget runs out, the commands the collect is running are killed, so it ends. A collect
        stuck where nothing can kill it (a hung network mount) keeps only its own thread, and the check is
        not started again while it is: each run until it ends reports that it is stuck.
        """
        # Only a run that timed out can be stuck: one that delivered its result may still be finishing its
        # thread for a moment, and is not.
        stuck = self._stuck
        if stuck is not None and stuck.is_alive():
            error = (f"still stuck in the run that timed out after {self.timeout:g} s "
                     "(e.g. a hung network mount); not started again until it ends")
        else:
            try:
                return await self._collect_in_own_thread()
            except TimeoutError:
                self._stuck = self._running
                killed = kill_commands_of(self._running.ident) if self._running and self._running.ident else []
                error = f"timed out after {self.timeout:g} s" + (f"; killed {', '.join(killed)}" if killed else "")
            except CommandNotFound as exc:
                error = str(exc)
            except Exception as exc:
                log.exception("check %s failed", self.kind)
                error = f"{type(exc).__name__}: {exc}"
        # A failure quoting a whole tool output must still fit the wire schema's bound.
        if len(error) > ERROR_MAX:
            error = error[: ERROR_MAX - 1] + "…"
        return [Unknown(collected_at=self.context.clock(), check=self.kind, error=error)]

    async def _collect_in_own_thread(self) -> list[Signal]:
        """`collect` in a thread of its own (never the shared pool, which hung collects would starve)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Signal]] = loop.create_future()

        def settle(outcome: list[Signal] | BaseException) -> None:
            if done.done():
                return  # the budget ran out first: the late outcome is dropped
            if isinstance(outcome, BaseException):
                done.set_exception(outcome)
            else:
                done.set_result(outcome)

        def collect() -> None:
            outcome: list[Signal] | BaseException
            try:
                outcome = self.collect()
            except BaseException as exc:
                outcome = exc
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(settle, outcome)

        self._running = threading.Thread(target=collect, name=f"check {self.kind}", daemon=True)
        self._running.start()
        return await asyncio.wait_for(done, self.timeout)


P = TypeVar("P")


class ProviderCheck(Check, Generic[P]):
    """A check whose facts come from its platform's provider, chosen (and imported) when the check is made."""

    # The check package's `provider_for(platform, context)`.
    provider_for: ClassVar[Callable[[str, CheckContext], Any]]

    def __init__(self, context: CheckContext | None = None, platform: str = sys.platform) -> None:
        super().__init__(context)
        self.provider: P = type(self).provider_for(platform, self.context)


# The module of a check's package that holds each platform's provider (a sys.platform value; others: linux).
PLATFORM_MODULES = {"win32": "windows", "darwin": "darwin"}


def platform_provider(package: str, names: Mapping[str, str], platform: str, context: CheckContext) -> Any:
    """The provider `names` gives for `platform`'s module (windows, darwin, linux) of `package`, imported only
    then: an agent loads no other platform's code."""
    module = PLATFORM_MODULES.get(platform, "linux")
    return getattr(importlib.import_module(f"{package}.{module}"), names[module])(context)
