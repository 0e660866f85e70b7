"""Time saved by preparation: what a technician's preparation (image backups, monitoring, a spare part on hand)
saved on an incident, in the words the value report and the incident page use."""

from __future__ import annotations

from collector.billing.sentences import clean
from collector.store.report_rows import Preparation, TimeSavedRow

# The choices, as the incident page's form offers them.
PREPARATIONS: dict[Preparation, str] = {
    "backup_image": "Backup image",
    "monitoring": "Monitoring caught it early",
    "documentation": "Documentation",
    "spare_part": "Spare part on hand",
    "other": "Other (say what)",
}
# What the work would have been without: "without the image backups this would have taken about 5 h".
_WITHOUT: dict[Preparation, str] = {
    "backup_image": "the image backups",
    "monitoring": "monitoring catching it early",
    "documentation": "the documentation we keep of your systems",
    "spare_part": "a spare part on hand",
}
# What the work was, by what made it quick.
_DONE: dict[Preparation, str] = {"backup_image": "Restored from backup", "spare_part": "Replaced from stock"}


def saved_minutes(saved: TimeSavedRow, worked: int) -> int:
    """Minutes the preparation saved: the estimate without it less the time the work took (never below 0)."""
    return max(0, saved.minutes_without - worked)


def without(saved: TimeSavedRow) -> str:
    """What the work would have lacked, in words ('other' is the technician's own, cleaned)."""
    return _WITHOUT.get(saved.preparation) or clean(saved.detail) or "our preparation"


def done(saved: TimeSavedRow) -> str:
    """What the work was, by what made it quick: 'Restored from backup', 'Replaced from stock', 'Fixed'."""
    return _DONE.get(saved.preparation, "Fixed")
