"""The value report e-mailed on a schedule: a client's opt-in (monthly or quarterly, on a day of the next month,
to addresses kept with the schedule, through a mail channel), and the sweep that sends what is due.

Each client and period is one row in `report_sends`, claimed by an insert or a conditional update, so the
report goes out once however many collector processes sweep and however often they restart; a failed send is
kept with its error, shown, and tried again later.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import quote, urlsplit

from pydantic import Field, field_validator

from collector.billing.ledger import billing_settings, load_value_report
from collector.billing.report import render_html, render_pdf
from collector.notify.deliver import Attachment, deliver
from collector.services.base import Service
from collector.services.billing import ledger_of
from collector.services.errors import Invalid, NotFound
from collector.services.inputs import Input, valid_address
from collector.store import ChannelRow, ClientRow, Store, Tx
from collector.store.report_rows import Frequency, ReportScheduleRow, ReportSendRow
from shared.clock import Clock

log = logging.getLogger(__name__)

MAIL_SCHEMES = ("mailto", "mailtos")
# How long a claimed send may take (the report laid out, the mail handed over) before another process may take
# it over: a sender that died mid-way does not keep the period unsent.
LEASE = timedelta(minutes=15)
# A failed send is tried again after 5 min, then 10, 20, ... but at least every 6 hours.
FIRST_RETRY = timedelta(minutes=5)
LONGEST_RETRY = timedelta(hours=6)
SEND_TIMEOUT = 60.0
SWEEP_SECONDS = 300.0
MONTHS = {"monthly": 1, "quarterly": 3}
class ScheduleInput(Input):
    """A client's report schedule: how often, on which day of the next month, to whom, through which channel."""

    frequency: Frequency = Field(description="monthly (the previous month) or quarterly (the previous quarter)")
    day: int = Field(1, ge=1, le=28, description="the day of the month the report is sent on (1 to 28)")
    recipients: list[str] = Field(
        [], max_length=10,
        description="e-mail addresses it is sent to (none: the client's billing e-mail or billing contact)",
    )
    channel_id: int | None = Field(None, description="the mailto:// channel it goes through (default: the only one)")

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        """Each a valid address, each once."""
        return list(dict.fromkeys(valid_address(text) for text in value))


@dataclass(frozen=True)
class ScheduleState:
    """A client's schedule (None: not opted in) and its recent sends, newest first."""

    schedule: ReportScheduleRow | None
    sends: list[ReportSendRow]
    # Why the schedule sends nothing (an archived or the demo client); None: it sends when due.
    held: str | None = None


def held_because(client: ClientRow | None) -> str | None:
    """Why no report is mailed to this client on schedule: archived, never; the demo client, never by schedule."""
    if client is None or client.billable:
        return None
    if client.archived_at is not None:
        return f"{client.name} is archived: no value report is mailed to it"
    return (f"{client.name} is the demo client: its value report is never mailed on schedule (mark it as a real "
            "client to have it mailed)")


def add_months(month: date, count: int) -> date:
    """The first day of the month `count` months after `month`'s (before, when negative)."""
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def due_period(frequency: Frequency, day: int, today: date) -> tuple[date, date, date]:
    """The latest period whose report is due by `today`: its first and last day, and the day it is due."""
    sending = today.replace(day=1) if today.day >= day else add_months(today.replace(day=1), -1)
    # A quarter's report is sent in the month after it: January, April, July or October.
    while frequency == "quarterly" and sending.month % 3 != 1:
        sending = add_months(sending, -1)
    return add_months(sending, -MONTHS[frequency]), sending - timedelta(days=1), sending.replace(day=day)


def mail_url(channel_url: str, recipients: list[str] | tuple[str, ...]) -> str:
    """The channel's apprise mail URL sending to `recipients` instead of whoever it names (path, to, cc, bcc)."""
    parts = urlsplit(channel_url.strip())
    kept = [pair for pair in parts.query.split("&") if pair and pair.partition("=")[0].lower() not in
            ("to", "cc", "bcc")]
    to = "to=" + ",".join(quote(address, safe="@") for address in recipients)
    return parts._replace(path="", query="&".join([*kept, to])).geturl()


