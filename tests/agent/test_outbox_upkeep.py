"""The outbox keeps itself small (issue 23): its WAL is checkpointed and cut back, reports dropped to stay
within the bound are counted and reported, and an acknowledgement that cannot be written backs off."""

from __future__ import annotations

from pathlib import Path

from agent.checks import CheckContext
from agent.checks.heartbeat import HeartbeatCheck
from agent.identity import Identity
from agent.outbox import OUTBOX_FILE, WAL_BYTES, Outbox
from agent.uploader import Uploader
from shared.updates import AvailableUpdate, Updates
from tests.agent.support import T0, FakeCollector, heartbeat, unknown
from tests.support.clock import Clock


def wal_size(path: Path) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_the_wal_stays_bounded_while_reports_queue_and_is_cut_back_once_they_are_sent(state_dir: Path) -> None:
    path = state_dir / OUTBOX_FILE
    outbox = Outbox(path, "ag_test", "boot-1")
    # ~400 kB an envelope: one update list of a thousand long names (at most 10 signals of one kind an envelope).
    items = [AvailableUpdate(name=f"package-{n}-" + "x" * 380, security=False) for n in range(1000)]
    big = [Updates(collected_at=T0, manager="apt", security_count=0, other_count=1000, items=items)]
    seqs = [outbox.put(big, now=T0) for _ in range(12)]
    assert wal_size(path) <= 2 * WAL_BYTES, "checkpointed on the way: ~5 MB of reports, at most 2 MB of WAL"
    assert outbox.ack(seqs) == 12
    assert wal_size(path) == 0, "an empty outbox leaves no WAL behind"


def test_reports_dropped_to_stay_within_the_bound_are_counted_and_reported(state_dir: Path) -> None:
    size = len(heartbeat().model_dump_json()) + 200
    outbox = Outbox(state_dir / OUTBOX_FILE, "ag_test", "boot-1", max_bytes=4 * size, clock=Clock(T0))
    outbox.put([unknown()], now=T0)
    for _ in range(10):
        outbox.put([heartbeat()], now=T0)
    stats = outbox.stats()
    assert stats.dropped == 11 - len(outbox.pending(1 << 20)) > 0
    assert stats.warning is not None and f"{stats.dropped} routine reports were dropped" in stats.warning
    [beat] = HeartbeatCheck(CheckContext(state_dir=state_dir, clock=Clock(T0))).collect()
    assert (beat.dropped_reports, beat.outbox_warning, beat.outbox_warning_at) == (
        stats.dropped, stats.warning, T0)


async def test_an_acknowledgement_that_cannot_be_written_backs_off_instead_of_looping(
    state_dir: Path, identity: Identity, collector: FakeCollector
) -> None:
    outbox = Outbox(state_dir / OUTBOX_FILE, identity.agent_id, "boot-1")
    for _ in range(3):
        outbox.put([heartbeat()], now=T0)
    outbox._db.execute("PRAGMA query_only = ON")  # the file cannot be written, as on a full state disk
    clock = Clock(T0)
    ticks = [100.0]
    uploader = Uploader(outbox, identity, collector.url, clock=clock, rand=lambda: 1.0,
                        monotonic=lambda: ticks[0])
    await uploader.upload_once()
    await uploader.upload_once()  # the next round, half a second later
    ticks[0] += 0.5
    await uploader.upload_once()
    await uploader.close()
    assert collector.seqs_received == [[1, 2, 3]], "sent once, then backing off"
    assert uploader.not_before is not None and uploader.not_before > ticks[0]
    assert [seq for seq, _ in outbox.pending(1 << 20)] == [1, 2, 3], "kept, to be sent again later"
