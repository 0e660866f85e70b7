"""Every check the agent knows, by kind: one per signal of the registry (`shared.signals`), found in
`agent/checks/<signal>`."""

from __future__ import annotations

import importlib
import inspect

from agent.checks import Check
from shared.signals import SIGNALS


def check_of(signal: str) -> type[Check]:
    """The check class of a signal: the one Check subclass in `agent.checks.<signal>` whose kind is the signal."""
    module = importlib.import_module(f"agent.checks.{signal}")
    [found] = {
        cls for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Check) and getattr(cls, "kind", None) == signal
    }
    return found


def all_checks() -> dict[str, type[Check]]:
    """The check classes by kind."""
    return {signal.name: check_of(signal.name) for signal in SIGNALS if signal.own_check}
