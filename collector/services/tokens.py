"""Enrolment tokens: a client's site hands one to an agent's installer; only its hash is stored."""

from __future__ import annotations

import secrets
from datetime import timedelta

from collector.auth import token_hash
from collector.services.base import Service
from collector.services.errors import NotFound
from collector.store.account_rows import EnrolmentTokenRow

PREFIX = "fp_enrol_"


class Tokens(Service):
    """Enrolment tokens: create, list, revoke."""

    async def create(self, client: str, site: str, lifetime: timedelta | None = None,
                     uses: int | None = None) -> str:
        """A new token for a client's site (both created on first use); returns it, only its hash is kept."""
        token = PREFIX + secrets.token_urlsafe(24)
        now = self.clock()
        async with self.store.transaction() as tx:
            where = await tx.site(client, site)
            await tx.add_enrolment_token(token_hash(token), where, now, now + lifetime if lifetime else None, uses)
        return token

    async def list(self) -> list[EnrolmentTokenRow]:
        """Every enrolment token (hashes only)."""
        async with self.store.read() as tx:
            return await tx.enrolment_tokens()

    async def revoke(self, hashed: str) -> None:
        """Stop the token with this hash from enrolling more PCs."""
        async with self.store.transaction() as tx:
            if not await tx.revoke_enrolment_token(hashed, self.clock()):
                raise NotFound("no such token, or it was revoked before")
