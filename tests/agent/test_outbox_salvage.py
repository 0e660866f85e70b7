"""A damaged outbox's readable envelopes are salvaged and sent again under their own stream and number (issue 23):
read page by page in Python, whatever SQLite itself makes of the file."""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
from pathlib import Path

from agent.outbox import OUTBOX_FILE, Outbox
from agent.salvage import salvage
from tests.agent.support import T0, heartbeat, unknown
from tests.agent.test_outbox_damage import PAGE, full_outbox
from tests.support.clock import Clock

COUNT = 300


def bodies(path: Path) -> dict[int, str]:
    """Every envelope's body by number, as SQLite reads the sound file."""
    with sqlite3.connect(path) as db:
        return dict(db.execute("SELECT seq, body FROM envelopes"))


def overwrite(path: Path, at: int, length: int) -> None:
    """Garbage over `length` bytes of the file from `at`: pseudo-random but the same every run, since by chance
    random bytes can start like a page of some kind and change what is counted as unreadable."""
    with path.open("r+b") as f:
        f.seek(at)
        f.write(random.Random(at).randbytes(length))


def test_a_sound_outbox_reads_back_whole(state_dir: Path) -> None:
    path, epoch = full_outbox(state_dir, COUNT)
    found = salvage(path, "ag_test")
    assert {e.seq: e.body for e in found.envelopes} == bodies(path)
    assert {e.epoch for e in found.envelopes} == {epoch}
    assert found.unreadable == 0
    assert salvage(path, "ag_other").envelopes == [], "another agent's envelopes are not this agent's to send"


def test_a_destroyed_header_loses_nothing(state_dir: Path) -> None:
    path, _ = full_outbox(state_dir, COUNT)
    original = bodies(path)
    overwrite(path, 0, PAGE)  # the header and the schema page: SQLite cannot open the file at all
    found = salvage(path, "ag_test")
    assert {e.seq: e.body for e in found.envelopes} == original
    assert found.unreadable == 0


def test_garbage_over_some_pages_loses_only_the_envelopes_on_them(state_dir: Path) -> None:
    path, _ = full_outbox(state_dir, COUNT)
    original = bodies(path)
    overwrite(path, 10 * PAGE, 3 * PAGE)
    with path.open("r+b") as f:
        f.seek(10 * PAGE)
        f.write(b"\x0d")  # garbage that starts like a table-leaf page: still one page, not its random cells
    found = salvage(path, "ag_test")
    read = {e.seq: e.body for e in found.envelopes}
    assert read.items() <= original.items(), "what is read back is what was queued, under the same number"
    # About 13 envelopes of 250 bytes fit a 4 KiB page: three pages hold at most 40.
    assert COUNT - 40 <= len(read) < COUNT
    assert found.unreadable == 3, "the pages the table's index points to that are no longer its pages"


def test_a_file_truncated_mid_page_gives_back_the_whole_pages_before_the_cut(state_dir: Path) -> None:
    path, _ = full_outbox(state_dir, COUNT)
    original = bodies(path)
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(size // 2 + PAGE // 2)
    found = salvage(path, "ag_test")
    read = {e.seq: e.body for e in found.envelopes}
    assert read.items() <= original.items()
    assert COUNT // 3 < len(read) < COUNT
    # The pages cut off (and the one cut in two), which the table's index still points to.
    pages = size // PAGE
    assert pages // 2 - 4 <= found.unreadable <= pages // 2 + 1


def test_envelopes_still_in_the_wal_are_salvaged_too(state_dir: Path) -> None:
    path = state_dir / OUTBOX_FILE
    outbox = Outbox(path, "ag_test", "boot-1")
    seqs = [outbox.put([unknown(error=f"error {n}")], now=T0) for n in range(20)]
    # A copy as a crash leaves it: the recent pages in the WAL only, the main file's header then destroyed.
    copy = state_dir / "crashed.sqlite3"
    shutil.copy(path, copy)
    shutil.copy(f"{path}-wal", f"{copy}-wal")
    outbox.close()
    overwrite(copy, 0, 100)
    assert sorted(e.seq for e in salvage(copy, "ag_test").envelopes) == seqs


def test_the_new_outbox_sends_the_salvaged_envelopes_first_then_its_own_stream(state_dir: Path) -> None:
    path, old_epoch = full_outbox(state_dir, 30)
    original = bodies(path)
    overwrite(path, 0, PAGE)
    outbox = Outbox(path, "ag_test", "boot-1", clock=Clock(T0))
    assert outbox.epoch != old_epoch
    assert outbox.put([heartbeat()], now=T0) == 1, "the new stream starts at 1"
    assert outbox.stats().pending == 31
    warning = outbox.stats().warning
    assert warning is not None and "30 queued reports salvaged from it and sent again, 0 unreadable" in warning
    batch = outbox.pending(1 << 20, limit=20)
    assert batch == sorted(original.items())[:20], "salvaged first, as they were, with their own numbers"
    assert {json.loads(body)["epoch"] for _, body in batch} == {old_epoch}
    # The collector's answer names numbers of the batch's stream: seq 1 of the old stream, not the new one.
    assert outbox.ack([seq for seq, _ in batch]) == 20
    outbox.mark_rejected(21, "invalid")
    batch = outbox.pending(1 << 20)
    assert [seq for seq, _ in batch] == list(range(22, 31))
    assert outbox.ack([seq for seq, _ in batch]) == 9
    [(seq, body)] = outbox.pending(1 << 20)
    assert seq == 1 and json.loads(body)["epoch"] == outbox.epoch
    stats = outbox.stats()
    assert (stats.pending, stats.rejected) == (1, 1)
    outbox.close()
