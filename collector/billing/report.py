"""The value report: what was caught, what was done, how fast, and what it would have cost at break/fix rates.

`build_value_report` is pure (the records come from `ledger.load_value_report`); `render_html` fills the
Jinja2 template a business owner reads, and `render_pdf` prints the same page with WeasyPrint.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from collector.billing.model import Incident, Part, TimeEntry
from collector.billing.pricing import breakfix_equivalent, cents, visit_entry_ids
from collector.billing.saved import done, saved_minutes, without
from collector.billing.sentences import clean, client_sentence
from collector.rules.security_center import BLOCKED_EVENT
from collector.store import AlertRow, FeedEvent
from collector.store.billing_rows import IncidentRow, NoteRow, TimeEntryRow
from collector.store.report_rows import TimeSavedRow

if TYPE_CHECKING:
    from collector.billing.ledger import Ledger

AlertHistory = list[tuple[datetime, str, str, dict[str, Any]]]
# Alert rules whose resolution means work was completed on the device.
REBOOT_RULES = frozenset({"pending_reboot"})
UPDATE_RULES = frozenset({"updates.security"})
DISK_REPLACED = "device.disk_replaced"
# What monitoring watches for, by the category of an incident a client reported: the break/fix report's case
# for a contract names it beside the work it would have caught early.
WATCHED = {
    "hardware": "failing disks and drives running out of space",
    "backup": "backups that failed or stopped running",
    "network": "devices and printers using one network address",
    "software": "updates left waiting for a restart and security updates not installed",
    "security": "an antivirus switched off, out of date or finding malware",
}
MALWARE_BLOCKED = f"device.{BLOCKED_EVENT}"


@dataclass(frozen=True)
class AlertTiming:
    """An alert opened in the period, and how long it took to acknowledge and to resolve (None: not yet)."""

    alert: AlertRow
    acknowledged_after: timedelta | None
    resolved_after: timedelta | None


@dataclass(frozen=True)
class WorkDone:
    """One incident worked in the period: the alert that caught it, the time spent and its break/fix value."""

    incident: IncidentRow
    caught_by: AlertRow | None
    caught_at: datetime
    acknowledged_after: timedelta | None
    entries: list[TimeEntryRow]
    notes: list[NoteRow]
    parts: list[Part]
    breakfix: Decimal | None
    # The technician's estimate of the work without the preparation, and that longer job at break/fix rates.
    saved: TimeSavedRow | None = None
    breakfix_without: Decimal | None = None

    @property
    def minutes(self) -> int:
        """Minutes worked on it in the period."""
        return sum(e.minutes or 0 for e in self.entries)

    @property
    def minutes_saved(self) -> int:
        """Minutes the preparation saved on it (0 without an estimate, or when it was worked in another period: the
        saving counts where the work was done, once)."""
        return saved_minutes(self.saved, self.minutes) if self.saved and self.minutes else 0

    @property
    def saved_sentence(self) -> str:
        """'Restored from backup in 1 h 10 min; without the image backups this would have taken about 5 h.'"""
        if self.saved is None:
            return ""
        return (f"{done(self.saved)} in {hours(self.minutes)}; without {without(self.saved)} this would have taken "
                f"about {hours(self.saved.minutes_without)}.")

    @property
    def on_site(self) -> bool:
        """Whether anyone went on site for it."""
        return any(e.on_site for e in self.entries)


@dataclass(frozen=True)
class ValueReport:
    """A client's value report for the local days `first` to `last`."""

    client: str
    first: date
    last: date
    currency: str
    generated_at: datetime
    work: list[WorkDone]
    alerts: list[AlertTiming]
    backups_verified: int
    reboots_completed: int
    updates_completed: int
    disks_replaced: list[FeedEvent]
    breakfix_cost: Decimal | None
    contract_fees: Decimal
    billed_time: Decimal
    parts_price: Decimal
    months: list[date]
    # Who prepared it, from the billing settings: the report carries the business's name and logo.
    business_name: str = ""
    logo: str = ""
    # One-off fees apart from the monthly contract: onboarding (a contract's first month) and project work.
    onboarding_fees: Decimal = Decimal("0.00")
    one_off_fees: Decimal = Decimal("0.00")
    # (encrypted, all) of the client's laptops by their last encryption report; shown when it has laptops.
    laptops_encrypted: tuple[int, int] = (0, 0)
    # Threats the antivirus blocked or quarantined, as the security_center rule told them in the feed.
    malware_blocked: list[FeedEvent] = field(default_factory=list)

    @property
    def has_contract(self) -> bool:
        """Whether the client paid for a contract in the period (else the report makes the case for one)."""
        return bool(self.contract_fees or self.onboarding_fees)

    def sentence(self, alert: AlertRow) -> str:
        """What the alert caught, as its rule tells a business owner (a disk swapped since counts as replaced)."""
        replaced = any(
            e.data.get("agent_id") == alert.agent_id and alert.subject == f"disk:{e.data.get('old_serial')}"
            for e in self.disks_replaced
        )
        return client_sentence(alert, "replaced" if replaced else None)

    @property
    def caught(self) -> list[WorkDone]:
        """Work that monitoring caught (an alert opened it), as opposed to requests the client made."""
        return [w for w in self.work if w.caught_by is not None]

    @property
    def monitoring_would_catch(self) -> list[tuple[WorkDone, str]]:
        """Problems the client reported that monitoring watches for, with what it watches (break/fix clients)."""
        return [(w, WATCHED[w.incident.category]) for w in self.work
                if w.caught_by is None and w.incident.category in WATCHED]

    @property
    def saved_work(self) -> list[WorkDone]:
        """Work on which preparation saved time."""
        return [w for w in self.work if w.minutes_saved]

    @property
    def minutes_saved(self) -> int:
        """Minutes preparation saved in the period, all incidents together."""
        return sum(w.minutes_saved for w in self.work)

    @property
    def money_saved(self) -> Decimal | None:
        """What the longer jobs would have cost more at break/fix rates (None when one cannot be priced)."""
        pairs = [(w.breakfix_without, w.breakfix) for w in self.saved_work]
        known = [(longer, cost) for longer, cost in pairs if longer is not None and cost is not None]
        if len(known) < len(pairs):
            return None
        return sum((longer - cost for longer, cost in known), Decimal("0.00"))

    @property
    def critical_alerts(self) -> int:
        """How many of the period's alerts were critical when last seen."""
        return sum(a.alert.severity == "critical" for a in self.alerts)

    @property
    def minutes_worked(self) -> int:
        """All minutes worked in the period."""
        return sum(w.minutes for w in self.work)

    @property
    def paid_for_service(self) -> Decimal:
        """What the client paid for monitoring and labour: contract and onboarding fees plus time billed on top."""
        return self.contract_fees + self.onboarding_fees + self.billed_time

    @property
    def median_acknowledge(self) -> timedelta | None:
        """The median time from an alert to a technician acknowledging it."""
        return _median(a.acknowledged_after for a in self.alerts)

    @property
    def median_resolve(self) -> timedelta | None:
        """The median time from an alert to its resolution."""
        return _median(a.resolved_after for a in self.alerts)


