"""The unknown rule: a check that could not look is reported as unknown, never taken for healthy."""

from __future__ import annotations

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec
from shared.wire import Unknown

# The signal's one rule; the subject names the check, so a filter `unknown` covers every check failure.
RULE = "unknown"


def evaluate(signal: Unknown, history: History) -> list[Evaluation]:
    """One `unknown` alert per check that could not collect, naming the error."""
    return [
        Evaluation(
            RULE, signal.check, "unknown",
            f"{signal.check} could not run on {history.hostname}: {signal.error}",
            {"check": signal.check, "error": signal.error},
        )
    ]


def client_sentence(c: Caught) -> str:
    """What a business owner reads for a check that could not look (no jargon: the check's name stays out)."""
    fixed = "; it works again" if c.outcome != "open" else ""
    return f"One of the monitoring checks on {c.device} stopped working{fixed}."


# One good collection proves the check works again.
SPEC = RuleSpec(evaluate, alerts=(
    AlertRule(RULE, resolve_at_once=True, action="read the error; look at the agent's log on the device",
              sentence=client_sentence),
))
