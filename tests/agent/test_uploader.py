"""The uploader against a scripted collector on loopback: batching, acks, backoff, Retry-After, rejections."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from agent.identity import Identity
from agent.outbox import OUTBOX_FILE, Outbox
from agent.uploader import Uploader, retry_after_seconds
from shared.http import RECONNECT_HEADER
from shared.wire import ReportBatch
from tests.agent.support import T0, FakeCollector, heartbeat, loopback_server, unknown
from tests.support.clock import Clock, Ticks


@pytest.fixture
def outbox(state_dir: Path, identity: Identity) -> Outbox:
    return Outbox(state_dir / OUTBOX_FILE, identity.agent_id, "boot-1")


def fill(outbox: Outbox, count: int) -> None:
    for n in range(count):
        outbox.put([unknown(error=f"error {n}")], now=T0)


def uploader_for(outbox: Outbox, identity: Identity, url: str, clock: Clock, ticks: Ticks | None = None,
                 **options: object) -> Uploader:
    return Uploader(outbox, identity, url, clock=clock, rand=lambda: 1.0,  # type: ignore[arg-type]
                    monotonic=ticks or Ticks(), **options)


def wait_out(uploader: Uploader, ticks: Ticks) -> None:
    """Let the uploader's wait pass on its monotonic clock."""
    ticks.advance(uploader.waiting())


def pending(outbox: Outbox) -> list[int]:
    return [seq for seq, _ in outbox.pending(1 << 30, limit=10_000)]


async def test_it_drains_the_outbox_in_signed_batches_oldest_first(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 5)
    size = len(outbox.pending(1)[0][1])
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), batch_bytes=2 * size)
    await uploader.upload_once()
    await uploader.close()
    assert collector.seqs_received == [[1, 2], [3, 4], [5]]
    assert pending(outbox) == []
    assert outbox.stats().last_upload_result == "sent 5 envelopes"


async def test_duplicates_are_acknowledged_like_accepted_envelopes(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 3)
    collector.script = [(200, {"accepted": [3], "duplicates": [1, 2]}, {})]
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0))
    await uploader.upload_once()
    await uploader.close()
    assert pending(outbox) == []


async def test_it_honours_retry_after_on_503_and_keeps_the_envelopes(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 2)
    collector.script = [(503, {"error": "store busy"}, {"Retry-After": "120"})]
    ticks = Ticks()
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), ticks)
    await uploader.upload_once()
    assert pending(outbox) == [1, 2]
    assert uploader.waiting() == 120
    assert outbox.stats().last_upload_result == "sent 0 envelopes; last answer HTTP 503: store busy"

    ticks.advance(119)
    await uploader.upload_once()
    assert len(collector.batches) == 1, "nothing is sent before Retry-After has passed"

    ticks.advance(1)
    await uploader.upload_once()
    await uploader.close()
    assert collector.seqs_received == [[1, 2], [1, 2]]
    assert pending(outbox) == []


async def test_it_honours_retry_after_on_429(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(429, {"error": "slow down"}, {"Retry-After": "7"})]
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0))
    await uploader.upload_once()
    await uploader.close()
    assert uploader.waiting() == 7
    assert pending(outbox) == [1]


async def test_a_retry_after_longer_than_the_cap_is_capped(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(503, {"error": "maintenance"}, {"Retry-After": "3600"})]
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), backoff_cap=300.0)
    await uploader.upload_once()
    await uploader.close()
    assert uploader.waiting() == 300


