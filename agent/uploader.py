"""The uploader: drains the outbox to the collector in signed batches, backing off when told or failing."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import aiohttp

from agent.identity import Identity, collector_reason
from agent.outbox import Outbox
from agent.transport import collector_session
from shared.clock import Clock, system_clock
from shared.signing import sign_headers

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
# Worth trying again unchanged: the collector is busy, restarting or behind a failing proxy.
RETRYABLE = frozenset({429, 502, 503, 504})
# A refusal of this agent or of the address (3xx too: e.g. http redirected to https), not of the
# envelopes: they stay queued and are retried slowly.
REFUSED = frozenset({401, 403, 404})
# Half the collector's default body limit (1 MiB), leaving room for a collector configured lower.
BATCH_BYTES = 512 * 1024
MAX_RETRY_AFTER = 3600.0


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta-seconds or HTTP-date); None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - now).total_seconds()), MAX_RETRY_AFTER)


@dataclass(frozen=True)
class Answer:
    """What one POST got: a status and body, or the network error that prevented one."""

    status: int | None
    body: str = ""
    retry_after: str | None = None
    error: str | None = None

    @property
    def what(self) -> str:
        """A short description for logs and `status`."""
        if self.status is None:
            return f"network error: {self.error}"
        return f"HTTP {self.status}: {collector_reason(self.body)}"


class Uploader:
    """Sends queued envelopes oldest first; deletes them only after a 2xx that names them."""

    def __init__(self, outbox: Outbox, identity: Identity, collector_url: str, *,
                 batch_bytes: int = BATCH_BYTES, timeout: float = 30.0, backoff_base: float = 1.0,
                 backoff_cap: float = 300.0, clock: Clock = system_clock,
                 rand: Callable[[], float] = random.random, tls: ssl.SSLContext | bool = True) -> None:
        self.outbox = outbox
        self.tls = tls
        self.identity = identity
        self.url = collector_url.rstrip("/") + REPORTS_PATH
        self.batch_bytes = batch_bytes
        self.timeout = timeout
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.clock = clock
        self.rand = rand
        self.failures = 0
        # Nothing is sent before this time (None: no wait).
        self.not_before: datetime | None = None
        self._lock = asyncio.Lock()
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Let the batch in flight finish, then stop sending and close the connection."""
        self._stopping = True
        async with self._lock:
            if self._session is not None:
                await self._session.close()
                self._session = None

    def _wait(self, seconds: float) -> float:
        """Send nothing for `seconds`; returns them."""
        self.not_before = self.clock() + timedelta(seconds=seconds)
        return seconds

    def _back_off(self, retry_after: float | None) -> float:
        """Wait as the collector asked, else exponentially longer with full jitter."""
        self.failures += 1
        if retry_after is not None:
            return self._wait(retry_after)
        return self._wait(self.rand() * min(self.backoff_cap, self.backoff_base * 2 ** (self.failures - 1)))

    async def _post(self, batch: list[tuple[int, str]]) -> Answer:
        """POST one signed report batch."""
        body = ('{"envelopes":[' + ",".join(envelope for _, envelope in batch) + "]}").encode()
        headers = sign_headers(self.identity.key, self.identity.agent_id, "POST", REPORTS_PATH, body,
                               int(self.clock().timestamp()))
        headers["Content-Type"] = "application/json"
        if self._session is None:
            self._session = collector_session(self.tls, self.timeout)
        try:
            # No redirects: a redirected POST would arrive as a GET, and the signature names the path.
            post = self._session.post(self.url, data=body, headers=headers, allow_redirects=False)
            async with post as resp:
                return Answer(resp.status, await resp.text(), resp.headers.get("Retry-After"))
        except aiohttp.ClientSSLError as exc:
            return Answer(None, error=f"the collector's certificate is not trusted ({exc}); "
                                      "check agent.ca_file and collector_url")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Answer(None, error=str(exc) or type(exc).__name__)

    def _ack(self, batch: list[tuple[int, str]], answer: Answer) -> int:
        """Delete the envelopes a 2xx answer names as accepted or duplicate; returns how many."""
        try:
            result = json.loads(answer.body)
            named = set(result["accepted"]) | set(result["duplicates"])
        except (ValueError, KeyError, TypeError):
            return 0
        return self.outbox.ack([seq for seq, _ in batch if seq in named])

    async def upload_once(self) -> None:
        """One upload round, the uploader's scheduled job.

        1. While backing off, do nothing.
        2. Send batches of pending envelopes, oldest first, until none are left (or the agent stops).
        3. 2xx: delete the envelopes it names.
        4. 429/502/503/504 or no answer: stop; wait Retry-After, else back off exponentially with jitter.
        5. 3xx/401/403/404 (this agent or address is refused): log loudly, keep all, wait the longest.
        6. Any other answer refuses the payload: resend one envelope at a time to find the bad one,
           and keep that one as rejected (not resent) with the collector's reason.
        """
        if self.not_before is not None and self.clock() < self.not_before:
            return
        async with self._lock:
            sent = 0
            single = False
            answer: Answer | None = None
            while not self._stopping:
                batch = self.outbox.pending(1 if single else self.batch_bytes)
                if not batch:
                    break
                answer = await self._post(batch)
                status = answer.status
                if status is not None and 200 <= status < 300 and (acked := self._ack(batch, answer)):
                    sent += acked
                    self.failures = 0
                    continue
                # A 2xx naming none of the batch would loop forever; treat it as a failure to retry.
                if status is None or status in RETRYABLE or 200 <= status < 300:
                    delay = self._back_off(retry_after_seconds(answer.retry_after, self.clock()))
                    log.warning("upload of %d envelopes failed (%s); next try in %.1f s",
                                len(batch), answer.what, delay)
                    break
                if status in REFUSED or 300 <= status < 400:
                    self.failures += 1
                    self._wait(self.backoff_cap)
                    log.error("THE COLLECTOR REFUSES THIS AGENT (%s) at %s. Envelopes stay queued and are "
                              "retried every %.0f s. Check collector_url; if this device was revoked, enrol "
                              "it again with `fieldpost-agent enroll --force`.", answer.what, self.url,
                              self.backoff_cap)
                    break
                if len(batch) > 1:
                    single = True
                    continue
                self.outbox.mark_rejected(batch[0][0], answer.what)
                log.error("the collector rejected envelope %d (%s); it is kept in the outbox, not resent",
                          batch[0][0], answer.what)
            if answer is not None:
                result = f"sent {sent} envelopes"
                if not (answer.status and 200 <= answer.status < 300):
                    result += f"; last answer {answer.what}"
                self.outbox.record_upload(result, self.clock())
