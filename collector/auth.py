"""Authentication: agents sign every request with their Ed25519 key; technicians send a bearer token."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector.store import AgentRow, Store
from shared.signing import AGENT_HEADER, SIGNATURE_HEADER, TIME_HEADER, verify


class AuthError(Exception):
    """A request is not authenticated; the message is the reason given to the caller."""


class ClockSkew(AuthError):
    """A request rightly signed by a known agent whose clock is too far off the collector's."""

    def __init__(self, message: str, agent: AgentRow, offset_seconds: int) -> None:
        super().__init__(message)
        self.agent = agent
        self.offset_seconds = offset_seconds


def token_hash(token: str) -> str:
    """How a token is kept: only its SHA-256, so a leaked database grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


def technician_allowed(presented: str | None, expected_hash: str) -> bool:
    """True when the presented technician token matches (compared in constant time)."""
    if not presented:
        return False
    return hmac.compare_digest(token_hash(presented), expected_hash)


class AgentAuthenticator:
    """Verifies agents' request signatures, keeping parsed public keys for `cache_seconds`."""

    def __init__(self, store: Store, skew_seconds: int, cache_seconds: float = 30.0) -> None:
        self._store = store
        self._skew = skew_seconds
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, AgentRow, Ed25519PublicKey]] = {}

    async def _lookup(self, agent_id: str) -> tuple[AgentRow, Ed25519PublicKey]:
        cached = self._cache.get(agent_id)
        if cached is not None and time.monotonic() - cached[0] < self._cache_seconds:
            return cached[1], cached[2]
        async with self._store.read() as tx:
            agent = await tx.agent(agent_id)
        if agent is None:
            raise AuthError(f"unknown agent {agent_id!r}: enrol it again with a new token")
        key = Ed25519PublicKey.from_public_bytes(agent.public_key)
        self._cache[agent_id] = (time.monotonic(), agent, key)
        return agent, key

    async def authenticate(
        self, headers: Mapping[str, str], method: str, path: str, body: bytes, now: float
    ) -> AgentRow:
        """The agent that signed this request, or AuthError with the reason."""
        agent_id = headers.get(AGENT_HEADER)
        stamp = headers.get(TIME_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if not agent_id or not stamp or not signature:
            raise AuthError(f"missing {AGENT_HEADER}, {TIME_HEADER} or {SIGNATURE_HEADER} header")
        try:
            timestamp = int(stamp)
        except ValueError:
            raise AuthError(f"{TIME_HEADER} is not a Unix time") from None
        agent, key = await self._lookup(agent_id)
        if agent.revoked:
            raise AuthError(f"agent {agent_id!r} was revoked")
        if not verify(key, agent_id, method, path, body, timestamp, signature):
            raise AuthError("signature does not match: the request was altered or signed with another key")
        # Checked after the signature, so that only the agent itself can have its clock counted as off.
        if abs(now - timestamp) > self._skew:
            raise ClockSkew(
                f"request time is {int(timestamp - now):+d} s from the collector's clock "
                f"(allowed ±{self._skew} s): check the PC's clock", agent, int(timestamp - now),
            )
        return agent