@pytest.mark.parametrize("status", [500, 501, 502, 503, 504, 507, 599, 408, 429])
async def test_every_5xx_408_and_429_is_transient_and_backs_off_exponentially_up_to_the_cap(
    outbox: Outbox, identity: Identity, collector: FakeCollector, status: int
) -> None:
    fill(outbox, 3)
    collector.script = [(status, {"error": "down"}, {})] * 6
    ticks = Ticks()
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), ticks, backoff_base=2.0, backoff_cap=20.0)
    delays = []
    for _ in range(6):
        await uploader.upload_once()
        delays.append(uploader.waiting())
        wait_out(uploader, ticks)
    await uploader.close()
    assert delays == [2, 4, 8, 16, 20, 20]
    assert collector.seqs_received == [[1, 2, 3]] * 6, "one request per round: no resend loop"
    assert pending(outbox) == [1, 2, 3]
    assert outbox.rejected() == []


async def test_the_backoff_is_fully_jittered(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(503, {"error": "down"}, {})] * 2
    ticks = Ticks()
    draws = iter([0.25, 0.0])
    uploader = Uploader(
        outbox, identity, collector.url, clock=Clock(T0), rand=lambda: next(draws), backoff_base=8, monotonic=ticks
    )
    await uploader.upload_once()
    assert uploader.waiting() == 2.0  # 0.25 * 8
    wait_out(uploader, ticks)
    await uploader.upload_once()
    await uploader.close()
    assert uploader.waiting() == 0.0  # 0.0 * 16: full jitter may retry at once


async def test_a_network_error_is_retried_with_backoff(outbox: Outbox, identity: Identity) -> None:
    fill(outbox, 1)
    uploader = uploader_for(outbox, identity, f"http://127.0.0.1:{unused_port()}", Clock(T0), backoff_base=3.0)
    await uploader.upload_once()
    await uploader.close()
    assert uploader.waiting() == 3.0
    assert outbox.rejected() == []
    assert pending(outbox) == [1]
    assert "network error" in (outbox.stats().last_upload_result or "")


async def test_a_success_resets_the_backoff(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 2)
    collector.script = [(502, {}, {}), (502, {}, {})]
    ticks = Ticks()
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), ticks)
    for _ in range(3):
        wait_out(uploader, ticks)
        await uploader.upload_once()
    assert uploader.failures == 0
    outbox.put([heartbeat()], now=T0)
    collector.script = [(502, {}, {})]
    await uploader.upload_once()
    await uploader.close()
    assert uploader.waiting() == 1.0


async def test_a_refused_payload_is_isolated_and_only_the_bad_envelope_is_kept_as_rejected(
    outbox: Outbox, identity: Identity, collector: FakeCollector, caplog: pytest.LogCaptureFixture
) -> None:
    fill(outbox, 3)
    bad = {
        "error": "report does not match the schema",
        "problems": [{"field": "envelopes.0.signals.0.error", "message": "Field required"}],
    }

    def refuse_seq_2(batch: ReportBatch) -> tuple[int, object, dict[str, str]]:
        seqs = [e.seq for e in batch.envelopes]
        if 2 in seqs:
            return 422, bad, {}
        return 200, {"accepted": seqs, "duplicates": []}, {}

    collector.script = [refuse_seq_2] * 4
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0))
    with caplog.at_level(logging.ERROR, "agent.uploader"):
        await uploader.upload_once()
    assert collector.seqs_received == [[1, 2, 3], [1], [2], [3]]
    assert pending(outbox) == []
    [rejected] = outbox.rejected()
    assert rejected.seq == 2
    assert rejected.reason == (
        "HTTP 422: report does not match the schema (envelopes.0.signals.0.error: Field required)"
    )
    assert "rejected envelope 2" in caplog.text

    await uploader.upload_once()
    await uploader.close()
    assert len(collector.batches) == 4, "a rejected envelope is not sent again"
    assert outbox.stats().rejected == 1, "counted, for the heartbeat's refused_reports"


