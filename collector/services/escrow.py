"""Recovery-key escrow: the per-client switch (off unless a technician turns it on), the collector's X25519
escrow key, the sealed keys devices send, a technician's reveal (recorded) and the explicit purge.

Turning escrow off stops devices sending keys and deletes nothing: the keys kept stay revealable until a
technician purges them (`purge`), which is recorded like every change.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import Field

from collector.services.base import Service
from collector.services.clients import client_id_of
from collector.services.errors import Conflict, NotFound
from collector.services.inputs import Input
from collector.store import EscrowedKeyRow, EscrowPolicy, Store, Tx
from shared.clock import Clock
from shared.escrow import SealedKey, SealRefused, new_private_key, open_sealed, public_of

log = logging.getLogger(__name__)

NO_KEY_FILE = ("recovery-key escrow needs collector.escrow_key_file with a PostgreSQL database (the same file on "
               "every collector): set it and restart the collector")


class EscrowKey:
    """The collector's X25519 escrow key, in an owner-only file (0600) apart from the database: a copy of the
    database alone opens no escrowed key. Created at first use; the first one written stands."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def private(self) -> str:
        """The private key, raw in base64, created when there is none yet; Conflict without a file to keep it in."""
        if self.path is None:
            raise Conflict(NO_KEY_FILE)
        if not self.path.exists():
            # Written whole under a temporary name, then linked into place: a collector starting at the same
            # moment finds either no file or a complete one, and the first link stands.
            temporary = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
            try:
                with os.fdopen(fd, "w") as out:
                    out.write(new_private_key() + "\n")
                    out.flush()
                    os.fsync(out.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(temporary, self.path)
            finally:
                temporary.unlink(missing_ok=True)
        text = self.path.read_text().strip()
        try:
            public_of(text)
        except ValueError as exc:
            raise Conflict(f"the escrow key file {self.path} is damaged ({exc}): restore it from its backup") from exc
        return text

    def public(self) -> str | None:
        """The public key agents seal to, or None when no file can keep the key (escrow stays off)."""
        return public_of(self.private()) if self.path is not None else None


async def escrow_public_key(tx: Tx, client_id: int, key: EscrowKey) -> tuple[str, int] | None:
    """The escrow public key and round the client's devices seal to, or None when the client's escrow is off
    (or no escrow key can be kept)."""
    policy = await tx.escrow_policy(client_id)
    if policy is None or not policy.enabled:
        return None
    public = key.public()
    if public is None:
        log.warning("escrow is on for client %d but no escrow key file is set: its devices are told off", client_id)
        return None
    return public, policy.round


async def new_documents(tx: Tx, client_id: int) -> None:
    """A new document version for each of the client's sites, so their agents fetch the escrow change."""
    for site_id in await tx.site_ids(client_id):
        await tx.config_version(site_id, bump=True)


class EscrowInput(Input):
    """Turn the client's recovery-key escrow on or off."""

    enabled: bool


class RevealInput(Input):
    """Which volume's recovery password to reveal."""

    volume: str = Field(min_length=1, max_length=256)


@dataclass(frozen=True)
class Revealed:
    """One recovery password opened for a technician."""

    volume: str
    protector_id: str
    escrowed_at: datetime
    password: str


class Escrow(Service):
    """Recovery-key escrow per client and device."""

    def __init__(self, store: Store, clock: Clock, key: EscrowKey) -> None:
        super().__init__(store, clock)
        self.key = key

    async def policy(self, client: str) -> EscrowPolicy | None:
        """The client's escrow switch; None: never turned on (off)."""
        async with self.store.read() as tx:
            return await tx.escrow_policy(await client_id_of(tx, client))

    async def turn(self, client: str, enabled: bool, by: str) -> EscrowPolicy:
        """Turn the client's escrow on or off; its sites' documents get a new version, so agents learn it.
        Turning it on starts a new round: devices send their keys again (a purge may have deleted them)."""
        if enabled:
            self.key.private()  # made now, or refused now (nowhere to keep it) rather than at the first reveal
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, client)
            policy = await tx.set_escrow_policy(client_id, enabled, self.clock(), by, next_round=enabled)
            await new_documents(tx, client_id)
            await self.publish(tx, "escrow.changed", {
                "client": client, "enabled": enabled, "by": by,
                "summary": f"recovery-key escrow turned {'on' if enabled else 'off'} by {by}"})
        return policy

    async def keys(self, agent_id: str) -> list[EscrowedKeyRow]:
        """The device's escrowed keys (sealed; nothing is opened)."""
        async with self.store.read() as tx:
            return await tx.escrowed_keys(agent_id)

    async def reveal(self, agent_id: str, volume: str, by: str) -> list[Revealed]:
        """Open the device's escrowed keys of `volume` for technician `by`; recorded in the device's history."""
        async with self.store.transaction() as tx:
            agent = await tx.agent(agent_id)
            if agent is None:
                raise NotFound(f"there is no device {agent_id!r}")
            rows = [row for row in await tx.escrowed_keys(agent_id) if row.volume.lower() == volume.lower()]
            if not rows:
                raise NotFound(f"{agent.hostname} has no recovery key escrowed for volume {volume!r}")
            private = self.key.private()
            try:
                revealed = [Revealed(row.volume, row.protector_id, row.escrowed_at,
                                     open_sealed(private, agent_id, row.volume, row.protector_id,
                                                 SealedKey.model_validate_json(row.sealed)))
                            for row in rows]
            except SealRefused as exc:
                raise Conflict(f"{exc}; or the escrow key file {self.key.path} is not the one it was sealed "
                               "to") from exc
            await self.publish(tx, "escrow.revealed", {
                "agent_id": agent_id, "hostname": agent.hostname, "client": agent.site.client_name,
                "site": agent.site.site_name, "volume": rows[0].volume, "by": by,
                "protectors": [row.protector_id for row in rows],
                "summary": f"recovery key of {rows[0].volume} revealed to {by}"})
        return revealed

    async def purge(self, client: str, by: str) -> int:
        """Delete every key the client's devices escrowed (the explicit way to forget them); how many."""
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, client)
            deleted = await tx.purge_escrowed_keys(client_id)
            policy = await tx.escrow_policy(client_id)
            if policy is not None and policy.enabled:
                # Still on: a new round, so the devices send their keys again rather than trust a deleted copy.
                await tx.next_escrow_round(client_id)
                await new_documents(tx, client_id)
            await self.publish(tx, "escrow.purged", {
                "client": client, "deleted": deleted, "by": by,
                "summary": f"{deleted} escrowed recovery key(s) purged by {by}"})
        return deleted
