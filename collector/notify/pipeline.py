"""The notification pipeline after ingest, as a list of stages (Alertmanager's MultiStage), in `stages()`.

route -> inhibit -> time windows -> silence run in the transaction that records an alert's change and end
in the durable queue, so a change is queued exactly once even with several collectors; group -> dedupe ->
deliver -> record run in each dispatch round on what the queue holds, claiming rows with a conditional
update, so each is sent exactly once. Inhibition and "resolve at once" are data on each rule's spec.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from collector.alerts.dedupe import DEFAULT_LIFECYCLE, Recorder
from collector.alerts.quiet import QuietHours, notify_now
from collector.alerts.silence import Silence, held_until
from collector.notify.deliver import Delivery, deliver
from collector.notify.render import NotifyItem, render_digest, render_group
from collector.rules import alert_rule, fingerprint, inhibitors
from collector.store import AlertOwner, AlertRow, ChannelRow, QueuedNotification, Store, Tx
from shared.signals import rule_matches

log = logging.getLogger(__name__)

SEVERITY_RANK = {"unknown": 0, "warning": 1, "critical": 2}
# Changes the technician hears about; acknowledging and snoozing are the technician's own doing.
NOTIFIED = frozenset({"opened", "reopened", "changed", "resolved", "flapping", "reminder"})
# The news of a problem: of a critical one it is urgent.
URGENT_EVENTS = frozenset({"opened", "reopened", "changed"})
# Retries of a failed delivery, each wait twice the one before; after the last one (or a permanent error)
# the channel is broken, about four minutes after the first failure, and its alert goes to the others.
RETRY_DELAYS = tuple(timedelta(seconds=15 * 2**n) for n in range(4))
COLLECTOR = AlertOwner(None, None, "fieldpost", "collector", "collector")
# The collector's own alert about a channel that cannot deliver (no signal owns it).
CHANNEL_BROKEN = "channel_broken"


def wants(channel: ChannelRow, alert: AlertRow) -> bool:
    """Whether the channel takes this alert at all: severity, client and rule filters (a signal covers its rules)."""
    if SEVERITY_RANK.get(alert.severity, 0) < SEVERITY_RANK[channel.min_severity]:
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
class Change:
    """One change of one alert, passing the stages before the queue inside the transaction that recorded it."""

    tx: Tx
    alert: AlertRow
    event: str
    now: datetime
    # The channels still taking it, each with when it may go out and why then.
    routes: list[Route] = field(default_factory=list)


@dataclass
class Route:
    """The change on its way to one channel."""

    channel: ChannelRow
    due: datetime
    reason: str


@dataclass
class Flush:
    """One channel's group in a dispatch round: what it sends and, once delivered, how it went."""

    channel: ChannelRow
    items: list[QueuedNotification]
    title: str = ""
    result: Delivery | None = None


ChangeStage = Callable[["Notifier", Change], Awaitable[None]]
RoundStage = Callable[["Notifier", list[Flush], datetime], Awaitable[list[Flush]]]


@dataclass(frozen=True)
class Stages:
    """The pipeline in order: the stages of a change (ending in the queue), then those of a dispatch round."""

    at_change: tuple[ChangeStage, ...]
    at_dispatch: tuple[RoundStage, ...]


def stages() -> Stages:
    """The notification pipeline, in the order it runs."""
    return Stages(
        at_change=(route, inhibit, time_windows, silence),
        # -> the queue (durable: a collector may stop here and another carry on) ->
        at_dispatch=(group, dedupe, deliver_group, record),
    )


# Stages of a change


async def route(notifier: Notifier, change: Change) -> None:
    """The channels that want this change: only changes worth a message, nothing but the flapping notice
    while flapping, a reminder only where the channel's repeat interval has passed; then its filters."""
    alert, event = change.alert, change.event
    if event not in NOTIFIED or (alert.flapping and event != "flapping"):
        return
    for channel in await notifier.current_channels(change.tx):
        if channel.disabled_at is not None or not wants(channel, alert):
            continue
        if event == "reminder":
            last = await change.tx.last_notified(alert.alert_id, channel.channel_id, sent_only=False)
            if last is None or change.now - last < channel.repeat_interval:
                continue
        change.routes.append(Route(channel, change.now, "repeat" if event == "reminder" else "now"))


async def inhibit(notifier: Notifier, change: Change) -> None:
    """Nothing while an inhibiting alert of the same device or site is open (the rules' `inhibits`): while
    a device is offline its other alerts stay quiet; while its site is, its devices' alerts do."""
    if not change.routes:
        return  # cheapest test first: most changes interest no channel
    alert = change.alert
    for source in inhibitors():
        owner = alert.owner.agent_id if source.inhibits == "device" else (
            f"site:{alert.owner.site_id}" if alert.owner.site_id is not None else None)
        if owner is None or alert.rule == source.name:
            continue
        if await change.tx.open_alert(fingerprint(source.name, owner, source.subject)) is not None:
            change.routes.clear()
            return


