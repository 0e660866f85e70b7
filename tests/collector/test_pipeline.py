"""The notification pipeline's stages before the queue, on a real store: inhibition is the rules' data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.alerts.dedupe import owner_of
from collector.notify.pipeline import Notifier, stages
from collector.rules import fingerprint, heartbeat
from collector.store import AgentRow, AlertRow, ChannelRow, Store

NOW = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


def test_the_stages_run_in_the_documented_order() -> None:
    listed = stages()
    assert [s.__name__ for s in listed.at_change] == ["route", "inhibit", "time_windows", "silence"]
    assert [s.__name__ for s in listed.at_dispatch] == ["group", "dedupe", "deliver_group", "record"]


async def queued_for(store: Store, alert: AlertRow) -> int:
    """Pass an alert's opening through the stages before the queue; how many notifications were queued."""
    async with store.transaction() as tx:
        await Notifier(store).on_change(tx, alert, "opened", NOW)
        return len([q for q in await tx.due_notifications(NOW + timedelta(days=1)) if q.alert == alert])


async def test_a_device_offline_or_its_site_down_keeps_its_other_alerts_quiet(store: Store) -> None:
    async with store.transaction() as tx:
        await tx.add_channel(ChannelRow(0, "phone", "json://localhost/", "warning", (), (), None, None, "UTC", None,
                                        timedelta(0), timedelta(0), timedelta(hours=4)), NOW)
        agents = [AgentRow(f"ag-{n}", b"\x01" * 32, f"pc-{n}", await tx.site("Acme", "Office"), NOW) for n in (1, 2)]
        disks = []
        for agent in agents:
            await tx.add_agent(agent)
            disks.append(await tx.insert_alert(fingerprint("disk_health", agent.agent_id, "disk:1"), "disk_health",
                                               owner_of(agent, "device"), "disk:1", "critical", "failing", {}, NOW))
        offline = await tx.insert_alert(fingerprint(heartbeat.RULE, "ag-1", heartbeat.SUBJECT), heartbeat.RULE,
                                        owner_of(agents[0], "device"), heartbeat.SUBJECT, "critical", "offline", {},
                                        NOW)
    assert await queued_for(store, disks[0]) == 0, "pc-1 is offline: its disk waits"
    assert await queued_for(store, offline) == 1, "the offline alert itself is news"
    assert await queued_for(store, disks[1]) == 1, "pc-2 is online"
    async with store.transaction() as tx:
        site = owner_of(agents[1], "site")
        await tx.insert_alert(fingerprint(heartbeat.SITE_RULE, f"site:{site.site_id}", heartbeat.SITE_SUBJECT),
                              heartbeat.SITE_RULE, site, heartbeat.SITE_SUBJECT, "critical", "down", {}, NOW)
        other = await tx.insert_alert(fingerprint("disk_health", "ag-2", "disk:2"), "disk_health",
                                      owner_of(agents[1], "device"), "disk:2", "critical", "failing", {}, NOW)
    assert await queued_for(store, other) == 0, "the whole site is down: its devices' alerts wait"
