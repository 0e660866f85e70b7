"""Client-facing sentences for what an alert caught: the rule's own sentence, from cleaned details, or a safe one.

An alert's summary is the technician's words and largely the agent's text; what a client reads (the value
report, an incident's first title and so the invoice) is built here instead. Every text from the alert is
cleaned before a rule sees it, and whatever the rule returns is cleaned again, so that no markup, control
character, spreadsheet formula or page-long string reaches the client. HTML escaping is the templates' job.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from collector.rules import Caught, Outcome, alert_rule
from collector.store import AlertRow

# Longest name or value taken from an alert, and longest sentence shown.
VALUE_LIMIT = 60
SENTENCE_LIMIT = 240
# At most this many items of a list detail are kept (a list of 10 000 package names stays short).
LIST_LIMIT = 20
# Signs that make a spreadsheet read a cell as a formula.
FORMULA_SIGNS = "=+-@"


def clean(text: object, limit: int = VALUE_LIMIT) -> str:
    """One line of plain text: control and format characters out, spaces collapsed, no leading formula sign,
    cut at a word to `limit` characters."""
    kept = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in str(text))
    line = " ".join(kept.split()).lstrip(FORMULA_SIGNS + " ")
    if len(line) <= limit:
        return line
    cut = line.rfind(" ", 0, limit - 1)
    return line[: cut if cut > limit // 2 else limit - 1].rstrip(" ,;:") + "…"


def _cleaned(value: Any) -> Any:
    """A detail with every text in it cleaned, lists shortened, nesting kept."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(key): _cleaned(item) for key, item in list(value.items())[:LIST_LIMIT]}
    if isinstance(value, list | tuple):
        return [_cleaned(item) for item in value[:LIST_LIMIT]]
    if value is None or isinstance(value, bool | int | float):
        return value
    return clean(value)


def caught(alert: AlertRow, outcome: Outcome) -> Caught:
    """The alert as its rule's sentence sees it."""
    return Caught(
        hostname=clean(alert.owner.hostname),
        site=clean(alert.owner.site),
        subject=clean(alert.subject),
        critical=alert.severity == "critical",
        details=_cleaned(alert.details if isinstance(alert.details, dict) else {}),
        outcome=outcome,
    )


def generic(c: Caught) -> str:
    """The sentence for a rule that has none of its own (or whose sentence failed on odd details)."""
    where = f" on {c.hostname}" if c.hostname else f" at {c.site}" if c.site else ""
    what = "A serious problem" if c.critical else "A problem"
    done = {"open": "was found by our monitoring", "resolved": "was found by our monitoring and fixed",
            "replaced": "was found by our monitoring and the faulty part replaced"}[c.outcome]
    return f"{what}{where} {done}."


def client_sentence(alert: AlertRow, outcome: Outcome | None = None) -> str:
    """The plain sentence a business owner reads for what the alert caught.

    `outcome` defaults to the alert's state (resolved or open).
    """
    c = caught(alert, outcome or ("resolved" if alert.state == "resolved" else "open"))
    write = alert_rule(alert.rule).sentence or generic
    try:
        sentence = clean(write(c), SENTENCE_LIMIT)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        # Details an older agent or a damaged report shaped differently: the client still gets a sentence.
        sentence = ""
    return sentence or generic(c)