async def test_after_isolating_the_bad_envelope_it_goes_back_to_batches(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 6)
    size = len(outbox.pending(1)[0][1])

    def refuse_seq_2(batch: ReportBatch) -> tuple[int, object, dict[str, str]]:
        seqs = [e.seq for e in batch.envelopes]
        if 2 in seqs:
            return 400, {"error": "malformed JSON"}, {}
        return 200, {"accepted": seqs, "duplicates": []}, {}

    collector.script = [refuse_seq_2] * 10
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), batch_bytes=3 * size)
    await uploader.upload_once()
    await uploader.close()
    assert collector.seqs_received == [[1, 2, 3], [1], [2], [3], [4, 5, 6]]
    assert [r.seq for r in outbox.rejected()] == [2]
    assert pending(outbox) == []


async def test_an_oversized_single_envelope_is_rejected_not_retried(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(413, {"error": "body too large"}, {})]
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0))
    await uploader.upload_once()
    await uploader.close()
    assert [r.reason for r in outbox.rejected()] == ["HTTP 413: body too large"]
    assert uploader.not_before is None


async def test_a_refused_agent_is_logged_loudly_and_its_envelopes_stay_queued(
    outbox: Outbox, identity: Identity, collector: FakeCollector, caplog: pytest.LogCaptureFixture
) -> None:
    fill(outbox, 2)
    collector.script = [(401, {"error": "agent revoked"}, {})]
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), backoff_cap=300.0)
    with caplog.at_level(logging.ERROR, "agent.uploader"):
        await uploader.upload_once()
    await uploader.close()
    assert "THE COLLECTOR REFUSES THIS AGENT (HTTP 401: agent revoked)" in caplog.text
    assert pending(outbox) == [1, 2]
    assert outbox.rejected() == []
    assert uploader.waiting() == 300.0


@pytest.mark.parametrize("status", [403, 404, 405, 409, 410, 415])
async def test_a_4xx_that_does_not_name_the_envelopes_keeps_them_queued(
    outbox: Outbox, identity: Identity, collector: FakeCollector, status: int
) -> None:
    fill(outbox, 2)
    collector.script = [(status, {"error": "no"}, {})]
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), backoff_cap=300.0)
    await uploader.upload_once()
    await uploader.close()
    assert collector.seqs_received == [[1, 2]]
    assert pending(outbox) == [1, 2]
    assert outbox.rejected() == []
    assert uploader.waiting() == 300.0


async def test_a_2xx_that_names_no_envelope_deletes_nothing_and_backs_off(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(200, {"accepted": [], "duplicates": []}, {})]
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0))
    await uploader.upload_once()
    await uploader.close()
    assert pending(outbox) == [1]
    assert uploader.waiting() > 0


async def test_a_redirect_is_not_followed_and_keeps_the_envelopes_queued(
    outbox: Outbox, identity: Identity
) -> None:
    fill(outbox, 1)

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/elsewhere")

    async with loopback_server("/api/v1/reports", moved) as url:
        uploader = uploader_for(outbox, identity, url, Clock(T0))
        await uploader.upload_once()
        await uploader.close()
    assert outbox.rejected() == []
    assert pending(outbox) == [1]
    assert (outbox.stats().last_upload_result or "").startswith("sent 0 envelopes; last answer HTTP 302")


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = T0
    assert retry_after_seconds("30", now) == 30
    assert retry_after_seconds("Mon, 06 May 2024 07:01:00 GMT", now) == 60
    assert retry_after_seconds("Mon, 06 May 2024 06:00:00 GMT", now) == 0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
    assert retry_after_seconds("999999", now) == 3600


async def test_through_500s_then_408s_then_recovery_nothing_is_lost_or_rejected(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    """A collector (or proxy) failing with 500 for a while, then timing out with 408, then well again."""
    failing = [(500, {"error": "database is locked"}, {})] * 8 + [(408, {"error": "request timeout"}, {})] * 5
    collector.script = list(failing)
    ticks = Ticks()
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), ticks, backoff_cap=20.0)
    produced: list[int] = []
    requests_per_round = []
    while collector.script or pending(outbox):
        produced.append(outbox.put([unknown(error=f"report {len(produced)}")], now=T0))
        wait_out(uploader, ticks)
        before = len(collector.batches)
        await uploader.upload_once()
        requests_per_round.append(len(collector.batches) - before)
        assert len(produced) < 100
    await uploader.close()
    assert requests_per_round[:len(failing)] == [1] * len(failing), "one request per failing round, no loop"
    stored = [seq for batch in collector.seqs_received[len(failing):] for seq in batch]
    assert stored == produced, "every envelope produced reached the collector, once, in order"
    assert outbox.rejected() == []


