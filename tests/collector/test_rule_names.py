"""Alert rules named by signal: migration 0007 renames what older collectors stored, on every backend,
and a silence or channel filter naming a signal covers each of its rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.alerts.silence import Matchers, Silence, matches
from collector.notify.pipeline import wants
from collector.rules import fingerprint
from collector.store import AgentRow, AlertOwner, AlertRow, ChannelRow, Store
from collector.store.migrate import load_migrations, migrate

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
PC = AlertOwner("agent-1", 1, "Acme Tooling", "Main office", "pc-01")
SITE = AlertOwner(None, 1, "Acme Tooling", "Main office", "site-wide")
COLLECTOR = AlertOwner(None, None, "fieldpost", "collector", "collector")
# (old rule, owner, subject, new rule)
STORED = [
    ("device_offline", PC, "device", "heartbeat.offline"),
    ("site_offline", SITE, "site", "heartbeat.site_offline"),
    ("security_updates", PC, "security-updates", "updates.security"),
    ("package_index", PC, "package-index", "updates.package_index"),
    ("check_failed", PC, "disk_health", "unknown"),
    ("disk_health", PC, "disk:WD-123", "disk_health"),
    ("channel_broken", COLLECTOR, "channel:phone", "channel_broken"),
]


def channel(name: str, kinds: tuple[str, ...]) -> ChannelRow:
    return ChannelRow(0, name, "json://localhost/", "warning", (), kinds, None, None, "UTC", None,
                      timedelta(seconds=30), timedelta(minutes=1), timedelta(hours=4))


def silence(kind: str) -> Silence:
    return Silence(0, Matchers(kind=kind), T0, T0 + timedelta(days=1))


def alert(rule: str, severity: str = "critical") -> AlertRow:
    return AlertRow(1, "fp", rule, PC, "subject", severity, "open", "summary", {}, T0, T0, None, 1)


async def rerun_0007(store: Store, backend: str) -> None:
    """Apply migration 0007 again, to the rows an older collector wrote."""
    async with store.migration_tx() as tx:
        await tx.run_script("DELETE FROM schema_migrations WHERE version = 7")
    applied = await migrate(store.migration_tx, load_migrations(backend))
    assert [m.name for m in applied] == ["rule_names"]


async def test_0007_renames_the_old_rule_names_wherever_they_were_stored(store: Store, backend: str) -> None:
    async with store.transaction() as tx:
        await tx.add_agent(AgentRow("agent-1", b"\x01" * 32, "pc-01", await tx.site("Acme Tooling", "Main office"), T0))
        for n, (rule, owner, subject, _) in enumerate(STORED):
            row = await tx.insert_alert(f"{n:032x}", rule, owner, subject, "critical", f"{rule} alert", {}, T0)
            assert row is not None
            await tx.add_alert_event(row.alert_id, T0, "opened", f"rule:{rule}", {"reason": "old"})
            await tx.append_feed(T0, "alert.opened", {"alert_id": row.alert_id, "rule": rule, "summary": "old"})
        await tx.add_channel(channel("phone", ("security_updates", "disk_health", "device_offline")), T0)
        await tx.add_channel(channel("mail", ()), T0)
        await tx.add_silence(Silence(0, Matchers(client="Acme Tooling", kind="check_failed"), T0,
                                     T0 + timedelta(days=1), comment="old"), T0)
    await rerun_0007(store, backend)

    async with store.transaction() as tx:
        alerts = {a.subject: a for a in await tx.alerts("open")}
        for _, owner, subject, new in STORED:
            owner_key = owner.agent_id or (f"site:{owner.site_id}" if owner.site_id else "collector")
            assert alerts[subject].rule == new
            # The next evaluation finds the alert it belongs to.
            assert await tx.open_alert(fingerprint(new, owner_key, subject)) == alerts[subject]
            actors = [actor for _, _, actor, _ in await tx.alert_events(alerts[subject].alert_id)]
            assert actors == [f"rule:{new}"]
        feed = await tx.feed_since(0, 100)
        assert sorted(e.data["rule"] for e in feed) == sorted(new for *_, new in STORED)
        assert all(list(e.data) == ["alert_id", "rule", "summary"] for e in feed), "keys keep their order"
        channels = {c.name: c.kinds for c in await tx.channels()}
        assert channels == {"phone": ("updates.security", "disk_health", "heartbeat.offline"), "mail": ()}
        [held] = await tx.silences()
        assert held.matchers == Matchers(client="Acme Tooling", kind="unknown")
        assert held.comment == "old"


@pytest.mark.parametrize(("wanted", "rule", "expected"), [
    ("updates", "updates.security", True),
    ("updates", "updates.package_index", True),
    ("updates.security", "updates.security", True),
    ("updates.security", "updates.package_index", False),
    ("Updates", "updates.security", True),
    ("heartbeat", "heartbeat.site_offline", True),
    ("update", "updates.security", False),
    ("disk_health", "disk_health", True),
    ("disk", "disk_health", False),
])
def test_a_silence_naming_a_signal_matches_every_rule_of_it(wanted: str, rule: str, expected: bool) -> None:
    fields = {"client": "Acme Tooling", "site": "Main office", "hostname": "pc-01", "agent_id": "agent-1",
              "severity": "warning"}
    assert matches(silence(wanted), rule=rule, **fields) is expected


@pytest.mark.parametrize(("kinds", "rule", "expected"), [
    (("updates",), "updates.package_index", True),
    (("heartbeat",), "heartbeat.offline", True),
    (("heartbeat.offline",), "heartbeat.site_offline", False),
    (("disk_health", "updates.security"), "updates.security", True),
    (("disk_health",), "updates.security", False),
    ((), "updates.security", True),
])
def test_a_channel_filtered_by_signal_takes_every_rule_of_it(
    kinds: tuple[str, ...], rule: str, expected: bool
) -> None:
    assert wants(channel("phone", kinds), alert(rule)) is expected
