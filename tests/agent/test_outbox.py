"""The durable outbox: sequence numbers, acks, rejected envelopes, bounds, and surviving kill -9."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from agent.outbox import OUTBOX_FILE, Outbox, read_stats
from shared.wire import Envelope
from tests.agent.support import T0, heartbeat, unknown


def open_outbox(state_dir: Path, agent_id: str = "ag_test", **bounds: object) -> Outbox:
    return Outbox(state_dir / OUTBOX_FILE, agent_id, "boot-1", **bounds)  # type: ignore[arg-type]


def stored_seqs(outbox: Outbox) -> list[int]:
    return [seq for seq, _ in outbox.pending(max_bytes=1 << 30, limit=10_000)]


def test_it_stores_a_valid_envelope_before_anything_is_sent(state_dir: Path) -> None:
    outbox = open_outbox(state_dir)
    seq = outbox.put([heartbeat()], now=T0)
    [(pending_seq, body)] = outbox.pending(max_bytes=1 << 20)
    envelope = Envelope.model_validate_json(body)
    assert (pending_seq, envelope.seq, envelope.agent_id, envelope.boot_id) == (seq, 1, "ag_test", "boot-1")
    assert envelope.sent_at == T0
    assert envelope.signals == [heartbeat()]


def test_it_numbers_envelopes_monotonically_across_reopen_and_never_reuses_acked_numbers(
    state_dir: Path,
) -> None:
    outbox = open_outbox(state_dir)
    assert [outbox.put([heartbeat()], now=T0) for _ in range(3)] == [1, 2, 3]
    assert outbox.ack([1, 2, 3]) == 3
    outbox.close()
    reopened = open_outbox(state_dir)
    assert stored_seqs(reopened) == []
    assert reopened.put([heartbeat()], now=T0) == 4


def test_ack_deletes_only_the_named_envelopes(state_dir: Path) -> None:
    outbox = open_outbox(state_dir)
    for _ in range(4):
        outbox.put([heartbeat()], now=T0)
    outbox.ack([2, 4])
    assert stored_seqs(outbox) == [1, 3]


def test_pending_returns_oldest_first_within_the_byte_budget_but_at_least_one(state_dir: Path) -> None:
    outbox = open_outbox(state_dir)
    for _ in range(5):
        outbox.put([heartbeat()], now=T0)
    size = len(outbox.pending(max_bytes=1)[0][1])
    assert [seq for seq, _ in outbox.pending(max_bytes=1)] == [1]
    assert [seq for seq, _ in outbox.pending(max_bytes=2 * size)] == [1, 2]
    assert [seq for seq, _ in outbox.pending(max_bytes=1 << 20, limit=3)] == [1, 2, 3]


def test_a_rejected_envelope_is_kept_for_inspection_but_not_sent_again(state_dir: Path) -> None:
    outbox = open_outbox(state_dir)
    outbox.put([heartbeat()], now=T0)
    outbox.put([heartbeat()], now=T0)
    outbox.mark_rejected(1, "HTTP 422: report does not match the schema")
    assert stored_seqs(outbox) == [2]
    [rejected] = outbox.rejected()
    assert (rejected.seq, rejected.reason) == (1, "HTTP 422: report does not match the schema")
    assert Envelope.model_validate_json(rejected.body).seq == 1
    stats = outbox.stats()
    assert (stats.pending, stats.rejected, stats.next_seq) == (1, 1, 3)


def test_it_treats_changed_content_as_a_state_change_ignoring_timestamps(state_dir: Path) -> None:
    outbox = open_outbox(state_dir, max_bytes=1)
    later = T0 + timedelta(hours=1)
    outbox.put([unknown(error="smartctl is not installed", at=T0)], now=T0)
    outbox.put([unknown(error="smartctl is not installed", at=later)], now=later)  # same content: routine
    outbox.put([unknown(error="permission denied", at=later)], now=later)  # changed: state change
    outbox.put([heartbeat(at=later)], now=later)  # heartbeats: routine
    # The bound of 1 byte drops every routine envelope and keeps the state changes.
    assert stored_seqs(outbox) == [1, 3]


def test_over_its_byte_bound_it_drops_the_oldest_routine_envelopes_first(
    state_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = len(heartbeat().model_dump_json()) + 200  # an envelope is a heartbeat plus its header
    outbox = open_outbox(state_dir, max_bytes=4 * size)
    outbox.put([unknown()], now=T0)
    with caplog.at_level(logging.WARNING, "agent.outbox"):
        for _ in range(10):
            outbox.put([heartbeat()], now=T0)
    kept = stored_seqs(outbox)
    assert kept[0] == 1, "the state change is never dropped"
    assert kept[1:] == list(range(12 - len(kept) + 1, 12)), "the newest routine envelopes stay"
    assert outbox.stats().pending_bytes <= 4 * size
    assert "dropped 1 envelopes (seq 2," in caplog.text


def test_rejected_envelopes_go_before_routine_ones_when_space_runs_out(state_dir: Path) -> None:
    outbox = open_outbox(state_dir, max_bytes=1 << 20)
    outbox.put([unknown(error="a")], state_change=True, now=T0)
    outbox.put([heartbeat()], now=T0)
    outbox.mark_rejected(1, "HTTP 422: bad")
    outbox.max_bytes = len(outbox.pending(1 << 20)[0][1]) * 2 + 10
    outbox.put([heartbeat()], now=T0)
    assert outbox.rejected() == []
    assert stored_seqs(outbox) == [2, 3]


def test_routine_envelopes_older_than_the_age_bound_are_dropped_state_changes_kept(state_dir: Path) -> None:
    days = 0.0  # the PC's monotonic clock, running with the wall clock
    outbox = open_outbox(state_dir, max_age=timedelta(days=14), monotonic=lambda: days * 86400)
    outbox.put([unknown()], now=T0)
    outbox.put([heartbeat()], now=T0)
    days = 10
    outbox.put([heartbeat()], now=T0 + timedelta(days=10))
    days = 15
    outbox.put([heartbeat()], now=T0 + timedelta(days=15))
    assert stored_seqs(outbox) == [1, 3, 4]


def test_envelopes_of_a_former_enrolment_are_kept_unsent_and_numbering_goes_on(state_dir: Path) -> None:
    outbox = open_outbox(state_dir, agent_id="ag_old")
    outbox.put([heartbeat()], now=T0)
    outbox.close()
    outbox = open_outbox(state_dir, agent_id="ag_new")
    assert stored_seqs(outbox) == []
    assert "enrolled again as ag_new" in outbox.rejected()[0].reason
    assert outbox.put([heartbeat()], now=T0) == 2
    assert Envelope.model_validate_json(outbox.pending(1 << 20)[0][1]).agent_id == "ag_new"


def test_read_stats_reports_depth_oldest_and_last_upload(state_dir: Path) -> None:
    assert read_stats(state_dir / OUTBOX_FILE) is None
    outbox = open_outbox(state_dir)
    outbox.put([heartbeat()], now=T0)
    outbox.put([heartbeat()], now=T0 + timedelta(minutes=1))
    outbox.record_upload("sent 0 envelopes; last answer HTTP 503: busy", T0 + timedelta(minutes=2))
    stats = read_stats(state_dir / OUTBOX_FILE)
    assert stats is not None
    assert (stats.pending, stats.oldest_pending_at, stats.next_seq) == (2, T0, 3)
    assert stats.last_upload_at == T0 + timedelta(minutes=2)
    assert stats.last_upload_result == "sent 0 envelopes; last answer HTTP 503: busy"


WRITER = """
import sys
from pathlib import Path
from agent.outbox import Outbox
from tests.agent.support import heartbeat, unknown

outbox = Outbox(Path(sys.argv[1]), "ag_test", "boot-1")
n = 0
while True:
    n += 1
    seq = outbox.put([unknown(error=f"error {n}")] if n % 2 else [heartbeat()])
    print(seq, flush=True)
"""


def test_every_envelope_put_survives_kill_9_and_numbering_continues(state_dir: Path) -> None:
    path = state_dir / OUTBOX_FILE
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert child.stdout is not None
    confirmed = [int(child.stdout.readline()) for _ in range(40)]
    os.kill(child.pid, signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL
    reopened = Outbox(path, "ag_test", "boot-2")
    stored = stored_seqs(reopened)
    assert set(confirmed) <= set(stored), "every put that returned is on disk"
    assert stored == list(range(1, len(stored) + 1))
    for _, body in reopened.pending(1 << 30, limit=10_000):
        json.loads(body)
    assert reopened.put([heartbeat()]) == len(stored) + 1