async def test_while_the_collector_is_unreachable_the_backoff_is_capped_by_its_reconnection_hint(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(200, {"accepted": [1], "duplicates": []}, {RECONNECT_HEADER: "20"})]
    collector.script += [(503, {"error": "no upstream"}, {})] * 5
    ticks = Ticks()
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), ticks, backoff_base=4.0, backoff_cap=300.0)
    await uploader.upload_once()
    fill(outbox, 1)
    delays = []
    for _ in range(5):
        await uploader.upload_once()
        delays.append(uploader.waiting())
        wait_out(uploader, ticks)
    await uploader.close()
    assert delays == [4, 8, 16, 20, 20], "a gateway saying the collector is down: back within the hint"


async def test_without_a_hint_an_unreachable_collector_is_retried_at_least_every_minute(
    outbox: Outbox, identity: Identity
) -> None:
    fill(outbox, 1)
    ticks = Ticks()
    uploader = uploader_for(outbox, identity, f"http://127.0.0.1:{unused_port()}", Clock(T0), ticks,
                            backoff_base=16.0, backoff_cap=300.0)
    delays = []
    for _ in range(4):
        await uploader.upload_once()
        delays.append(uploader.waiting())
        wait_out(uploader, ticks)
    await uploader.close()
    assert delays == [16, 32, 60, 60]


async def test_a_collector_that_answers_but_fails_is_backed_off_up_to_the_full_cap(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(500, {"error": "bug"}, {RECONNECT_HEADER: "20"})] * 4
    ticks = Ticks()
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), ticks, backoff_base=64.0, backoff_cap=300.0)
    delays = []
    for _ in range(4):
        await uploader.upload_once()
        delays.append(uploader.waiting())
        wait_out(uploader, ticks)
    await uploader.close()
    assert delays == [64, 128, 256, 300]


@pytest.mark.parametrize(("hint", "cap"), [("5", 5.0), ("900", 300.0), ("soon", 60.0), ("0", 60.0), (None, 60.0)])
async def test_the_reconnection_hint_is_bounded_and_a_bad_one_ignored(
    outbox: Outbox, identity: Identity, collector: FakeCollector, hint: str | None, cap: float
) -> None:
    fill(outbox, 1)
    collector.script = [(200, {"accepted": [1], "duplicates": []}, {RECONNECT_HEADER: hint} if hint else {})]
    uploader = uploader_for(outbox, identity, collector.url, Clock(T0), backoff_cap=300.0)
    await uploader.upload_once()
    await uploader.close()
    assert uploader.reconnect_cap == cap


async def test_the_wall_clock_stepped_back_does_not_stretch_the_backoff(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(503, {"error": "busy"}, {"Retry-After": "30"})]
    clock, ticks = Clock(T0), Ticks()
    uploader = uploader_for(outbox, identity, collector.url, clock, ticks)
    await uploader.upload_once()
    clock.advance(hours=-6)  # an NTP correction of a clock that ran ahead
    ticks.advance(30)
    await uploader.upload_once()
    await uploader.close()
    assert collector.seqs_received == [[1], [1]]
    assert pending(outbox) == []