def _median(spans: Iterable[timedelta | None]) -> timedelta | None:
    """The median of the known spans, or None when none is known."""
    known = [s.total_seconds() for s in spans if s is not None]
    return timedelta(seconds=statistics.median(known)) if known else None


def first_event_after(history: AlertHistory, what: str, opened_at: datetime) -> timedelta | None:
    """How long after `opened_at` the alert's history first records `what`."""
    return next((at - opened_at for at, kind, _, _ in history if kind == what and at >= opened_at), None)


def alert_timings(
    events: Sequence[tuple[AlertRow, datetime, str]], client: str, since: datetime, until: datetime
) -> list[AlertTiming]:
    """Alerts of the client first opened from `since` to before `until`, timed from their later events."""
    histories: dict[int, AlertHistory] = {}
    alerts: dict[int, AlertRow] = {}
    for alert, at, what in events:
        if alert.owner.client == client:
            alerts[alert.alert_id] = alert
            histories.setdefault(alert.alert_id, []).append((at, what, "", {}))
    timings = []
    for alert_id, history in histories.items():
        alert = alerts[alert_id]
        if since <= alert.opened_at < until:
            timings.append(
                AlertTiming(
                    alert,
                    first_event_after(history, "acknowledged", alert.opened_at),
                    first_event_after(history, "resolved", alert.opened_at),
                )
            )
    return sorted(timings, key=lambda t: (t.alert.opened_at, t.alert.alert_id))


def completed(
    events: Sequence[tuple[AlertRow, datetime, str]],
    client: str,
    rules: frozenset[str],
    since: datetime,
    until: datetime,
) -> int:
    """How many of the client's alerts of these rules resolved from `since` to before `until`."""
    return sum(
        1
        for alert, at, what in events
        if what == "resolved" and alert.rule in rules and alert.owner.client == client and since <= at < until
    )


