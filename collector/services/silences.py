"""Silences: hold notifications of matching alerts for a while, or in a recurring window (still recorded)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, Field, field_validator

from collector.alerts.silence import Matchers, Silence
from collector.services.base import Service
from collector.services.errors import Invalid, NotFound
from collector.services.inputs import MAX_MINUTES, TECHNICIAN, Input, Minutes, zone
from collector.services.views import silence_view

COMMENT_LENGTH = 500


class SilenceInput(Input):
    """A silence: `minutes` from now, or a window, or a recurring cron window."""

    client: str | None = None
    site: str | None = None
    device: str | None = None
    kind: str | None = None
    severity: Literal["warning", "critical", "unknown"] | None = None
    minutes: Minutes | None = Field(None, description="one-off: from now, for this long")
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = None
    cron: str | None = Field(None, description="recurring: crontab, e.g. '0 22 * * 6' (Saturdays 22:00)")
    duration_minutes: Minutes | None = Field(None, description="recurring: length of each window")
    timezone: str = "UTC"
    comment: str = Field(min_length=1, max_length=COMMENT_LENGTH, description="why, for whoever wonders later")

    _zone = field_validator("timezone")(zone)


class Silences(Service):
    """Silences: list, create (also like an alert), expire."""

    async def list(self) -> list[Silence]:
        """Silences not expired by hand, newest first."""
        async with self.store.read() as tx:
            return await tx.silences()

    async def create(self, wanted: SilenceInput, created_by: str = TECHNICIAN) -> Silence:
        """Hold notifications of matching alerts."""
        now = self.clock()
        matchers = Matchers(wanted.client, wanted.site, wanted.device, wanted.kind, wanted.severity)
        duration = timedelta(minutes=wanted.duration_minutes) if wanted.duration_minutes else None
        ends_at = now + timedelta(minutes=wanted.minutes) if wanted.minutes else wanted.ends_at
        try:
            silence = Silence(0, matchers, wanted.starts_at or now, ends_at, wanted.cron, duration,
                              wanted.timezone, wanted.comment, created_by)
        except ValueError as exc:
            raise Invalid(None, str(exc)) from None
        return await self._save(silence)

    async def like_alert(self, alert_id: int, minutes: float | None, comment: str, created_by: str) -> Silence:
        """Hold notifications of alerts like this one (its client, device or else site, and rule) for a while."""
        if minutes is None or not 0 < minutes <= MAX_MINUTES:
            raise Invalid("minutes", f"choose for how long to silence: up to {MAX_MINUTES} minutes (a year)")
        async with self.store.read() as tx:
            alert = await tx.alert(alert_id)
        if alert is None:
            raise NotFound(f"there is no alert {alert_id}")
        owner, now = alert.owner, self.clock()
        # A site-wide alert has no device: silence it for its site instead.
        matchers = Matchers(client=owner.client, site=None if owner.agent_id else owner.site,
                            device=owner.agent_id, kind=alert.rule)
        why = comment.strip() or f"like alert {alert_id}: {alert.summary}"
        return await self._save(Silence(0, matchers, now, now + timedelta(minutes=minutes),
                                        comment=why[:COMMENT_LENGTH], created_by=created_by))

    async def _save(self, silence: Silence) -> Silence:
        """Record a silence and tell the live feed."""
        now = self.clock()
        async with self.store.transaction() as tx:
            saved = await tx.add_silence(silence, now)
            await tx.append_feed(now, "silence.created", silence_view(saved))
        return saved

    async def expire(self, silence_id: int) -> datetime:
        """End a silence now (held notifications go out at the next round); returns when it ended."""
        now = self.clock()
        async with self.store.transaction() as tx:
            if not await tx.expire_silence(silence_id, now):
                raise NotFound(f"there is no active silence {silence_id}")
            await tx.append_feed(now, "silence.expired", {"silence_id": silence_id})
        return now