async def test_the_wall_clock_stepped_forward_does_not_cut_the_backoff_short(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    collector.script = [(503, {"error": "busy"}, {"Retry-After": "30"})]
    clock, ticks = Clock(T0), Ticks()
    uploader = uploader_for(outbox, identity, collector.url, clock, ticks)
    await uploader.upload_once()
    clock.advance(hours=6)
    ticks.advance(29)
    await uploader.upload_once()
    await uploader.close()
    assert collector.seqs_received == [[1]]


async def test_its_rounds_keep_going_when_the_wall_clock_is_stepped_back(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    """Rounds wait on the monotonic clock: a wall clock stepped back by hours does not stall them."""
    clock = Clock(T0)
    uploader = Uploader(outbox, identity, collector.url, clock=clock)
    rounds = asyncio.create_task(uploader.run(interval=0.01))
    try:
        for step in range(3):
            fill(outbox, 1)
            collector.received.clear()
            await asyncio.wait_for(collector.received.wait(), 30)
            clock.advance(hours=-6 * (step + 1))
    finally:
        await uploader.close()
        await rounds
    assert len(collector.batches) >= 3
    assert pending(outbox) == []


async def test_news_wakes_a_round_at_once_and_close_ends_the_rounds(
    outbox: Outbox, identity: Identity, collector: FakeCollector
) -> None:
    fill(outbox, 1)
    uploader = Uploader(outbox, identity, collector.url, clock=Clock(T0))
    rounds = asyncio.create_task(uploader.run(interval=3600))
    await asyncio.wait_for(collector.received.wait(), 30)  # the first round is immediate
    collector.received.clear()
    outbox.put([heartbeat()], now=T0)
    uploader.wake()
    await asyncio.wait_for(collector.received.wait(), 30)  # not an hour later
    await uploader.close()
    await asyncio.wait_for(rounds, 30)
    assert collector.seqs_received == [[1], [2]]


async def test_an_outbox_that_cannot_delete_what_was_acknowledged_backs_off_instead_of_resending_each_round(
    outbox: Outbox, identity: Identity, collector: FakeCollector, state_dir: Path
) -> None:
    fill(outbox, 1)
    outbox._db.execute("PRAGMA busy_timeout = 50")
    other = sqlite3.connect(state_dir / OUTBOX_FILE, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the outbox: the acknowledgement cannot be applied
    uploader = Uploader(outbox, identity, collector.url, clock=Clock(T0), rand=lambda: 1.0, backoff_base=30.0)
    rounds = asyncio.create_task(uploader.run(interval=0.01))
    try:
        await asyncio.wait_for(collector.received.wait(), 30)
        async with uploader._lock:  # the round has ended (its failure handled before the lock is free to us)
            pass
        assert uploader.waiting() > 20
        assert len(collector.batches) == 1
    finally:
        other.close()
        await uploader.close()
        await rounds
    assert pending(outbox) == [1], "kept: sent again after the wait, and acknowledged as a duplicate then"


async def test_upload_rounds_share_one_kept_alive_connection_and_a_closed_one_is_replaced(
    outbox: Outbox, identity: Identity
) -> None:
    # The third request finds its kept connection closed by the collector as it is sent (as a proxy's idle
    # timeout would): the uploader sends it again at once on a new connection, with no backoff, nothing lost.
    ports: list[int] = []

    async def reports(request: web.Request) -> web.Response:
        ports.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
        batch = ReportBatch.model_validate_json(await request.read())
        if len(ports) == 3:
            request.transport.close()  # type: ignore[union-attr]
        return web.json_response({"accepted": [e.seq for e in batch.envelopes], "duplicates": []})

    async with loopback_server("/api/v1/reports", reports) as url:
        uploader = uploader_for(outbox, identity, url, Clock(T0))
        for _ in range(4):
            fill(outbox, 1)
            await uploader.upload_once()
        await uploader.close()
    assert len(set(ports[:3])) == 1, "rounds reuse the connection"
    assert len(ports) == 5 and ports[3] != ports[2] and ports[4] == ports[3]
    assert pending(outbox) == [] and uploader.failures == 0 and not uploader.waiting()
