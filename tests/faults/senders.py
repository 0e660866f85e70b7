"""Simulated devices that send signed reports in small batches and remember what the collector acknowledged.

They run on an event loop of their own in a background thread, so a test can cut the collector's power
while reports are in flight.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import threading
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp

from bench.agents import REPORTS, BenchAgent
from shared.wire import SCHEMA_VERSION, Envelope, ReportBatch

ENROL = "/api/v1/enrol"


@dataclass
class Sender:
    """One device's stream: every batch is resent as it was until the collector names it stored."""

    device: BenchAgent
    epoch: str = field(default_factory=lambda: secrets.token_hex(8))
    # (epoch, seq) of every envelope a 200 answer named as accepted or duplicate: what the device may delete.
    acknowledged: set[tuple[str, int]] = field(default_factory=set)
    next_seq: int = 1

    def batch(self, size: int) -> tuple[bytes, list[int]]:
        """The body of the next `size` envelopes (one heartbeat each), and their sequence numbers."""
        seqs = list(range(self.next_seq, self.next_seq + size))
        self.next_seq += size
        envelopes = [Envelope(schema_version=SCHEMA_VERSION, agent_id=self.device.agent_id, epoch=self.epoch,
                              seq=seq, boot_id="powercut", sent_at=(beat := self.device.heartbeat()).collected_at,
                              signals=[beat]) for seq in seqs]
        return ReportBatch(envelopes=envelopes).model_dump_json().encode(), seqs

    async def run(self, session: aiohttp.ClientSession, url: str, stopping: threading.Event,
                  rand: random.Random) -> None:
        """Send batches of 1 to 3 envelopes back to back until `stopping` is set."""
        while not stopping.is_set():
            body, seqs = self.batch(rand.randint(1, 3))
            while not stopping.is_set():
                if await self._send(session, url, body, seqs):
                    break
                await asyncio.sleep(0.05)

    async def _send(self, session: aiohttp.ClientSession, url: str, body: bytes, seqs: list[int]) -> bool:
        """POST one batch; True when the answer names all of it stored."""
        try:
            async with session.post(url + REPORTS, data=body, headers=self.device.headers(body)) as response:
                if response.status != 200:
                    return False
                answer = await response.json()
        except (aiohttp.ClientError, OSError, TimeoutError):
            return False
        named = set(answer["accepted"]) | set(answer["duplicates"])
        self.acknowledged |= {(self.epoch, seq) for seq in seqs if seq in named}
        return named >= set(seqs)


async def enrol(url: str, token: str, count: int) -> list[Sender]:
    """Enrol `count` devices with one multi-use token."""
    senders = []
    async with aiohttp.ClientSession() as session:
        for n in range(count):
            device = BenchAgent(f"POWER-{n:02d}")
            async with session.post(url + ENROL, json=device.enrol_body(token)) as response:
                response.raise_for_status()
                device.agent_id = (await response.json())["agent_id"]
            senders.append(Sender(device))
    return senders


class Traffic:
    """The senders, running in a background thread for the `with` block."""

    def __init__(self, url: str, senders: list[Sender], seed: int) -> None:
        self.url = url
        self.senders = senders
        self.rand = random.Random(seed)
        self.stopping = threading.Event()
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        """The thread: run the senders, keeping what made them fail for the test to raise."""
        try:
            asyncio.run(self._run())
        except BaseException as exc:
            self.failure = exc

    async def _run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await asyncio.gather(*(sender.run(session, self.url, self.stopping, self.rand)
                                   for sender in self.senders))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stopping.set()
        self._thread.join(30)
        if self.failure is not None and exc is None:
            raise RuntimeError("the senders failed") from self.failure
