"""Notify: route each alert change to the channels that want it, then deliver the queue in grouped messages.

Routing happens in the transaction that records the change, so a change is queued exactly once even with
several collectors; delivery claims queued rows with a conditional update, so it is sent exactly once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from collector.alerts.dedupe import DEFAULT_LIFECYCLE, Recorder
from collector.alerts.quiet import QuietHours, notify_now
from collector.alerts.silence import Silence, held_until
from collector.feed import Feed
from collector.notify.deliver import Delivery, deliver
from collector.notify.render import NotifyItem, render_digest, render_group
from collector.rules import fingerprint, inhibitors
from collector.store import AlertOwner, AlertRow, ChannelRow, QueuedNotification, Store, Tx
from shared.signals import rule_matches

log = logging.getLogger(__name__)

SEVERITY_RANK = {"unknown": 0, "warning": 1, "critical": 2}
# Changes the technician hears about; acknowledging and snoozing are the technician's own doing.
NOTIFIED = frozenset({"opened", "reopened", "changed", "resolved", "flapping", "reminder"})
# Retries of a failed delivery; after the last one (or a permanent error) the channel is broken.
RETRY_DELAYS = (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), timedelta(minutes=30))
COLLECTOR = AlertOwner(None, None, "fieldpost", "collector", "collector")


def wants(channel: ChannelRow, alert: AlertRow) -> bool:
    """Whether the channel takes this alert at all: severity, client and kind filters."""
    if SEVERITY_RANK.get(alert.severity, 0) < SEVERITY_RANK[channel.min_severity] and alert.rule != "channel_broken":
        return False
    if channel.clients and alert.owner.client not in channel.clients:
        return False
    return not channel.kinds or any(rule_matches(wanted, alert.rule) for wanted in channel.kinds)


def silenced_until(silences: list[Silence], alert: AlertRow, now: datetime) -> datetime | None:
    """When the silences matching this alert stop holding it, or None when none does now."""
    device = alert.owner.hostname if alert.owner.agent_id else None
    return held_until(silences, now, client=alert.owner.client, site=alert.owner.site, hostname=device,
                      agent_id=alert.owner.agent_id, rule=alert.rule, severity=alert.severity)


def quiet_hours(channel: ChannelRow) -> QuietHours | None:
    """The channel's quiet hours, if it has them."""
    if channel.quiet_start is None or channel.quiet_end is None:
        return None
    return QuietHours(channel.quiet_start, channel.quiet_end, channel.timezone)


