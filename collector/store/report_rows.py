"""Stored rows of the value report's extras: time a preparation saved on an incident, the report's e-mail
schedule per client and each scheduled send (one per client and period), and the transaction operations on them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

Preparation = Literal["backup_image", "monitoring", "documentation", "spare_part", "other"]
Frequency = Literal["monthly", "quarterly"]
SendStatus = Literal["sending", "sent", "failed"]


@dataclass(frozen=True)
class TimeSavedRow:
    """The technician's estimate of how long an incident's work would have taken without the preparation."""

    incident_id: int
    minutes_without: int
    preparation: Preparation
    detail: str
    recorded_at: datetime
    recorded_by: str


@dataclass(frozen=True)
class ReportScheduleRow:
    """A client's opt-in to the value report by e-mail: how often, on which day, to whom, through which channel."""

    client_id: int
    client: str
    frequency: Frequency
    day: int
    recipients: tuple[str, ...]
    channel_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ReportSendRow:
    """One scheduled report for a client and period: being sent, sent, or failed (and when to try again)."""

    client_id: int
    first_day: date
    last_day: date
    status: SendStatus
    attempts: int
    claimed_at: datetime
    next_try_at: datetime | None
    sent_at: datetime | None
    recipients: tuple[str, ...]
    error: str | None


class ReportTx(Protocol):
    """The transaction's operations on time saved, report schedules and scheduled sends."""

    async def set_time_saved(self, saved: TimeSavedRow) -> TimeSavedRow:
        """Record (or replace) the time saved on an incident."""

    async def clear_time_saved(self, incident_id: int) -> TimeSavedRow | None:
        """Remove the incident's time saved; what it was, or None when there was none."""

    async def time_saved(self, client_id: int | None = None, incident_id: int | None = None) -> list[TimeSavedRow]:
        """Time saved on a client's or an incident's incidents (or all), by incident."""

    async def set_report_schedule(
        self, client_id: int, frequency: Frequency, day: int, recipients: list[str], channel_id: int, at: datetime
    ) -> ReportScheduleRow:
        """Create or change the client's report schedule."""

    async def delete_report_schedule(self, client_id: int) -> ReportScheduleRow | None:
        """Stop the client's scheduled report; the schedule it had, or None."""

    async def report_schedules(self, client_id: int | None = None) -> list[ReportScheduleRow]:
        """Report schedules of one client or all, by client name."""

    async def claim_report_send(
        self, client_id: int, first: date, last: date, recipients: list[str], now: datetime, stale_before: datetime
    ) -> ReportSendRow | None:
        """Claim the period's send for this process: a new one, a failed one due again, or one whose sender
        claimed it before `stale_before` and never finished; None when it is sent, being sent, or not due."""

    async def finish_report_send(
        self, client_id: int, first: date, at: datetime, error: str | None, next_try_at: datetime | None
    ) -> ReportSendRow:
        """Record how the claimed send went: sent (no error) or failed, to be tried again at `next_try_at`."""

    async def failed_report_sends(self, now: datetime) -> list[ReportSendRow]:
        """Failed sends due to be tried again by `now`, of any client and period."""

    async def report_sends(self, client_id: int, limit: int = 12) -> list[ReportSendRow]:
        """The client's scheduled sends, newest period first."""
