"""Network devices: devices without an agent declared per site, and the signed document their agents probe from."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from collector.services.base import Service
from collector.services.errors import Conflict, NotFound
from collector.store import NetworkDeviceRow, SiteRef, Tx
from shared.reachability import MAX_TARGETS, SiteConfig, Target, sign_document

# The collector's configuration key in the meta table: one per collector (shared by every process on one
# database), created at first use. Agents pin its public half at enrolment or first sight.
CONFIG_KEY = "site_config_key"


async def config_key(tx: Tx) -> Ed25519PrivateKey:
    """The collector's key that signs site documents (created at first use; the one that stands when two
    collectors create it at once)."""
    fresh = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    stands = await tx.claim_meta(CONFIG_KEY, base64.b64encode(fresh).decode())
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(stands))


class NetworkDevices(Service):
    """Devices without an agent, per site."""

    async def _site(self, tx: Tx, client: str, site: str) -> SiteRef:
        found = await tx.find_site(client, site)
        if found is None:
            raise NotFound(f"there is no site {site!r} of client {client!r}")
        return found

    async def list(self, client: str, site: str) -> list[NetworkDeviceRow]:
        """The site's declared devices, by name."""
        async with self.store.read() as tx:
            return await tx.network_devices((await self._site(tx, client, site)).site_id)

    async def add(self, client: str, site: str, target: Target) -> NetworkDeviceRow:
        """Declare a device for the site; its agents probe it from their next copy of the site document."""
        async with self.store.transaction() as tx:
            ref = await self._site(tx, client, site)
            if len(await tx.network_devices(ref.site_id)) >= MAX_TARGETS:
                raise Conflict(f"the site has {MAX_TARGETS} devices declared already, the most a site document holds")
            row = await tx.add_network_device(ref.site_id, target, self.clock())
            if row is None:
                raise Conflict(f"the site already has a device named {target.name!r}")
            await tx.config_version(ref.site_id, bump=True)
            await self.publish(tx, "network_device.added", {"client": client, "site": site, "name": target.name,
                                                            "address": target.address, "kind": target.kind})
        return row

    async def remove(self, client: str, site: str, name: str) -> None:
        """Stop probing the site's device of that name."""
        async with self.store.transaction() as tx:
            ref = await self._site(tx, client, site)
            if not await tx.remove_network_device(ref.site_id, name):
                raise NotFound(f"the site has no device named {name!r}")
            await tx.config_version(ref.site_id, bump=True)
            await self.publish(tx, "network_device.removed", {"client": client, "site": site, "name": name})

    async def document(self, site: SiteRef) -> bytes:
        """The site's document as its agents receive it, signed by the collector's configuration key."""
        async with self.store.transaction() as tx:
            key = await config_key(tx)
            version = await tx.config_version(site.site_id)
            targets = [row.target for row in await tx.network_devices(site.site_id)]
        config = SiteConfig(version=version, client=site.client_name, site=site.site_name, issued_at=self.clock(),
                            targets=targets)
        return sign_document(key, config)
