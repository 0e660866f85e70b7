"""The uploader: drains the outbox to the collector in signed batches, backing off when told or failing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from agent.identity import Identity, collector_reason
from agent.outbox import Outbox
from agent.transport import collector_session
from shared.clock import Clock, system_clock
from shared.http import RECONNECT_HEADER
from shared.signing import sign_headers

log = logging.getLogger(__name__)

REPORTS_PATH = "/api/v1/reports"
# Worth trying again unchanged, besides every 5xx and every network error: the collector or a proxy
# timed out or asks for fewer requests. Nothing about them says the envelopes are wrong.
TRANSIENT = frozenset({408, 429})
# The only answers that name the payload itself as unacceptable: malformed (400), too large (413) or
# not matching the schema (422). Any other 3xx/4xx refuses this agent or the address, not the envelopes:
# they stay queued and are retried slowly.
INVALID = frozenset({400, 413, 422})
# Half the collector's default body limit (1 MiB), leaving room for a collector configured lower.
BATCH_BYTES = 512 * 1024
MAX_RETRY_AFTER = 3600.0
# The longest wait between tries while the collector cannot be reached (no answer, or a gateway saying it
# is down: 502/503/504 without Retry-After), until the collector's own hint says otherwise. Short, so that
# catch-up after an outage is not bounded by the backoff; a refused connection costs the collector nothing.
RECONNECT_CAP = 60.0
UNREACHABLE = frozenset({502, 503, 504})


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


def is_transient(status: int | None) -> bool:
    """True for an answer worth repeating unchanged after a wait: no answer, any 5xx, 408 or 429."""
    return status is None or status >= 500 or status in TRANSIENT


@dataclass(frozen=True)
class Answer:
    """What one POST got: a status and body, or the network error that prevented one."""

    status: int | None
    body: str = ""
    retry_after: str | None = None
    error: str | None = None
    # The collector's hint: seconds to wait at most between tries while it is unreachable.
    reconnect: str | None = None

    @property
    def what(self) -> str:
        """A short description for logs and `status`."""
        if self.status is None:
            return f"network error: {self.error}"
        return f"HTTP {self.status}: {collector_reason(self.body)}"


class Uploader:
    """Sends queued envelopes oldest first; deletes them only after a 2xx that names them.

    Waits are measured on `monotonic` (seconds), so a wall clock stepped back cannot stretch them.
    """

    def __init__(self, outbox: Outbox, identity: Identity, collector_url: str, *,
                 batch_bytes: int = BATCH_BYTES, timeout: float = 30.0, backoff_base: float = 1.0,
                 backoff_cap: float = 300.0, clock: Clock = system_clock,
                 rand: Callable[[], float] = random.random,
                 monotonic: Callable[[], float] = time.monotonic, tls: ssl.SSLContext | bool = True) -> None:
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
        self.monotonic = monotonic
        self.failures = 0
        self.reconnect_cap = min(RECONNECT_CAP, backoff_cap)
        # Nothing is sent before this monotonic time (None: no wait).
        self.not_before: float | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = False
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        """Let the batch in flight finish, then stop sending and close the connection."""
        self._stopping = True
        self._wake.set()
        async with self._lock:
            if self._session is not None:
                await self._session.close()
                self._session = None

    def wake(self) -> None:
        """Start an upload round now (news was queued); a backoff still holds."""
        self._wake.set()

    async def run(self, interval: float) -> None:
        """Upload rounds until `close()`: every `interval` seconds, sooner when woken or when a backoff ends.

        The waits are asyncio's, on the monotonic clock: a wall clock stepped back cannot stall them.
        """
        while not self._stopping:
            self._wake.clear()
            try:
                await self.upload_once()
            except Exception as exc:
                # The outbox failing (a full disk, a lock): back off like any failure, not a resend every round.
                delay = self._back_off(Answer(None, error=f"{type(exc).__name__}: {exc}"))
                log.exception("upload round failed; next try in %.1f s", delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.waiting() or interval)

    def waiting(self) -> float:
        """Seconds left before the next upload may be sent (0: none to wait)."""
        if self.not_before is None:
            return 0.0
        return max(0.0, self.not_before - self.monotonic())

    def _wait(self, seconds: float) -> float:
        """Send nothing for `seconds`; returns them."""
        self.not_before = self.monotonic() + seconds
        return seconds

    def _back_off(self, answer: Answer) -> float:
        """Wait as the collector asked, else exponentially longer with full jitter; never over the cap,
        and while the collector is unreachable never over its reconnection hint."""
        self.failures += 1
        retry_after = retry_after_seconds(answer.retry_after, self.clock())
        if retry_after is not None:
            return self._wait(min(retry_after, self.backoff_cap))
        cap = self.reconnect_cap if answer.status is None or answer.status in UNREACHABLE else self.backoff_cap
        return self._wait(self.rand() * min(cap, self.backoff_base * 2 ** (self.failures - 1)))

    def _take_hint(self, answer: Answer) -> None:
        """Adopt the collector's reconnection hint (bounded by the backoff cap); a bad one is ignored."""
        try:
            hint = float(answer.reconnect or "")
        except ValueError:
            return
        if hint > 0:
            self.reconnect_cap = min(hint, self.backoff_cap)

    async def _post(self, batch: list[tuple[int, str]]) -> Answer:
        """POST one signed report batch."""
        body = ('{"envelopes":[' + ",".join(envelope for _, envelope in batch) + "]}").encode()
        headers = sign_headers(self.identity.key, self.identity.agent_id, "POST", REPORTS_PATH, body,
                               int(self.clock().timestamp()))
        headers["Content-Type"] = "application/json"
        if self._session is None:
            self._session = collector_session(self.tls, self.timeout)
        try:
            try:
                return await self._send(self._session, body, headers)
            except aiohttp.ServerDisconnectedError:
                # The kept connection was closed by the collector (or a proxy) as this was sent: once more on a
                # new one. Safe: an envelope that did arrive is acknowledged again as a duplicate.
                return await self._send(self._session, body, headers)
        except aiohttp.ClientSSLError as exc:
            return Answer(None, error=f"the collector's certificate is not trusted ({exc}); "
                                      "check agent.ca_file and collector_url")
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return Answer(None, error=str(exc) or type(exc).__name__)

    async def _send(self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]) -> Answer:
        """POST the body on the session's connection (kept alive between rounds) and read the answer."""
        # No redirects: a redirected POST would arrive as a GET, and the signature names the path.
        async with session.post(self.url, data=body, headers=headers, allow_redirects=False) as resp:
            return Answer(resp.status, await resp.text(), resp.headers.get("Retry-After"),
                          reconnect=resp.headers.get(RECONNECT_HEADER))

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
        4. No answer, any 5xx, 408 or 429: stop; wait Retry-After, else back off exponentially with
           full jitter, both capped (while the collector is unreachable, by its reconnection hint);
           the envelopes stay queued.
        5. 400/413/422 name the payload as invalid: resend the envelopes of that batch one at a time,
           and keep one refused alone as rejected (kept, counted, reported; not resent).
        6. Any other answer (3xx, 401, 403, 404, ...) refuses this agent or the address: log loudly,
           keep all, wait the longest.
        """
        if self.waiting():
            return
        async with self._lock:
            sent = 0
            # Envelopes up to this seq are sent one at a time, to find the one an invalid batch holds.
            isolate_to = 0
            answer: Answer | None = None
            while not self._stopping:
                batch = self.outbox.pending(self.batch_bytes)
                if not batch:
                    break
                if batch[0][0] <= isolate_to:
                    batch = batch[:1]
                answer = await self._post(batch)
                self._take_hint(answer)
                status = answer.status
                if status is not None and 200 <= status < 300 and (acked := self._ack(batch, answer)):
                    sent += acked
                    self.failures = 0
                    continue
                # A 2xx naming none of the batch would loop forever; treat it as a failure to retry.
                if is_transient(status) or 200 <= (status or 0) < 300:
                    delay = self._back_off(answer)
                    log.warning("upload of %d envelopes failed (%s); next try in %.1f s",
                                len(batch), answer.what, delay)
                    break
                if status not in INVALID:
                    self.failures += 1
                    self._wait(self.backoff_cap)
                    log.error("THE COLLECTOR REFUSES THIS AGENT (%s) at %s. Envelopes stay queued and are "
                              "retried every %.0f s. Check collector_url; if this device was revoked, enrol "
                              "it again with `fieldpost-agent enroll --force`.", answer.what, self.url,
                              self.backoff_cap)
                    break
                if len(batch) > 1:
                    isolate_to = batch[-1][0]
                    continue
                self.outbox.mark_rejected(batch[0][0], answer.what)
                log.error("the collector rejected envelope %d (%s); it is kept in the outbox, not resent "
                          "(%d rejected in all, reported with the heartbeat)",
                          batch[0][0], answer.what, self.outbox.stats().rejected)
            if answer is not None:
                result = f"sent {sent} envelopes"
                if not (answer.status and 200 <= answer.status < 300):
                    result += f"; last answer {answer.what}"
                self.outbox.record_upload(result, self.clock())
