"""Flapping: an alert that keeps opening and resolving becomes one "flapping" alert with notifications held.

Changes are the alert's state changes (opened, resolved, reopened events), newest or oldest first.

Defaults, and why:

* `threshold=6` changes within `window=1 h`: three open/resolve cycles in an hour. A real problem that is
  fixed and comes back once makes 3 changes (opened, resolved, reopened); hysteresis on auto-resolve
  already absorbs a single good reading. A disk alert toggling ok/warning every 5 minutes makes 12 changes
  an hour and is caught after its first half hour, before it has sent more than a few messages.
* `quiet_for=1 h` without any change ends flapping. Leaving needs a full quiet hour while entering needs
  6 changes in an hour: that gap is the hysteresis that stops flapping detection itself from flapping, and
  after a quiet hour the window holds no changes, so `is_flapping` agrees that it is over.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

THRESHOLD = 6
WINDOW = timedelta(hours=1)
QUIET_FOR = timedelta(hours=1)


def _changes_within(changes: Sequence[datetime], now: datetime, span: timedelta) -> int:
    """How many changes happened in (now - span, now]; later ones (clock skew) are not counted."""
    return sum(1 for change in changes if now - span < change <= now)


def is_flapping(
    changes: Sequence[datetime], now: datetime, threshold: int = THRESHOLD, window: timedelta = WINDOW
) -> bool:
    """Whether the alert changed state at least `threshold` times in the `window` up to `now`."""
    if threshold < 1 or window <= timedelta(0):
        raise ValueError("threshold and window must be positive")
    return _changes_within(changes, now, window) >= threshold


def stopped_flapping(changes: Sequence[datetime], now: datetime, quiet_for: timedelta = QUIET_FOR) -> bool:
    """Whether the alert has not changed state for `quiet_for` up to `now`."""
    return _changes_within(changes, now, quiet_for) == 0
