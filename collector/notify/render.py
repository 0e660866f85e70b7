"""Plain-text notification messages (a short title, one line per alert) for mail and phone push alike."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime

# Above this many lines a message is cut: a push service keeps about 1,000 characters (Pushover),
# and the full list is one `fieldpost alerts` away.
MAX_LINES = 25

# A title fits a phone's lock screen and a mail client's subject column.
MAX_TITLE = 100

_SEVERITY_ORDER = ("critical", "warning", "unknown")


@dataclass(frozen=True)
class NotifyItem:
    """One alert event worth telling the technician about.

    `event` is "opened", "changed", "resolved", "reminder" (still open, not acknowledged) or
    "released" (held by a silence, maintenance window or quiet hours, sent now). `hostname` is
    empty for an alert about a whole site.
    """

    alert_id: int
    event: str
    severity: str
    client: str
    site: str
    hostname: str
    summary: str
    at: datetime


def render_group(items: list[NotifyItem]) -> tuple[str, str]:
    """The title and body of one message telling a burst of alert events (one of them: a specific title)."""
    if not items:
        raise ValueError("nothing to render: a notification needs at least one item")
    if len(items) == 1:
        return _single(items[0])
    counts = Counter(_kind(item) for item in items)
    kinds = sorted(counts, key=_rank_of_kind)
    title = f"[fieldpost] {len(items)} alerts: " + ", ".join(f"{counts[kind]} {kind}" for kind in kinds)
    return _shorten(title), "\n".join(_lines(items))


def render_digest(
    opened: list[NotifyItem], still_open: list[NotifyItem], resolved: list[NotifyItem], day: date
) -> tuple[str, str]:
    """The daily digest: what opened on `day`, what is still open, what resolved."""
    title = (
        f"[fieldpost] Digest {day.isoformat()}: {len(opened)} opened, "
        f"{len(still_open)} still open, {len(resolved)} resolved"
    )
    sections = []
    for heading, items in (("Opened", opened), ("Still open", still_open), ("Resolved", resolved)):
        lines = _lines(items) if items else ["none"]
        sections.append("\n".join([f"{heading} ({len(items)}):", *lines]))
    return _shorten(title), "\n\n".join(sections)


def render_test(channel_name: str) -> tuple[str, str]:
    """The message `channel test` sends."""
    return (
        _shorten(f"[fieldpost] Test message for channel {channel_name}"),
        f"This is a test message from fieldpost.\n"
        f"If you can read it, alert notifications through channel {channel_name!r} reach you.",
    )


def _single(item: NotifyItem) -> tuple[str, str]:
    """A message about one alert event: everything on its own line."""
    body = [item.summary, f"Client: {item.client}", f"Site: {item.site}"]
    if item.hostname:
        body.append(f"Device: {item.hostname}")
    body += [
        f"Severity: {item.severity}",
        f"{item.event.capitalize()}: {_when(item.at)}",
        f"Alert #{item.alert_id}",
    ]
    if item.event != "resolved":
        body.append(f"Acknowledge: fieldpost alerts ack {item.alert_id}")
    return _shorten(f"{_label(item)} {_where(item)}: {item.summary}"), "\n".join(body)


def _lines(items: list[NotifyItem]) -> list[str]:
    """One line per item, the most urgent first, cut at MAX_LINES."""
    ordered = sorted(items, key=lambda item: (_rank_of_kind(_kind(item)), item.at, item.alert_id))
    lines = [
        f"{_label(item)} {_where(item)}: {item.summary} (#{item.alert_id}, {_when(item.at)})"
        for item in ordered
    ]
    if len(lines) > MAX_LINES:
        hidden = len(lines) - (MAX_LINES - 1)
        lines = [*lines[: MAX_LINES - 1], f"... and {hidden} more: see `fieldpost alerts`"]
    return lines


def _kind(item: NotifyItem) -> str:
    """What the item counts as in a summary: its severity, or "resolved"."""
    return "resolved" if item.event == "resolved" else item.severity


def _rank_of_kind(kind: str) -> int:
    """Critical first, then warning and unknown, then any other severity, resolved last."""
    if kind == "resolved":
        return len(_SEVERITY_ORDER) + 1
    return _SEVERITY_ORDER.index(kind) if kind in _SEVERITY_ORDER else len(_SEVERITY_ORDER)


def _label(item: NotifyItem) -> str:
    """The leading word(s) of an item: what happened, at which severity."""
    severity = item.severity.upper()
    return {
        "resolved": "RESOLVED",
        "changed": f"Now {severity}",
        "reminder": f"Still {severity}",
        "flapping": f"FLAPPING {severity}",
        "reopened": f"Again {severity}",
    }.get(item.event, severity)


def _where(item: NotifyItem) -> str:
    """Client and device (the site, for an alert about a whole site)."""
    return f"{item.client} / {item.hostname or item.site}"


def _when(at: datetime) -> str:
    """A timestamp as the technician reads it in a message."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _shorten(title: str) -> str:
    """`title` cut to MAX_TITLE characters."""
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"
