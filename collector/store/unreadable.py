"""Stored rows the collector cannot use (e.g. written by an older, buggy version): skipped, logged once, counted.

A reader that meets one goes on without it, so one bad row never fails a page for everyone or blocks the
ingest of other reports; the count per device is shown to the technician on the device's page.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from shared.base import Signal
from shared.wire import SIGNAL_ADAPTER

if TYPE_CHECKING:
    from collector.store import ObservationRow

log = logging.getLogger(__name__)

# Rows remembered (so each is logged once and counted); beyond this, further rows are still skipped and logged.
MAX_REMEMBERED = 10_000
# What decoding a row can raise: bad text (ValueError covers JSON and ISO dates), wrong shapes, the schema.
DECODE_ERRORS = (ValueError, TypeError, KeyError, OverflowError, ValidationError)


class Unreadable:
    """The rows this collector process met and could not use, by what they are, with their device."""

    def __init__(self) -> None:
        self._rows: dict[str, str | None] = {}

    def note(self, what: str, agent_id: str | None, error: BaseException) -> None:
        """Record a row that could not be used (`what` names it, e.g. "observation 17"); logged the first time."""
        if what in self._rows:
            return
        if len(self._rows) < MAX_REMEMBERED:
            self._rows[what] = agent_id
        log.warning("skipped unreadable %s of device %s: %s", what, agent_id, str(error).splitlines()[0])

    def readable(self, rows: list[ObservationRow]) -> list[ObservationRow]:
        """The rows whose signal the schema accepts; the others are noted and left out."""
        kept = []
        for row in rows:
            try:
                parse_signal(row.payload)
            except DECODE_ERRORS as exc:
                self.note(row.what, row.agent_id, exc)
            else:
                kept.append(row)
        return kept

    def count(self, agent_id: str | None = None) -> int:
        """How many unreadable rows were met, of one device or in all."""
        if agent_id is None:
            return len(self._rows)
        return sum(1 for owner in self._rows.values() if owner == agent_id)


def observation_name(row_id: int) -> str:
    """An observations row as Unreadable names it."""
    return f"observation {row_id}"


def _refuse_constant(name: str) -> float:
    """NaN and infinity are not JSON, and no signal the schema accepts holds them."""
    raise ValueError(f"{name} in stored JSON")


def signal_payload(text: Any) -> dict[str, Any]:
    """A stored signal's JSON text as a mapping, refusing NaN, infinity and anything but an object."""
    payload = json.loads(text, parse_constant=_refuse_constant)
    if not isinstance(payload, dict):
        raise ValueError(f"stored signal is a JSON {type(payload).__name__}, not an object")
    return payload


def parse_signal(payload: dict[str, Any]) -> Signal:
    """A stored signal's payload as its model (raises one of DECODE_ERRORS when the schema refuses it)."""
    return SIGNAL_ADAPTER.validate_python(payload)
