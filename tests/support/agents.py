"""Simulated agents for the tests: they enrol and sign like the real one, on the clock the test gives them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nacl.signing import SigningKey

from shared.clock import Clock, system_clock
from shared.signing import enrol_request, sign_headers
from shared.wire import SCHEMA_VERSION, Heartbeat

REPORTS = "/api/v1/reports"


def heartbeat(hostname: str, at: datetime | None = None) -> Heartbeat:
    """A plausible heartbeat from `hostname` (collected now, by the wall clock, unless `at` says when)."""
    at = at or system_clock()
    return Heartbeat(
        collected_at=at, hostname=hostname, os_name="Windows", os_version="10.0.22631", agent_version="0.1.0",
        boot_time=at, uptime_seconds=3600, cpu_count=4, cpu_percent=7.5, memory_total_bytes=16 << 30,
        memory_used_percent=48.0,
    )


@dataclass
class SimAgent:
    """An agent's key and identity, and the envelopes it has numbered so far.

    `clock` is its time (what it stamps and signs with): the collector's clock of the test, so that both
    sides agree on "now" whatever the calendar says.
    """

    hostname: str
    key: SigningKey = field(default_factory=SigningKey.generate)
    agent_id: str = ""
    seq: int = 0
    clock: Clock = system_clock

    def enrol_body(self, token: str) -> dict[str, str]:
        """The JSON body of an enrolment request."""
        return enrol_request(self.key, token, self.hostname)

    def envelope(self, signals: list[Any] | None = None, seq: int | None = None) -> dict[str, Any]:
        """The next envelope (or one with a chosen `seq`) as JSON-ready data."""
        if seq is None:
            self.seq += 1
            seq = self.seq
        signals = signals or [heartbeat(self.hostname, self.clock())]
        return {
            "schema_version": SCHEMA_VERSION, "agent_id": self.agent_id, "seq": seq, "boot_id": "boot-1",
            "sent_at": self.clock().isoformat(),
            "signals": [s.model_dump(mode="json") for s in signals],
        }

    def body(self, *envelopes: dict[str, Any]) -> bytes:
        """A report batch body."""
        return json.dumps({"envelopes": list(envelopes)}).encode()

    def headers(self, body: bytes, timestamp: int | None = None, path: str = REPORTS) -> dict[str, str]:
        """Signed headers for a report upload."""
        stamp = int(self.clock().timestamp()) if timestamp is None else timestamp
        return {**sign_headers(self.key, self.agent_id, "POST", path, body, stamp),
                "Content-Type": "application/json"}
