"""Clients: each with its sites and how many devices each site has."""

from __future__ import annotations

from collector.services.base import Service
from collector.store import ClientRow


class Clients(Service):
    """Clients and their sites."""

    async def list(self) -> list[ClientRow]:
        """Every client with its sites and device counts."""
        async with self.store.read() as tx:
            return await tx.clients()
