"""Network devices: devices without an agent declared per site, and the signed document their agents probe from."""

from __future__ import annotations

import base64
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from pydantic import Field

from collector.services.base import Service
from collector.services.errors import Conflict, NotFound
from collector.services.escrow import EscrowKey, escrow_public_key
from collector.services.inputs import Input, validated
from collector.store import NetworkDeviceRow, SiteRef, Store, Tx
from shared.clock import Clock
from shared.reachability import MAX_TARGETS, DeviceKind, ProbeKind, SiteConfig, Target, sign_document

# Makers of devices that cannot run an agent, by the first three bytes of the hardware address (IEEE OUI
# registry): a neighbour with one of these that is not declared yet is offered as a candidate.
VENDORS: dict[str, tuple[str, DeviceKind]] = {
    **dict.fromkeys(("44:19:b6", "28:57:be", "c0:56:e3", "bc:ad:28", "4c:bd:8f"), ("Hikvision", "camera")),
    **dict.fromkeys(("3c:ef:8c", "90:02:a9", "e0:50:8b", "4c:11:bf"), ("Dahua", "camera")),
    **dict.fromkeys(("00:40:8c", "ac:cc:8e", "b8:a4:4f"), ("Axis", "camera")),
    "00:11:32": ("Synology", "nas"),
    "24:5e:be": ("QNAP", "nas"),
    "00:08:9b": ("QNAP", "nas"),  # registered to ICP Electronics, QNAP's maker
    "00:90:a9": ("Western Digital", "nas"),
    **dict.fromkeys(("24:a4:3c", "04:18:d6", "68:72:51", "f0:9f:c2", "78:8a:20", "fc:ec:da"),
                    ("Ubiquiti", "access_point")),
    **dict.fromkeys(("4c:5e:0c", "6c:3b:6b", "e4:8d:8c"), ("MikroTik", "router")),
    "00:c0:b7": ("APC", "ups"),
}
# Neighbour tables as recent as this are looked at for candidates.
CANDIDATES_SEEN = timedelta(days=1)


@dataclass(frozen=True)
class Candidate:
    """A device of a known maker in the site's neighbour tables, not declared yet ("not monitored yet")."""

    address: str
    mac: str
    vendor: str
    kind: DeviceKind
    seen_by: tuple[str, ...]


class Adoption(Input):
    """How to watch a candidate once adopted: it is probed at the address it was seen at; a part left out takes
    the candidate's maker and kind ("Hikvision 192.168.1.31", camera) and an ICMP echo. The declared device's
    own rules (Target) judge the result."""

    name: str | None = Field(None, description="its name at the site (default: maker and address)")
    kind: DeviceKind | None = Field(None, description="what it is (default: what its maker makes)")
    probe: ProbeKind = Field("icmp", description="how to check it: icmp, tcp (with port) or http (with url)")
    port: int | None = Field(None, description="TCP port to connect to (probe tcp)")
    url: str | None = Field(None, description="http:// or https:// URL to fetch (probe http)")
    expect_status: int | None = Field(None, description="HTTP status that means up (probe http; default 200)")
    tls_days: int | None = Field(None, description="warn when its certificate expires within this many days")
    hours: str | None = Field(None, description="local hours it is expected to answer, HH:MM-HH:MM (default always)")


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
    """Devices without an agent, per site (and, in their document, the escrow key when escrow is on)."""

    def __init__(self, store: Store, clock: Clock, escrow_key: EscrowKey | None = None) -> None:
        super().__init__(store, clock)
        self.escrow_key = escrow_key or EscrowKey(None)

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
        """The site's document as its agents receive it, signed by the collector's configuration key: what to
        probe, and the escrow key when the client turned escrow on."""
        async with self.store.transaction() as tx:
            key = await config_key(tx)
            version = await tx.config_version(site.site_id)
            targets = [row.target for row in await tx.network_devices(site.site_id)]
            escrow = await escrow_public_key(tx, site.client_id, self.escrow_key)
        config = SiteConfig(version=version, client=site.client_name, site=site.site_name, issued_at=self.clock(),
                            targets=targets, escrow=escrow is not None, escrow_key=escrow[0] if escrow else None,
                            escrow_round=escrow[1] if escrow else 0)
        return sign_document(key, config)

    async def candidates(self, client: str, site: str) -> list[Candidate]:
        """Devices of known makers in the neighbour tables the site's agents reported within the last day
        (their printer_ip_conflict reports), whose address is not declared yet and which were not dismissed."""
        now = self.clock()
        async with self.store.read() as tx:
            ref = await self._site(tx, client, site)
            declared = {row.target.address for row in await tx.network_devices(ref.site_id)}
            dismissed = await tx.dismissed_candidates(ref.site_id)
            rows = await tx.site_observations(ref.site_id, "printer_ip_conflict", now - CANDIDATES_SEEN, now, 1, 500)
        found: dict[tuple[str, str], set[str]] = defaultdict(set)
        for hostname, row in rows:
            for entry in row.payload.get("neighbours") or []:
                if isinstance(entry, dict) and str(entry.get("mac", ""))[:8] in VENDORS:
                    found[(str(entry.get("ip")), str(entry["mac"]))].add(hostname)
        return [Candidate(ip, mac, *VENDORS[mac[:8]], tuple(sorted(hosts)))
                for (ip, mac), hosts in sorted(found.items()) if ip not in declared and mac not in dismissed]

    async def candidate(self, client: str, site: str, which: str) -> Candidate:
        """The site's candidate by its hardware address or its IP address (NotFound when none is offered,
        Conflict when two devices of known makers answer at that IP address)."""
        offered = await self.candidates(client, site)
        wanted = which.strip().lower().replace("-", ":")  # a hardware address as Windows writes it, too
        found = [c for c in offered if wanted in (c.mac, c.address)]
        if not found:
            listed = ", ".join(f"{c.address} ({c.mac})" for c in offered) or "none"
            raise NotFound(f"{which!r} is not among the devices of {site} not monitored yet (offered: {listed})")
        if len(found) > 1:
            raise Conflict(f"{len(found)} devices answer at {which}: name one by its hardware address "
                           f"({', '.join(c.mac for c in found)})")
        return found[0]

    async def adopt(self, client: str, site: str, which: str, how: Adoption) -> NetworkDeviceRow:
        """Declare a candidate as a device of the site, probed at the address it was seen at."""
        found = await self.candidate(client, site, which)
        chosen = how.model_dump(exclude_none=True)
        target = validated(Target, {**chosen, "name": how.name or f"{found.vendor} {found.address}",
                                    "kind": how.kind or found.kind, "address": found.address})
        return await self.add(client, site, target)

    async def dismiss(self, client: str, site: str, which: str) -> Candidate:
        """Stop offering a candidate (by hardware address: it stays dismissed at another address)."""
        found = await self.candidate(client, site, which)
        async with self.store.transaction() as tx:
            ref = await self._site(tx, client, site)
            if await tx.dismiss_candidate(ref.site_id, found.mac, found.address, self.clock()):
                await self.publish(tx, "network_device.candidate_dismissed",
                                   {"client": client, "site": site, "address": found.address, "mac": found.mac,
                                    "vendor": found.vendor})
        return found
