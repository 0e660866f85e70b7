"""Enrolment tokens: a client's site hands one to an agent's installer; only its hash is stored."""

from __future__ import annotations

import secrets
from datetime import timedelta

from collector.auth import token_hash
from collector.services.base import Service
from collector.services.errors import Conflict, NotFound
from collector.store.account_rows import EnrolmentTokenRow

PREFIX = "fp_enrol_"
# A token is pasted into install commands (chat, mail, tickets): by default it stops working after a week
# or after as many PCs as the largest site fieldpost is made for, whichever comes first.
DEFAULT_LIFETIME = timedelta(days=7)
DEFAULT_USES = 50
REFUSED_HINT = ("a new token is made with `fieldpost-collector token create` or on the dashboard under "
                "Settings page (Enrolment tokens)")


class Tokens(Service):
    """Enrolment tokens: create, list, revoke."""

    async def create(self, client: str, site: str, lifetime: timedelta | None = None,
                     uses: int | None = None, demo: bool = False) -> str:
        """A new token for a client's site (both created on first use; `demo`: mark the client as the demo
        client, kept out of billing); returns it, only its hash is kept. Conflict for an archived client or site."""
        token = PREFIX + secrets.token_urlsafe(24)
        now = self.clock()
        async with self.store.transaction() as tx:
            where = await tx.site(client, site)
            record = await tx.client(where.client_id)
            assert record is not None  # tx.site found or made it
            if record.archived_at is not None or site in record.archived_sites:
                archived = client if record.archived_at is not None else f"site {site} of {client}"
                raise Conflict(f"{archived} is archived: restore it before enrolling devices there")
            if demo and not record.demo:
                await tx.set_client_flags(where.client_id, None, True)
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
