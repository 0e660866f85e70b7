"""Recovery-key escrow: the per-client switch (off unless a technician turns it on), the collector's X25519
escrow key, the sealed keys devices send, a technician's reveal (recorded) and the explicit purge.

Turning escrow off stops devices sending keys and deletes nothing: the keys kept stay revealable until a
technician purges them (`purge`), which is recorded like every change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import Field

from collector.services.base import Service
from collector.services.clients import client_id_of
from collector.services.errors import NotFound
from collector.services.inputs import Input
from collector.store import EscrowedKeyRow, EscrowPolicy, Tx
from shared.escrow import SealedKey, new_private_key, open_sealed, public_of

# The collector's escrow private key in the meta table (the database is owner-only, 0600): one per collector,
# shared by every collector process on one database, created at first use like the configuration key.
ESCROW_KEY = "escrow_private_key"


async def escrow_private_key(tx: Tx) -> str:
    """The collector's X25519 escrow private key, raw in base64 (created at first use; the first one stands)."""
    return await tx.claim_meta(ESCROW_KEY, new_private_key())


async def escrow_public_key(tx: Tx, client_id: int) -> tuple[str, int] | None:
    """The escrow public key and round the client's devices seal to, or None when the client's escrow is off."""
    policy = await tx.escrow_policy(client_id)
    if policy is None or not policy.enabled:
        return None
    return public_of(await escrow_private_key(tx)), policy.round


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

    async def policy(self, client: str) -> EscrowPolicy | None:
        """The client's escrow switch; None: never turned on (off)."""
        async with self.store.read() as tx:
            return await tx.escrow_policy(await client_id_of(tx, client))

    async def turn(self, client: str, enabled: bool, by: str) -> EscrowPolicy:
        """Turn the client's escrow on or off; its sites' documents get a new version, so agents learn it.
        Turning it on starts a new round: devices send their keys again (a purge may have deleted them)."""
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, client)
            policy = await tx.set_escrow_policy(client_id, enabled, self.clock(), by, next_round=enabled)
            for site_id in await tx.site_ids(client_id):
                await tx.config_version(site_id, bump=True)
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
            private = await escrow_private_key(tx)
            revealed = [Revealed(row.volume, row.protector_id, row.escrowed_at,
                                 open_sealed(private, agent_id, row.volume, row.protector_id,
                                             SealedKey.model_validate_json(row.sealed)))
                        for row in rows]
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
                await tx.set_escrow_policy(client_id, True, self.clock(), by, next_round=True)
                for site_id in await tx.site_ids(client_id):
                    await tx.config_version(site_id, bump=True)
            await self.publish(tx, "escrow.purged", {
                "client": client, "deleted": deleted, "by": by,
                "summary": f"{deleted} escrowed recovery key(s) purged by {by}"})
        return deleted