async def time_windows(notifier: Notifier, change: Change) -> None:
    """Quiet hours: at night a channel gets only criticals and resolutions; the morning digest lists the rest."""
    change.routes[:] = [
        r for r in change.routes
        if change.event == "resolved" or notify_now(change.alert.severity, quiet_hours(r.channel), change.now)
    ]


async def silence(notifier: Notifier, change: Change) -> None:
    """A snooze or a silence holds the message until it ends (it is dropped then if the alert resolved);
    a reminder is news only now, so a held one is not queued at all."""
    if not change.routes:
        return
    alert = change.alert
    held = silenced_until(await change.tx.silences(), alert, change.now)
    for r in change.routes:
        if alert.snoozed_until and alert.snoozed_until > r.due:
            r.due, r.reason = alert.snoozed_until, "snoozed"
        if held and held > r.due:
            r.due, r.reason = held, "silenced"
    if change.event == "reminder":
        change.routes[:] = [r for r in change.routes if r.reason == "repeat"]


# Stages of a dispatch round


def urgent(queued: QueuedNotification) -> bool:
    """News of a critical problem (not a resolution, nor a reminder): it bypasses the group interval, still
    grouped with what else arrives within the group wait; everything else keeps the channel's pace."""
    return queued.alert.severity == "critical" and queued.event in URGENT_EVENTS


async def group(notifier: Notifier, flushes: list[Flush], now: datetime) -> list[Flush]:
    """Claim, per working channel, the due notifications once its group wait and group interval are over
    (criticals need only the group wait; a notification released early from a silence waits while another
    silence still holds it)."""
    async with notifier.store.transaction() as tx:
        channels = {channel.channel_id: channel for channel in await tx.channels()}
        silences = await tx.silences()
        waiting: dict[int, list[QueuedNotification]] = {}
        for queued in await tx.due_notifications(now):
            if queued.reason == "silenced" and silenced_until(silences, queued.alert, now):
                continue
            if channels[queued.channel_id].working:
                waiting.setdefault(queued.channel_id, []).append(queued)
        for channel_id, items in waiting.items():
            channel = channels[channel_id]
            spaced = channel.last_sent_at is None or now - channel.last_sent_at >= channel.group_interval
            if not spaced:  # a critical problem goes out without waiting for the channel's group interval
                items = [item for item in items if urgent(item)]
            # A retry is due at its backoff's end; a first try once the group wait has gathered its group.
            waited = bool(items) and now >= min(
                item.due_at + (timedelta(0) if item.attempts else channel.group_wait) for item in items)
            if waited:
                claimed = set(await tx.claim([item.notification_id for item in items], notifier.claimer))
                if claimed:  # another collector may have claimed them all
                    flushes.append(Flush(channel, [item for item in items if item.notification_id in claimed]))
    return flushes


async def dedupe(notifier: Notifier, flushes: list[Flush], now: datetime) -> list[Flush]:
    """Drop what is no longer worth sending: its alert resolved, was acknowledged, or its problem never went out."""
    kept, stale = [], []
    async with notifier.store.transaction() as tx:
        for flush in flushes:
            fresh = []
            for item in flush.items:
                (stale if await _stale(tx, item) else fresh).append(item)
            if fresh:
                kept.append(Flush(flush.channel, fresh))
        await tx.finish([item.notification_id for item in stale], "dropped", now)
    return kept


async def _stale(tx: Tx, queued: QueuedNotification) -> bool:
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


async def deliver_group(notifier: Notifier, flushes: list[Flush], now: datetime) -> list[Flush]:
    """Send each channel's group as one message."""
    for flush in flushes:
        message = render_group([notifier.item(item.alert, item.event, item.created_at) for item in flush.items])
        flush.title = message.title
        flush.result = await deliver(flush.channel.url, message.title, message.text, message.html)
    return flushes


async def record(notifier: Notifier, flushes: list[Flush], now: datetime) -> list[Flush]:
    """Log each delivery; on failure retry later, and after the last retry mark the channel broken."""
    for flush in flushes:
        channel, result = flush.channel, flush.result
        assert result is not None, "record runs after deliver"
        ids = [item.notification_id for item in flush.items]
        attempts = max(item.attempts for item in flush.items)
        async with notifier.store.transaction() as tx:
            await tx.record_delivery(channel.channel_id, now, result.ok, len(ids), flush.title, result.error)
            if result.ok:
                await tx.finish(ids, "sent", now)
                continue
            if result.permanent or attempts >= len(RETRY_DELAYS):
                await tx.finish(ids, "failed", now, result.error)
                await notifier.broken(tx, channel, result, now)
            else:
                await tx.finish(ids, "pending", now, result.error, retry_at=now + RETRY_DELAYS[attempts])
        log.warning("channel %s: delivery failed: %s", channel.name, result.error)
    return flushes


