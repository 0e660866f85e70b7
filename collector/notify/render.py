"""Notification messages: a short title and one line per distinct alert (where first, then what, what to do
and a link to it on the dashboard), as plain text for phone push and as HTML beside it for mail."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape

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
    # The alert on the dashboard (empty when the collector's public_url is not set), and what to do about it.
    link: str = ""
    action: str = ""


@dataclass(frozen=True)
class Message:
    """One message: its title, its plain-text body, and the same body as HTML (for mail)."""

    title: str
    text: str
    html: str


def render_group(items: list[NotifyItem]) -> Message:
    """One message telling a burst of alert events: one line per alert, its latest event (one alert: a
    specific title and a body with everything on its own line)."""
    if not items:
        raise ValueError("nothing to render: a notification needs at least one item")
    latest = list({item.alert_id: item for item in sorted(items, key=lambda i: i.at)}.values())
    if len(latest) == 1:
        return _single(latest[0])
    counts = Counter(_kind(item) for item in latest)
    kinds = sorted(counts, key=_rank_of_kind)
    title = f"[fieldpost] {len(latest)} alerts: " + ", ".join(f"{counts[kind]} {kind}" for kind in kinds)
    shown, hidden = _ordered(latest)
    text = [_line(item) for item in shown]
    html = [f"<li>{_line_html(item)}</li>" for item in shown]
    if hidden:
        text.append(_more(hidden))
        html.append(f"<li>{escape(_more(hidden))}</li>")
    return Message(_shorten(title), "\n".join(text), f"<ul>\n{chr(10).join(html)}\n</ul>")


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


def _single(item: NotifyItem) -> Message:
    """A message about one alert event: everything on its own line."""
    fields = [("Client", item.client), ("Site", item.site)]
    if item.hostname:
        fields.append(("Device", item.hostname))
    fields += [("Severity", item.severity), (item.event.capitalize(), _when(item.at))]
    if item.action and item.event != "resolved":
        fields.append(("What to do", item.action))
    if item.link:
        fields.append(("Open", item.link))
    fields.append(("Alert", f"#{item.alert_id}"))
    if item.event != "resolved":
        fields.append(("Acknowledge", f"fieldpost alerts ack {item.alert_id}"))
    text = [item.summary, *(f"{name}: {value}" for name, value in fields)]
    cells = ((name, _link_html(value) if name == "Open" else escape(value)) for name, value in fields)
    rows = "\n".join(f'<tr><th align="left">{escape(name)}</th><td>{cell}</td></tr>' for name, cell in cells)
    html = f"<p><strong>{escape(item.summary)}</strong></p>\n<table>\n{rows}\n</table>"
    return Message(_shorten(f"{_label(item)} {_where(item)}: {item.summary}"), "\n".join(text), html)


def _lines(items: list[NotifyItem]) -> list[str]:
    """One line per item, the most urgent first, cut at MAX_LINES."""
    shown, hidden = _ordered(items)
    return [_line(item) for item in shown] + ([_more(hidden)] if hidden else [])


def _ordered(items: list[NotifyItem]) -> tuple[list[NotifyItem], int]:
    """The items most urgent first, at most MAX_LINES lines' worth, and how many were left out."""
    ordered = sorted(items, key=lambda item: (_rank_of_kind(_kind(item)), item.at, item.alert_id))
    if len(ordered) <= MAX_LINES:
        return ordered, 0
    return ordered[: MAX_LINES - 1], len(ordered) - (MAX_LINES - 1)


def _more(hidden: int) -> str:
    """The last line of a cut list."""
    return f"... and {hidden} more: see `fieldpost alerts`"


def _line(item: NotifyItem) -> str:
    """One alert on one line: where, what, what to do, then its number and time (or its link)."""
    todo = f"; {item.action}" if item.action and item.event != "resolved" else ""
    ref = f"#{item.alert_id}, {_when(item.at)}"
    return f"{_place(item)}: {_label(item)} {item.summary}{todo} ({ref})" + (f" {item.link}" if item.link else "")


def _line_html(item: NotifyItem) -> str:
    """One alert as an HTML list item's content, its number a link where there is one."""
    todo = f"; <em>{escape(item.action)}</em>" if item.action and item.event != "resolved" else ""
    ref = f"#{item.alert_id}"
    ref = f'<a href="{escape(item.link)}">{ref}</a>' if item.link else ref
    return (f"<strong>{escape(_place(item))}</strong>: {escape(_label(item))} {escape(item.summary)}{todo} "
            f"({ref}, {escape(_when(item.at))})")


def _link_html(url: str) -> str:
    """A link to itself."""
    return f'<a href="{escape(url)}">{escape(url)}</a>'


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
    """Client and device (the site, for an alert about a whole site), for a title."""
    return f"{item.client} / {item.hostname or item.site}"


def _place(item: NotifyItem) -> str:
    """Client, site and device (none for an alert about a whole site), first on every line."""
    return " / ".join(part for part in (item.client, item.site, item.hostname) if part)


def _when(at: datetime) -> str:
    """A timestamp as the technician reads it in a message."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _shorten(title: str) -> str:
    """`title` cut to MAX_TITLE characters."""
    return title if len(title) <= MAX_TITLE else title[: MAX_TITLE - 1] + "…"
