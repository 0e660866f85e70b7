"""Notification channels: create (after checking apprise understands the URL), list, send a test message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import time, timedelta
from typing import Any, Literal

from pydantic import Field, field_validator

from collector.notify.deliver import Delivery, deliver, validate_url
from collector.notify.render import render_test
from collector.services.base import Service
from collector.services.errors import Conflict, Invalid, NotFound
from collector.services.inputs import Input, validated, zone
from collector.services.views import channel_view
from collector.store import ChannelRow, Store
from shared.clock import Clock


class ChannelInput(Input):
    """A new notification channel."""

    name: str = Field(min_length=1, max_length=80)
    url: str = Field(description="apprise URL: mailto://, ntfy://, pover://, tgram://, json://, ...")
    min_severity: Literal["warning", "critical"] = "warning"
    clients: list[str] = Field(default_factory=list, description="only these clients (empty: all)")
    kinds: list[str] = Field(default_factory=list, description="only these rules (empty: all)")
    quiet_start: time | None = Field(None, description="quiet hours start (local): warnings wait for the digest")
    quiet_end: time | None = None
    timezone: str = "UTC"
    digest_at: time | None = Field(None, description="local time of the daily digest")
    group_wait_seconds: float = Field(30, ge=0)
    group_interval_seconds: float = Field(300, ge=0)
    repeat_interval_seconds: float = Field(4 * 3600, gt=0)

    _zone = field_validator("timezone")(zone)


class Channels(Service):
    """Notification channels."""

    def __init__(self, store: Store, clock: Clock, changed: Callable[[], None] | None = None) -> None:
        super().__init__(store, clock)
        # Tells the notifier to read the channels again (the admin CLI has no notifier to tell).
        self.changed = changed or (lambda: None)

    async def list(self) -> list[ChannelRow]:
        """Every channel."""
        async with self.store.read() as tx:
            return await tx.channels()

    async def create(self, wanted: ChannelInput) -> ChannelRow:
        """Check the URL (does apprise understand it?) and quiet hours, then create the channel."""
        row = await _checked(wanted, 0)
        now = self.clock()
        try:
            async with self.store.transaction() as tx:
                channel = await tx.add_channel(row, now)
                await tx.append_feed(now, "channel.created", channel_view(channel))
        except ValueError as exc:
            raise Conflict(str(exc)) from exc
        self.changed()
        return channel

    async def edit(self, name: str, changes: dict[str, Any]) -> ChannelRow:
        """Change some of the channel's settings (checked as a new channel's are); a broken channel counts as
        working again, so that a fixed URL is tried at once."""
        current = await self._named(name)
        wanted = validated(ChannelInput, {**_settings(current), **changes})
        row = await _checked(wanted, current.channel_id)
        try:
            async with self.store.transaction() as tx:
                channel = await tx.update_channel(row)
                await tx.append_feed(self.clock(), "channel.changed", channel_view(channel))
        except ValueError as exc:
            raise Conflict(str(exc)) from exc
        self.changed()
        return channel

    async def switch(self, name: str, on: bool) -> ChannelRow:
        """Switch the channel on or off (nothing is queued for a channel that is off)."""
        current = await self._named(name)
        async with self.store.transaction() as tx:
            channel = await tx.disable_channel(current.channel_id, None if on else self.clock())
            if channel is None:
                raise NotFound(f"there is no channel {name!r}")
            await tx.append_feed(self.clock(), "channel.enabled" if on else "channel.disabled",
                                 channel_view(channel))
        self.changed()
        return channel

    async def delete(self, name: str) -> None:
        """Remove the channel, with what was queued for it and its delivery log."""
        current = await self._named(name)
        async with self.store.transaction() as tx:
            await tx.delete_channel(current.channel_id)
            await tx.append_feed(self.clock(), "channel.deleted", channel_view(current))
        self.changed()

    async def _named(self, name: str) -> ChannelRow:
        """The channel called `name` (NotFound otherwise)."""
        channel = next((c for c in await self.list() if c.name == name), None)
        if channel is None:
            raise NotFound(f"there is no channel {name!r}")
        return channel

    async def test(self, name: str) -> Delivery:
        """Send the channel a test message now; returns how it went."""
        channel = await self._named(name)
        return await deliver(channel.url, *render_test(channel.name))


async def _checked(wanted: ChannelInput, channel_id: int) -> ChannelRow:
    """The channel as stored, once its URL (does apprise understand it?) and quiet hours are checked."""
    problem = await asyncio.to_thread(validate_url, wanted.url)
    if problem:
        raise Invalid("url", problem)
    if (wanted.quiet_start is None) != (wanted.quiet_end is None):
        raise Invalid(None, "quiet hours need both a start and an end")
    return ChannelRow(
        channel_id, wanted.name, wanted.url, wanted.min_severity, tuple(wanted.clients), tuple(wanted.kinds),
        wanted.quiet_start, wanted.quiet_end, wanted.timezone, wanted.digest_at,
        timedelta(seconds=wanted.group_wait_seconds), timedelta(seconds=wanted.group_interval_seconds),
        timedelta(seconds=wanted.repeat_interval_seconds),
    )


def _settings(channel: ChannelRow) -> dict[str, Any]:
    """A channel's settings as ChannelInput takes them (its URL unredacted)."""
    return {
        "name": channel.name, "url": channel.url, "min_severity": channel.min_severity,
        "clients": list(channel.clients), "kinds": list(channel.kinds), "quiet_start": channel.quiet_start,
        "quiet_end": channel.quiet_end, "timezone": channel.timezone, "digest_at": channel.digest_at,
        "group_wait_seconds": channel.group_wait.total_seconds(),
        "group_interval_seconds": channel.group_interval.total_seconds(),
        "repeat_interval_seconds": channel.repeat_interval.total_seconds(),
    }