@dataclass
class Notifier:
    """Runs the pipeline: `on_change` takes a change to the queue, `dispatch` delivers; both take the time."""

    store: Store
    # The dashboard's address for links in messages (collector.public_url); empty: no links.
    public_url: str = ""
    claimer: str = f"{socket.gethostname()}:{os.getpid()}"
    # Channels are read on every alert change but change rarely: they are kept this long (another
    # collector's new channel is seen within it; this collector's own at once, through `forget_channels`).
    channels_for: float = 5.0
    pipeline: Stages = field(default_factory=stages)
    _channels: tuple[float, list[ChannelRow]] | None = None

    def item(self, alert: AlertRow, event: str, at: datetime) -> NotifyItem:
        """One alert event as a message shows it: where, what, what to do, and its link on the dashboard."""
        link = f"{self.public_url.rstrip('/')}/alerts/{alert.alert_id}" if self.public_url else ""
        return NotifyItem(alert.alert_id, event, alert.severity, alert.owner.client, alert.owner.site,
                          alert.owner.hostname if alert.agent_id else "", alert.summary, at, link,
                          alert_rule(alert.rule).action)

    def forget_channels(self) -> None:
        """Read the channels afresh on the next change (one was created, tested or broken)."""
        self._channels = None

    async def current_channels(self, tx: Tx) -> list[ChannelRow]:
        """The channels, from memory when read less than `channels_for` seconds ago."""
        if self._channels is None or time.monotonic() - self._channels[0] > self.channels_for:
            self._channels = (time.monotonic(), await tx.channels())
        return self._channels[1]

    async def on_change(self, tx: Tx, alert: AlertRow, event: str, now: datetime) -> None:
        """Pass one recorded change through the stages before the queue, and queue what is left."""
        change = Change(tx, alert, event, now)
        for stage in self.pipeline.at_change:
            await stage(self, change)
            if not change.routes:
                return
        await tx.enqueue([(r.channel.channel_id, alert.alert_id, event, now, r.due, r.reason) for r in change.routes])

    async def dispatch(self, now: datetime) -> int:
        """One round: reminders into the pipeline, the queue through the stages after it, then the digests.

        Returns how many notifications were delivered.
        """
        await self._remind(now)
        flushes: list[Flush] = []
        for stage in self.pipeline.at_dispatch:
            flushes = await stage(self, flushes, now)
        async with self.store.transaction() as tx:
            channels = await tx.channels()
        for channel in channels:
            await self._digest(channel, now)
        return sum(len(f.items) for f in flushes if f.result is not None and f.result.ok)

    async def _remind(self, now: datetime) -> None:
        """Pass a reminder of every open critical nobody acknowledged (or snoozed) through the pipeline."""
        async with self.store.transaction() as tx:
            for alert in await tx.alerts("open"):
                if alert.severity != "critical" or alert.acknowledged_at or alert.flapping:
                    continue
                if alert.snoozed_until and alert.snoozed_until > now:
                    continue
                await self.on_change(tx, alert, "reminder", now)

    async def broken(self, tx: Tx, channel: ChannelRow, result: Delivery, now: datetime) -> None:
        """Stop using a channel that cannot deliver, and say so with an alert of its own (other channels carry it)."""
        reason = result.error or "delivery failed"
        await tx.mark_channel_broken(channel.channel_id, now, reason)
        self.forget_channels()
        subject = f"channel:{channel.name}"
        summary = f"notification channel {channel.name} is broken: {reason}"
        opened = await tx.insert_alert(fingerprint(CHANNEL_BROKEN, "collector", subject), CHANNEL_BROKEN,
                                       COLLECTOR, subject, "critical", summary, {"channel": channel.name}, now)
        if opened is not None:
            await Recorder(tx, now, "notify", DEFAULT_LIFECYCLE, self.on_change).record(
                opened, "opened", {"reason": summary})

    async def _digest(self, channel: ChannelRow, now: datetime) -> None:
        """Once a day at the channel's digest time: what opened, what is still open, what resolved."""
        if channel.digest_at is None or not channel.working:
            return
        local = now.astimezone(ZoneInfo(channel.timezone))
        if local.time() < channel.digest_at or channel.last_digest_on == local.date():
            return
        async with self.store.transaction() as tx:
            changes = await tx.alert_events_since(now - timedelta(days=1))
            still_open = [alert for alert in await tx.alerts("open") if wants(channel, alert)]

        def items(wanted: set[str]) -> list[NotifyItem]:
            return [self.item(a, what, at) for a, at, what in changes if what in wanted and wants(channel, a)]

        opened = [self.item(a, "open", a.opened_at) for a in still_open]
        title, body = render_digest(items({"opened", "reopened"}), opened, items({"resolved"}), local.date())
        result = await deliver(channel.url, title, body)
        async with self.store.transaction() as tx:
            await tx.record_delivery(channel.channel_id, now, result.ok, len(changes), title, result.error)
            if result.ok:
                await tx.mark_digest_sent(channel.channel_id, local.date())
