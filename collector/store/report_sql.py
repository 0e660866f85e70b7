"""SQL for the value report's extras (time saved, e-mail schedules, scheduled sends), shared by both backends."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from collector.store.codec import Codec, from_json, to_json
from collector.store.report_rows import Frequency, ReportScheduleRow, ReportSendRow, TimeSavedRow

Row = Any


class ReportSql:
    """The `ReportTx` operations, mixed into `SqlTx` (which supplies the query helpers and the codec)."""

    codec: Codec

    async def _row(self, sql: str, /, **params: Any) -> Row | None:
        raise NotImplementedError

    async def _rows(self, sql: str, /, **params: Any) -> list[Row]:
        raise NotImplementedError

    async def set_time_saved(self, saved: TimeSavedRow) -> TimeSavedRow:
        row = await self._row(
            "INSERT INTO time_saved (incident_id, minutes_without, preparation, detail, recorded_at, recorded_by) "
            "VALUES (:incident, :minutes, :preparation, :detail, :at, :by) ON CONFLICT (incident_id) DO UPDATE "
            "SET minutes_without = excluded.minutes_without, preparation = excluded.preparation, "
            "detail = excluded.detail, recorded_at = excluded.recorded_at, recorded_by = excluded.recorded_by "
            "RETURNING *",
            incident=saved.incident_id, minutes=saved.minutes_without, preparation=saved.preparation,
            detail=saved.detail, at=saved.recorded_at, by=saved.recorded_by,
        )
        assert row is not None
        return _time_saved(row, self.codec)

    async def clear_time_saved(self, incident_id: int) -> TimeSavedRow | None:
        row = await self._row("DELETE FROM time_saved WHERE incident_id = :incident RETURNING *", incident=incident_id)
        return _time_saved(row, self.codec) if row is not None else None

    async def time_saved(self, client_id: int | None = None, incident_id: int | None = None) -> list[TimeSavedRow]:
        rows = await self._rows(
            "SELECT t.* FROM time_saved t JOIN incidents i ON i.id = t.incident_id "
            "WHERE (:client::bigint IS NULL OR i.client_id = :client) "
            "AND (:incident::bigint IS NULL OR t.incident_id = :incident) ORDER BY t.incident_id",
            client=client_id, incident=incident_id,
        )
        return [_time_saved(row, self.codec) for row in rows]

    async def set_report_schedule(
        self, client_id: int, frequency: Frequency, day: int, recipients: list[str], channel_id: int, at: datetime
    ) -> ReportScheduleRow:
        await self._row(
            "INSERT INTO report_schedules (client_id, frequency, day, recipients, channel_id, created_at, updated_at) "
            "VALUES (:client, :frequency, :day, :recipients, :channel, :at, :at) ON CONFLICT (client_id) DO UPDATE "
            "SET frequency = excluded.frequency, day = excluded.day, recipients = excluded.recipients, "
            "channel_id = excluded.channel_id, updated_at = excluded.updated_at RETURNING client_id",
            client=client_id, frequency=frequency, day=day, recipients=to_json(recipients), channel=channel_id, at=at,
        )
        return (await self.report_schedules(client_id))[0]

    async def delete_report_schedule(self, client_id: int) -> ReportScheduleRow | None:
        before = await self.report_schedules(client_id)
        await self._row("DELETE FROM report_schedules WHERE client_id = :client RETURNING client_id", client=client_id)
        return before[0] if before else None

    async def report_schedules(self, client_id: int | None = None) -> list[ReportScheduleRow]:
        rows = await self._rows(
            "SELECT r.*, c.name AS client FROM report_schedules r JOIN clients c ON c.id = r.client_id "
            "WHERE (:client::bigint IS NULL OR r.client_id = :client) ORDER BY c.name",
            client=client_id,
        )
        return [_schedule(row, self.codec) for row in rows]

    async def claim_report_send(
        self, client_id: int, first: date, last: date, recipients: list[str], now: datetime, stale_before: datetime
    ) -> ReportSendRow | None:
        # The primary key decides between processes: one insert wins, and a retry is claimed by a conditional
        # update, so a period's report is handed to one sender at a time.
        row = await self._row(
            "INSERT INTO report_sends (client_id, first_day, last_day, status, attempts, claimed_at, recipients) "
            "VALUES (:client, :first, :last, 'sending', 1, :now, :recipients) "
            "ON CONFLICT (client_id, first_day) DO NOTHING RETURNING *",
            client=client_id, first=first, last=last, now=now, recipients=to_json(recipients),
        )
        if row is None:
            row = await self._row(
                "UPDATE report_sends SET status = 'sending', attempts = attempts + 1, claimed_at = :now, "
                "recipients = :recipients, next_try_at = NULL "
                "WHERE client_id = :client AND first_day = :first AND ((status = 'failed' AND next_try_at <= :now) "
                "OR (status = 'sending' AND claimed_at < :stale)) RETURNING *",
                client=client_id, first=first, now=now, stale=stale_before, recipients=to_json(recipients),
            )
        return _send(row, self.codec) if row is not None else None

    async def finish_report_send(
        self, client_id: int, first: date, at: datetime, error: str | None, next_try_at: datetime | None
    ) -> ReportSendRow:
        row = await self._row(
            "UPDATE report_sends SET status = CASE WHEN :error::text IS NULL THEN 'sent' ELSE 'failed' END, "
            "sent_at = CASE WHEN :error::text IS NULL THEN :at::timestamptz ELSE NULL END, "
            "error = :error, next_try_at = :next "
            "WHERE client_id = :client AND first_day = :first RETURNING *",
            client=client_id, first=first, at=at, error=error, next=next_try_at,
        )
        assert row is not None, "finish_report_send is given a send this process claimed"
        return _send(row, self.codec)

    async def failed_report_sends(self, now: datetime) -> list[ReportSendRow]:
        rows = await self._rows(
            "SELECT * FROM report_sends WHERE status = 'failed' AND next_try_at <= :now ORDER BY client_id, first_day",
            now=now,
        )
        return [_send(row, self.codec) for row in rows]

    async def report_sends(self, client_id: int, limit: int = 12) -> list[ReportSendRow]:
        rows = await self._rows(
            "SELECT * FROM report_sends WHERE client_id = :client ORDER BY first_day DESC LIMIT :limit",
            client=client_id, limit=limit,
        )
        return [_send(row, self.codec) for row in rows]


def _time_saved(row: Row, c: Codec) -> TimeSavedRow:
    """A time_saved row as a TimeSavedRow."""
    return TimeSavedRow(row["incident_id"], row["minutes_without"], row["preparation"], row["detail"],
                        c.moment(row["recorded_at"]), row["recorded_by"])  # type: ignore[arg-type]


def _schedule(row: Row, c: Codec) -> ReportScheduleRow:
    """A report_schedules row (with its client's name) as a ReportScheduleRow."""
    return ReportScheduleRow(row["client_id"], row["client"], row["frequency"], row["day"],
                             tuple(from_json(row["recipients"])), row["channel_id"],
                             c.moment(row["created_at"]), c.moment(row["updated_at"]))  # type: ignore[arg-type]


def _send(row: Row, c: Codec) -> ReportSendRow:
    """A report_sends row as a ReportSendRow."""
    return ReportSendRow(row["client_id"], c.day(row["first_day"]), c.day(row["last_day"]),  # type: ignore[arg-type]
                         row["status"], row["attempts"], c.moment(row["claimed_at"]),  # type: ignore[arg-type]
                         c.moment(row["next_try_at"]), c.moment(row["sent_at"]),
                         tuple(from_json(row["recipients"])), row["error"])
