"""The benchmark's simulated agents: each enrols like the real agent and signs prepared uploads."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nacl.signing import SigningKey

from shared.base import Signal
from shared.signing import enrol_request, sign_headers
from shared.wire import SCHEMA_VERSION, Envelope, Heartbeat, ReportBatch

REPORTS = "/api/v1/reports"


@dataclass
class BenchAgent:
    """A device's key and id, numbering its uploads as the real agent's outbox does."""

    hostname: str
    agent_id: str = ""
    key: SigningKey = field(default_factory=SigningKey.generate)
    seq: int = 0

    def enrol_body(self, token: str) -> dict[str, str]:
        """What it posts to /api/v1/enrol."""
        return enrol_request(self.key, token, self.hostname)

    def upload(self, signal: Signal) -> bytes:
        """The body of its next upload: one envelope holding `signal`."""
        self.seq += 1
        envelope = Envelope(schema_version=SCHEMA_VERSION, agent_id=self.agent_id, seq=self.seq, boot_id="bench",
                            sent_at=signal.collected_at, signals=[signal])
        return ReportBatch(envelopes=[envelope]).model_dump_json().encode()

    def headers(self, body: bytes) -> dict[str, str]:
        """Signed headers for an upload, stamped now (the collector checks the time against its own)."""
        signed = sign_headers(self.key, self.agent_id, "POST", REPORTS, body, int(time.time()))
        return {**signed, "Content-Type": "application/json"}

    def heartbeat(self) -> Heartbeat:
        """A heartbeat collected now."""
        now = datetime.now(UTC)
        return Heartbeat(collected_at=now, hostname=self.hostname, os_name="Linux", os_version="Debian 12",
                         agent_version="0.1.0", boot_time=now, uptime_seconds=0, cpu_count=2, cpu_percent=5.0,
                         memory_total_bytes=8 << 30, memory_used_percent=40.0)
