"""The unknown rule: a check that could not look is reported as unknown, never taken for healthy."""

from __future__ import annotations

from collector.rules import Evaluation, History
from shared.wire import Unknown

RULE = "check_failed"


def evaluate(signal: Unknown, history: History) -> list[Evaluation]:
    """One `unknown` alert per check that could not collect, naming the error."""
    return [
        Evaluation(
            RULE, signal.check, "unknown",
            f"{signal.check} could not run on {history.hostname}: {signal.error}",
            {"check": signal.check, "error": signal.error},
        )
    ]