def retry_after(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failed send."""
    return min(FIRST_RETRY * 2 ** (attempts - 1), LONGEST_RETRY)


def period_name(first: date, last: date) -> str:
    """'October 2026', or 'July to September 2026' for a quarter."""
    if (first.year, first.month) == (last.year, last.month):
        return f"{first:%B %Y}"
    return f"{first:%B} to {last:%B %Y}" if first.year == last.year else f"{first:%B %Y} to {last:%B %Y}"


def _is_mail(channel: ChannelRow) -> bool:
    """Whether the channel sends e-mail."""
    return channel.url.strip().partition("://")[0].lower() in MAIL_SCHEMES


async def _mail_channel(tx: Tx, channel_id: int | None) -> ChannelRow:
    """The mail channel a schedule names, or the only one there is; Invalid when there is no such channel."""
    channels = await tx.channels()
    if channel_id is None:
        mail = [c for c in channels if _is_mail(c)]
        if len(mail) != 1:
            have = ", ".join(f"{c.channel_id} ({c.name})" for c in mail)
            raise Invalid("channel_id", f"choose the mail channel to send through: {have}" if mail else
                          "add a mailto:// or mailtos:// channel first (Settings > Notification channels)")
        return mail[0]
    channel = next((c for c in channels if c.channel_id == channel_id), None)
    if channel is None:
        raise Invalid("channel_id", f"there is no channel {channel_id}")
    if not _is_mail(channel):
        raise Invalid("channel_id", f"channel {channel_id} ({channel.name}) does not send e-mail: the report "
                      "goes through a mailto:// or mailtos:// channel")
    return channel


class ReportMail(Service):
    """Scheduled e-mail of the value report."""

    async def state(self, client: str) -> ScheduleState:
        """The client's schedule and its recent sends."""
        async with self.store.read() as tx:
            ledger = await ledger_of(tx, client)
            schedules = await tx.report_schedules(ledger.client_id)
            return ScheduleState(schedules[0] if schedules else None, await tx.report_sends(ledger.client_id),
                                 held_because(ledger.record))

    async def set(self, client: str, wanted: ScheduleInput) -> ReportScheduleRow:
        """Opt the client in (or change its schedule)."""
        async with self.store.transaction() as tx:
            ledger = await ledger_of(tx, client)
            channel = await _mail_channel(tx, wanted.channel_id)
            recipients = wanted.recipients or ([ledger.billing_email] if ledger.billing_email else [])
            if not recipients:
                raise Invalid("recipients", f"give an address, or a billing e-mail or billing contact for {client}")
            schedule = await tx.set_report_schedule(ledger.client_id, wanted.frequency, wanted.day,
                                                    recipients, channel.channel_id, self.clock())
            await self.publish(tx, "report.scheduled", schedule_view(schedule))
        return schedule

    async def stop(self, client: str) -> ReportScheduleRow:
        """Opt the client out; NotFound when it has no schedule."""
        async with self.store.transaction() as tx:
            ledger = await ledger_of(tx, client)
            schedule = await tx.delete_report_schedule(ledger.client_id)
            if schedule is None:
                raise NotFound(f"{client} has no scheduled report")
            await self.publish(tx, "report.unscheduled", schedule_view(schedule))
        return schedule

    async def send_due(self) -> list[ReportSendRow]:
        """Send every report that is due and not yet sent (nor being sent elsewhere), to none of the archived or
        demo clients; the sends this call made."""
        now = self.clock()
        async with self.store.read() as tx:
            held = {c.client_id for c in await tx.clients(archived=True) if held_because(c)}
            schedules = [s for s in await tx.report_schedules() if s.client_id not in held]
            zone = (await billing_settings(tx)).zone
            # An earlier period that failed is tried again too, even once a newer one is due.
            failed = await tx.failed_report_sends(now)
        today = now.astimezone(zone).date()
        done = []
        for schedule in schedules:
            periods = {(f.first_day, f.last_day) for f in failed if f.client_id == schedule.client_id}
            first, last, due = due_period(schedule.frequency, schedule.day, today)
            if due >= schedule.created_at.astimezone(zone).date():
                # (Opted in after this period's day: its first report is the next period's.)
                periods.add((first, last))
            for first, last in sorted(periods):
                async with self.store.transaction() as tx:
                    claim = await tx.claim_report_send(schedule.client_id, first, last, list(schedule.recipients),
                                                       now, now - LEASE)
                if claim is not None:
                    done.append(await self._send(schedule, claim))
        return done

    async def _send(self, schedule: ReportScheduleRow, claim: ReportSendRow) -> ReportSendRow:
        """Lay out and mail the claimed report, then record how it went (in the feed too)."""
        try:
            error = await self._mail(schedule, claim)
        except Exception as exc:  # whatever went wrong is recorded and shown, and the send tried again
            log.exception("scheduled report for %s failed", schedule.client)
            error = f"{type(exc).__name__}: {exc}"
        now = self.clock()
        async with self.store.transaction() as tx:
            finished = await tx.finish_report_send(schedule.client_id, claim.first_day, now, error,
                                                   None if error is None else now + retry_after(claim.attempts))
            period = period_name(finished.first_day, finished.last_day)
            summary = (f"value report for {period} mailed to {', '.join(finished.recipients)}" if error is None else
                       f"value report for {period} not sent (try {finished.attempts}; next try "
                       f"{finished.next_try_at:%Y-%m-%d %H:%M} UTC): {error}")
            view = {"client": schedule.client, "summary": summary, **send_view(finished)}
            await self.publish(tx, "report.mailed" if error is None else "report.mail_failed", view)
        return finished

    async def _mail(self, schedule: ReportScheduleRow, claim: ReportSendRow) -> str | None:
        """Mail the report to the schedule's recipients; None when the channel took it, else why not."""
        async with self.store.read() as tx:
            channels = {c.channel_id: c for c in await tx.channels()}
            try:
                report = await load_value_report(tx, schedule.client, claim.first_day, claim.last_day, self.clock())
            except ValueError as exc:
                return f"cannot price the report: {exc}"
        channel = channels.get(schedule.channel_id or 0)
        if channel is None:
            return "the schedule's mail channel was deleted: choose another for the schedule"
        if report is None:
            return f"there is no client {schedule.client!r}"
        html = render_html(report)
        pdf = await asyncio.to_thread(render_pdf, html)
        period = period_name(claim.first_day, claim.last_day)
        sender = f" from {report.business_name}" if report.business_name else ""
        name = f"{schedule.client}-{claim.first_day}-{claim.last_day}.pdf".replace(" ", "-")
        delivery = await deliver(
            mail_url(channel.url, claim.recipients),
            f"IT service report for {schedule.client}, {period}",
            f"Your IT service report{sender} for {period} is attached as a PDF.",
            html=html,
            timeout=SEND_TIMEOUT,
            attachments=[Attachment(name, pdf, "application/pdf")],
        )
        return None if delivery.ok else delivery.error or "the mail was not accepted"


def schedule_view(schedule: ReportScheduleRow) -> dict[str, object]:
    """A schedule as the API and the feed show it."""
    return {
        "client": schedule.client,
        "summary": f"{schedule.frequency} value report on day {schedule.day} to {', '.join(schedule.recipients)}",
        "frequency": schedule.frequency,
        "day": schedule.day,
        "recipients": list(schedule.recipients),
        "channel_id": schedule.channel_id,
        "created_at": schedule.created_at.isoformat(),
        "updated_at": schedule.updated_at.isoformat(),
    }


def send_view(send: ReportSendRow) -> dict[str, object]:
    """A scheduled send as the API and the feed show it."""
    return {
        "first_day": send.first_day.isoformat(),
        "last_day": send.last_day.isoformat(),
        "status": send.status,
        "attempts": send.attempts,
        "recipients": list(send.recipients),
        "sent_at": send.sent_at.isoformat() if send.sent_at else None,
        "next_try_at": send.next_try_at.isoformat() if send.next_try_at else None,
        "error": send.error,
    }


async def run_sweeper(store: Store, clock: Clock, every: float = SWEEP_SECONDS) -> None:
    """Send the due reports every `every` seconds until cancelled; a failed sweep is logged and the next tried."""
    mail = ReportMail(store, clock)
    while True:
        await asyncio.sleep(every)
        try:
            await mail.send_due()
        except Exception:
            log.exception("scheduled report sweep failed; next one in %s s", every)
