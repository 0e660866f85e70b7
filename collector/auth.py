"""Authentication: agents sign every request with their Ed25519 key; technicians send a bearer token."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey

from collector.settings import Settings
from collector.store import AgentRow, Store
from shared.signing import AGENT_HEADER, SIGNATURE_HEADER, TIME_HEADER, signed_message

# Where the SHA-256 of the technician token is kept (`fieldpost-collector admin-token` replaces it).
ADMIN_TOKEN_META = "technician_token_hash"
# Parsed agent keys kept; past this many devices the oldest kept is read again when it next reports.
KEPT_KEYS = 100_000


class AuthError(Exception):
    """A request is not authenticated; the message is the reason given to the caller."""


class ClockSkew(AuthError):
    """A request rightly signed by a known agent whose clock is too far off the collector's."""

    def __init__(self, message: str, agent: AgentRow, offset_seconds: int) -> None:
        super().__init__(message)
        self.agent = agent
        self.offset_seconds = offset_seconds


def verify(key: VerifyKey, agent_id: str, method: str, path: str, body: bytes, timestamp: int, signature: str) -> bool:
    """True when `signature` is the agent's signature over this request.

    Checked with libsodium, not OpenSSL: 56 against 115 µs a check on the development machine, and every
    report pays it.
    """
    try:
        key.verify(signed_message(agent_id, method, path, timestamp, body),
                   base64.b64decode(signature, validate=True))
    except (CryptoError, binascii.Error):
        return False
    return True


def token_hash(token: str) -> str:
    """How a token is kept: only its SHA-256, so a leaked database grants nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


async def technician_allowed(presented: str | None, store: Store, settings: Settings) -> bool:
    """True when the presented technician token is the current one (compared in constant time).

    The stored hash is read on every request, not kept: a token rotated by the CLI (or by another
    collector process on the same database) takes effect at once.
    """
    if not presented:
        return False
    if settings.admin_token:
        expected = token_hash(settings.admin_token)
    else:
        async with store.read() as tx:
            expected = await tx.get_meta(ADMIN_TOKEN_META) or ""
    return bool(expected) and hmac.compare_digest(token_hash(presented), expected)


def admitted(agent_id: str, agent: AgentRow | None) -> AgentRow:
    """The row of the agent that signed a request, as stored now, when it may report; AuthError saying why not."""
    if agent is None:
        raise AuthError(f"unknown agent {agent_id!r}: enrol it again with a new token")
    if agent.revoked:
        raise AuthError(f"agent {agent_id!r} was revoked")
    return agent


class AgentAuthenticator:
    """Verifies agents' request signatures.

    An agent id's public key never changes, so it is read once and kept (parsed). Whether the agent is
    still enrolled and not revoked is not kept: ingest reads the agent's row in the very transaction that
    stores the report (`Store.reporting_agents`, one query per group commit) and refuses it there, so a
    device revoked by the CLI, the dashboard or another collector process is refused from its next request on.
    """

    def __init__(self, store: Store, skew_seconds: int, keep: int = KEPT_KEYS) -> None:
        self._store = store
        self._skew = skew_seconds
        self._keep = keep
        self._keys: dict[str, VerifyKey] = {}

    async def _row(self, agent_id: str) -> AgentRow:
        """The agent's row as stored now, or AuthError when it is unknown or revoked."""
        async with self._store.read() as tx:
            agent = await tx.agent(agent_id)
        return admitted(agent_id, agent)

    async def _key(self, agent_id: str) -> VerifyKey:
        """The agent's public key: read (only while the agent is not revoked) and parsed once, then kept."""
        key = self._keys.get(agent_id)
        if key is None:
            key = VerifyKey((await self._row(agent_id)).public_key)
            if len(self._keys) >= self._keep:
                self._keys.pop(next(iter(self._keys)))  # the oldest kept goes; it is read again when needed
            self._keys[agent_id] = key
        return key

    async def authenticate(
        self, headers: Mapping[str, str], method: str, path: str, body: bytes, now: float
    ) -> str:
        """The id of the agent that signed this request, or AuthError with the reason.

        The caller must still refuse the agent unless `admitted` passes its row as stored when the
        report is (ingest does, in the storing transaction).
        """
        agent_id = headers.get(AGENT_HEADER)
        stamp = headers.get(TIME_HEADER)
        signature = headers.get(SIGNATURE_HEADER)
        if not agent_id or not stamp or not signature:
            raise AuthError(f"missing {AGENT_HEADER}, {TIME_HEADER} or {SIGNATURE_HEADER} header")
        try:
            timestamp = int(stamp)
        except ValueError:
            raise AuthError(f"{TIME_HEADER} is not a Unix time") from None
        if not verify(await self._key(agent_id), agent_id, method, path, body, timestamp, signature):
            raise AuthError("signature does not match: the request was altered or signed with another key")
        # Checked after the signature, so that only the agent itself can have its clock counted as off.
        if abs(now - timestamp) > self._skew:
            raise ClockSkew(
                f"request time is {int(timestamp - now):+d} s from the collector's clock "
                f"(allowed ±{self._skew} s): check the PC's clock", await self._row(agent_id), int(timestamp - now),
            )
        return agent_id