@dataclass
class Notifier:
    """The notification step: `on_change` queues, `dispatch` delivers; both take the time from the caller."""

    store: Store
    feed: Feed
    claimer: str = f"{socket.gethostname()}:{os.getpid()}"
    # Channels are read on every alert change but change rarely: they are kept this long (another
    # collector's new channel is seen within it; this collector's own at once, through `forget_channels`).
    channels_for: float = 5.0
    _channels: tuple[float, list[ChannelRow]] | None = None

    def forget_channels(self) -> None:
        """Read the channels afresh on the next change (one was created, tested or broken)."""
        self._channels = None

    async def _current_channels(self, tx: Tx) -> list[ChannelRow]:
        """The channels, from memory when read less than `channels_for` seconds ago."""
        if self._channels is None or time.monotonic() - self._channels[0] > self.channels_for:
            self._channels = (time.monotonic(), await tx.channels())
        return self._channels[1]

    async def on_change(self, tx: Tx, alert: AlertRow, event: str, now: datetime) -> None:
        """Queue the change for every channel that wants it, held or dropped as routing says.

        1. Only changes worth a message; nothing while the device (or its whole site) is offline,
           since the offline alert says it all; nothing but the flapping notice while flapping.
        2. Per channel: its filters; quiet hours keep warnings for the digest; a snooze or a
           silence holds the message until it ends (and it is dropped if the alert resolved by then).
        """
        if event not in NOTIFIED or (alert.flapping and event != "flapping"):
            return
        # Cheapest test first: most changes interest no channel, and then nothing else needs reading.
        channels = [channel for channel in await self._current_channels(tx) if wants(channel, alert)]
        if not channels or await self._inhibited(tx, alert):
            return
        held = silenced_until(await tx.silences(), alert, now)
        rows = []
        for channel in channels:
            if event != "resolved" and not notify_now(alert.severity, quiet_hours(channel), now):
                continue  # the morning digest lists it
            due, reason = now, "now"
            if alert.snoozed_until and alert.snoozed_until > due:
                due, reason = alert.snoozed_until, "snoozed"
            if held and held > due:
                due, reason = held, "silenced"
            rows.append((channel.channel_id, alert.alert_id, event, now, due, reason))
        await tx.enqueue(rows)

    async def _inhibited(self, tx: Tx, alert: AlertRow) -> bool:
        """While a device is offline its other alerts stay quiet; while its site is, its device alerts do."""
        for source in inhibitors():
            owner = alert.owner.agent_id if source.inhibits == "device" else (
                f"site:{alert.owner.site_id}" if alert.owner.site_id is not None else None)
            if owner and alert.rule != source.name and await tx.open_alert(
                    fingerprint(source.name, owner, source.subject)) is not None:
                return True
        return False

    async def dispatch(self, now: datetime) -> int:
        """One round: queue reminders, drop what went stale, send each channel's ready group, send digests.

        Returns how many notifications were delivered.
        """
        async with self.store.transaction() as tx:
            channels = {channel.channel_id: channel for channel in await tx.channels()}
            await self._remind(tx, channels.values(), now)
            ready = await self._claim_ready(tx, channels, now)
        delivered = 0
        for channel_id, items in ready.items():
            delivered += await self._send(channels[channel_id], items, now)
        for channel in channels.values():
            await self._digest(channel, now)
        return delivered

    async def _claim_ready(
        self, tx: Tx, channels: dict[int, ChannelRow], now: datetime
    ) -> dict[int, list[QueuedNotification]]:
        """Claim, per working channel, the due notifications whose group wait and group interval are over."""
        stale, groups = [], {}
        silences = await tx.silences()
        for queued in await tx.due_notifications(now):
            if await self._stale(tx, queued):
                stale.append(queued.notification_id)
            elif queued.reason == "silenced" and silenced_until(silences, queued.alert, now):
                continue  # released early, but another silence still holds it
            elif channels[queued.channel_id].broken_at is None:
                groups.setdefault(queued.channel_id, []).append(queued)
        await tx.finish(await tx.claim(stale, self.claimer), "dropped", now)
        ready = {}
        for channel_id, items in groups.items():
            channel = channels[channel_id]
            waited = now - min(item.due_at for item in items) >= channel.group_wait
            spaced = channel.last_sent_at is None or now - channel.last_sent_at >= channel.group_interval
            if waited and spaced:
                claimed = set(await tx.claim([item.notification_id for item in items], self.claimer))
                if claimed:  # another collector may have claimed them all
                    ready[channel_id] = [item for item in items if item.notification_id in claimed]
        return ready

    async def _stale(self, tx: Tx, queued: QueuedNotification) -> bool:
        """A notification not worth sending any more: its alert resolved, was acknowledged, or never went out."""
        alert = queued.alert
        if queued.event == "flapping":
            return False  # the one message about a flapping alert goes out whatever state it is in now
        if queued.event == "resolved":
            # A resolution is news only to a channel that was told of the problem.
            return await tx.last_notified(alert.alert_id, queued.channel_id, sent_only=True) is None
        if alert.state == "resolved" or (alert.flapping and queued.event != "flapping"):
            return True
        return alert.acknowledged_at is not None and queued.event in ("opened", "reopened", "changed", "reminder")

    async def _send(self, channel: ChannelRow, items: list[QueuedNotification], now: datetime) -> int:
        """Deliver one grouped message; on failure retry later, and after the last retry mark the channel broken."""
        title, body = render_group([
            NotifyItem(item.alert.alert_id, item.event, item.alert.severity, item.alert.owner.client,
                       item.alert.owner.site, item.alert.owner.hostname if item.alert.agent_id else "",
                       item.alert.summary, item.created_at)
            for item in items
        ])
        result = await deliver(channel.url, title, body)
        ids = [item.notification_id for item in items]
        attempts = max(item.attempts for item in items)
        async with self.store.transaction() as tx:
            await tx.record_delivery(channel.channel_id, now, result.ok, len(items), title, result.error)
            if result.ok:
                await tx.finish(ids, "sent", now)
                return len(items)
            if result.permanent or attempts >= len(RETRY_DELAYS):
                await tx.finish(ids, "failed", now, result.error)
                await self._broken(tx, channel, result, now)
            else:
                await tx.finish(ids, "pending", now, result.error, retry_at=now + RETRY_DELAYS[attempts])
        log.warning("channel %s: delivery failed: %s", channel.name, result.error)
        return 0

    async def _broken(self, tx: Tx, channel: ChannelRow, result: Delivery, now: datetime) -> None:
        """Stop using a channel that cannot deliver, and say so with an alert of its own (other channels carry it)."""
        reason = result.error or "delivery failed"
        await tx.mark_channel_broken(channel.channel_id, now, reason)
        self.forget_channels()
        subject = f"channel:{channel.name}"
        summary = f"notification channel {channel.name} is broken: {reason}"
        opened = await tx.insert_alert(fingerprint("channel_broken", "collector", subject), "channel_broken",
                                       COLLECTOR, subject, "critical", summary, {"channel": channel.name}, now)
        if opened is not None:
            await Recorder(tx, now, "notify", DEFAULT_LIFECYCLE, self.on_change).record(
                opened, "opened", {"reason": summary})
        self.feed.notify()

    async def _remind(self, tx: Tx, channels: Iterable[ChannelRow], now: datetime) -> None:
        """Queue a reminder for open criticals nobody acknowledged, once per channel's repeat interval."""
        rows = []
        for alert in await tx.alerts("open"):
            if alert.severity != "critical" or alert.acknowledged_at or alert.flapping:
                continue
            if alert.snoozed_until and alert.snoozed_until > now:
                continue
            for channel in channels:
                last = await tx.last_notified(alert.alert_id, channel.channel_id, sent_only=False)
                if wants(channel, alert) and last is not None and now - last >= channel.repeat_interval:
                    rows.append((channel.channel_id, alert.alert_id, "reminder", now, now, "repeat"))
        await tx.enqueue(rows)

    async def _digest(self, channel: ChannelRow, now: datetime) -> None:
        """Once a day at the channel's digest time: what opened, what is still open, what resolved."""
        if channel.digest_at is None or channel.broken_at is not None:
            return
        local = now.astimezone(ZoneInfo(channel.timezone))
        if local.time() < channel.digest_at or channel.last_digest_on == local.date():
            return
        async with self.store.transaction() as tx:
            changes = await tx.alert_events_since(now - timedelta(days=1))
            still_open = [alert for alert in await tx.alerts("open") if wants(channel, alert)]

        def items(wanted: set[str]) -> list[NotifyItem]:
            return [NotifyItem(a.alert_id, what, a.severity, a.owner.client, a.owner.site,
                               a.owner.hostname if a.agent_id else "", a.summary, at)
                    for a, at, what in changes if what in wanted and wants(channel, a)]

        opened = [NotifyItem(a.alert_id, "open", a.severity, a.owner.client, a.owner.site,
                             a.owner.hostname if a.agent_id else "", a.summary, a.opened_at) for a in still_open]
        title, body = render_digest(items({"opened", "reopened"}), opened, items({"resolved"}), local.date())
        result = await deliver(channel.url, title, body)
        async with self.store.transaction() as tx:
            await tx.record_delivery(channel.channel_id, now, result.ok, len(changes), title, result.error)
            if result.ok:
                await tx.mark_digest_sent(channel.channel_id, local.date())
