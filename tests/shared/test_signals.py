"""The signal registry: every signal has its four homes, and every alert rule is named for its signal."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import ClassVar, get_args

import pytest

from agent.checks import Check
from agent.checks.registry import all_checks
from collector.rules import rules_by_kind
from shared.signals import SIGNALS, SignalInfo, rule_matches, signal_of
from shared.wire import KnownSignal

ROOT = Path(__file__).resolve().parents[2]


def homes(*paths: str) -> list[str]:
    """Those of the paths (relative to the repository) that exist."""
    return [path for path in paths if (ROOT / path).exists()]


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
def test_every_signal_has_its_agent_check(signal: SignalInfo) -> None:
    if signal.own_check:
        assert homes(f"agent/checks/{signal.name}.py", f"agent/checks/{signal.name}/__init__.py")
        assert all_checks()[signal.name].kind == signal.name
        return

    # A signal no check collects is the base class's: a check that could not look reports it.
    class Broken(Check):
        kind: ClassVar[str] = "broken"

        def collect(self) -> list:
            raise OSError("no such device")

    [reported] = asyncio.run(Broken().run())
    assert isinstance(reported, signal.model)


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
def test_every_signal_is_a_wire_kind(signal: SignalInfo) -> None:
    assert signal.model.model_fields["kind"].default == signal.name
    assert signal.model in get_args(KnownSignal)


def test_the_wire_carries_no_signal_the_registry_lacks() -> None:
    assert {model.model_fields["kind"].default for model in get_args(KnownSignal)} == {s.name for s in SIGNALS}


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
def test_every_signal_has_its_collector_rule_owning_the_alert_rules(signal: SignalInfo) -> None:
    assert homes(f"collector/rules/{signal.name}.py")
    assert tuple(rule.name for rule in rules_by_kind()[signal.name].alerts) == signal.rules


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
def test_every_signal_has_tests_named_for_it(signal: SignalInfo) -> None:
    assert homes(f"tests/collector/test_{signal.name}.py")
    if signal.own_check:
        assert homes(f"tests/agent/test_{signal.name}.py")


@pytest.mark.parametrize("rule", [rule for s in SIGNALS for rule in s.rules])
def test_every_alert_rule_is_named_signal_or_signal_dot_aspect(rule: str) -> None:
    owner = signal_of(rule)
    assert rule in next(s for s in SIGNALS if s.name == owner).rules
    assert rule_matches(owner, rule)