def build_value_report(
    ledger: Ledger,
    first: date,
    last: date,
    generated_at: datetime,
    alert_events: Sequence[tuple[AlertRow, datetime, str]],
    caught_by: dict[int, tuple[AlertRow, AlertHistory]],
    notes: dict[int, list[NoteRow]],
    backups_verified: int,
    disks_replaced: list[FeedEvent],
    laptops: tuple[int, int] = (0, 0),
    malware_blocked: Sequence[FeedEvent] = (),
    time_saved: Mapping[int, TimeSavedRow] | None = None,
) -> ValueReport:
    """The report for the local days `first` to `last` from a client's ledger and what the alerts recorded.

    `caught_by` maps an incident id to the alert that caught it with that alert's history, `time_saved` an
    incident id to the technician's estimate of the work without the preparation. Work is the
    finished time on those days; an incident appears when it was opened or worked on in the period.
    Contract fees are those of every month the period touches; billed time is what the invoices charge
    for the period's entries.
    """
    since, until = ledger.settings.start_of(first), ledger.settings.start_of(last + timedelta(days=1))
    in_period = {e.id for e in ledger.entry_models(first, last)}
    by_id = {i.id: i for i in ledger.incident_models()}
    work = []
    for incident in ledger.incidents:
        entries = [
            e for e in ledger.entries if e.entry_id in in_period and e.incident_id == incident.incident_id
        ]
        if not entries and not since <= incident.opened_at < until:
            continue
        alert, history = caught_by.get(incident.incident_id, (None, []))
        caught_at = alert.opened_at if alert is not None else incident.opened_at
        models = [e.model(ledger.settings.zone) for e in entries]
        saved = (time_saved or {}).get(incident.incident_id)
        incident_model = by_id[incident.incident_id]
        # The longer job as one visit like the first one, priced by the same rules.
        longer = [replace(models[0], minutes=saved.minutes_without)] if saved and models else []
        work.append(
            WorkDone(
                incident=incident,
                caught_by=alert,
                caught_at=caught_at,
                acknowledged_after=first_event_after(history, "acknowledged", caught_at) if alert else None,
                entries=entries,
                notes=notes.get(incident.incident_id, []),
                parts=[
                    p
                    for p in ledger.parts
                    if p.incident_id == incident.incident_id and first <= p.day <= last
                ],
                breakfix=_breakfix(ledger, [incident_model], models),
                saved=saved,
                breakfix_without=_breakfix(ledger, [incident_model], longer) if longer else None,
            )
        )
    months = _months(first, last)
    invoices = [ledger.invoice(month) for month in months]
    period_ids = {str(entry_id) for entry_id in in_period}
    return ValueReport(
        client=ledger.client,
        first=first,
        last=last,
        currency=ledger.settings.currency,
        generated_at=generated_at,
        work=sorted(work, key=lambda w: (w.caught_at, w.incident.incident_id)),
        alerts=alert_timings(alert_events, ledger.client, since, until),
        backups_verified=backups_verified,
        reboots_completed=completed(alert_events, ledger.client, REBOOT_RULES, since, until),
        updates_completed=completed(alert_events, ledger.client, UPDATE_RULES, since, until),
        disks_replaced=disks_replaced,
        laptops_encrypted=laptops,
        malware_blocked=list(malware_blocked),
        breakfix_cost=_breakfix(ledger, list(by_id.values()), ledger.entry_models(first, last)),
        contract_fees=sum((i.totals().contract for i in invoices), Decimal("0.00")),
        onboarding_fees=sum((i.totals().onboarding for i in invoices), Decimal("0.00")),
        one_off_fees=sum((i.totals().fee for i in invoices), Decimal("0.00")),
        billed_time=sum(
            (line.amount for i in invoices for line in i.lines if period_ids.intersection(visit_entry_ids(line))),
            Decimal("0.00"),
        ),
        parts_price=sum((cents(p.price * p.quantity) for w in work for p in w.parts), Decimal("0.00")),
        months=months,
        business_name=ledger.settings.business_name,
        logo=ledger.settings.logo,
    )


def _breakfix(ledger: Ledger, incidents: list[Incident], entries: list[TimeEntry]) -> Decimal | None:
    """`breakfix_equivalent` of the entries; None when no rate card is in force for one of them."""
    try:
        return breakfix_equivalent(incidents, entries, ledger.rates, history=ledger.entry_models())
    except ValueError:
        return None


def _months(first: date, last: date) -> list[date]:
    """The first days of every month the period touches."""
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def duration(span: timedelta | None) -> str:
    """A span as a person says it: 45 min, 2 h 10 min, 3 days 4 h."""
    if span is None:
        return "-"
    minutes = round(span.total_seconds() / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} days {hours} h" if hours else f"{days} days"


def hours(minutes: int) -> str:
    """Minutes as hours and minutes."""
    return duration(timedelta(minutes=minutes)) if minutes else "0 min"


_ENV = Environment(
    loader=PackageLoader("collector.billing", "templates"),
    autoescape=select_autoescape(["html", "j2"], default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.filters["duration"] = duration
_ENV.filters["hours"] = hours
# Names the agent reported (a hostname): one short line of plain text.
_ENV.filters["plain"] = clean


def render_html(report: ValueReport) -> str:
    """The report as a standalone HTML page (styles inline, so the PDF and a saved copy look the same)."""

    def money(amount: Decimal | None) -> str:
        """An amount with its currency, or a dash."""
        return "-" if amount is None else f"{report.currency} {amount:,.2f}"

    zone = report.generated_at.tzinfo

    def local(moment: datetime, fmt: str = "%d %b %Y %H:%M") -> str:
        """A moment in the report's time zone."""
        return moment.astimezone(zone).strftime(fmt)

    return _ENV.get_template("value_report.html.j2").render(r=report, money=money, local=local)


def render_invoice(body: dict[str, Any], voided: str | None = None) -> str:
    """An issued invoice as a standalone HTML page, from its stored body alone (`voided`: why it was voided)."""
    return _ENV.get_template("invoice.html.j2").render(i=body, voided=voided)


def render_pdf(html: str) -> bytes:
    """The HTML page printed to PDF by WeasyPrint (imported here: it loads Pango, which the API may lack)."""
    from weasyprint import HTML

    return HTML(string=html).write_pdf()
