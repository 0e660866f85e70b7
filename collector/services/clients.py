"""Clients: each with its sites and how many devices each site has, and its business hours."""

from __future__ import annotations

from datetime import time

from pydantic import Field, field_validator, model_validator

from collector.rules.expectations import format_days, parse_days
from collector.services.base import Service
from collector.services.errors import NotFound
from collector.services.inputs import Input, zone
from collector.store import ClientHours, ClientRow


class HoursInput(Input):
    """A client's own business hours; a part left out (null) takes the collector's default."""

    days: str | None = Field(None, description="working days, e.g. mon-fri or mon-thu,sat")
    start: time | None = Field(None, description="local time business hours begin (HH:MM)")
    end: time | None = Field(None, description="local time business hours end (HH:MM)")
    timezone: str | None = Field(None, description="IANA time zone, e.g. Europe/Berlin")

    @field_validator("days")
    @classmethod
    def _days(cls, value: str | None) -> str | None:
        return None if value is None else format_days(parse_days(value))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return None if value is None else zone(value)

    @model_validator(mode="after")
    def _order(self) -> HoursInput:
        if self.start is not None and self.end is not None and self.start >= self.end:
            raise ValueError("business hours must start before they end")
        return self


class Clients(Service):
    """Clients and their sites."""

    async def list(self) -> list[ClientRow]:
        """Every client with its sites and device counts."""
        async with self.store.read() as tx:
            return await tx.clients()

    async def set_hours(self, name: str, wanted: HoursInput) -> ClientRow:
        """Give the client its own business hours (NotFound for an unknown client)."""
        async with self.store.transaction() as tx:
            client_id = await tx.client_id(name)
            if client_id is None:
                raise NotFound(f"there is no client {name!r}")
            await tx.set_client_hours(client_id, ClientHours(wanted.days, wanted.start, wanted.end, wanted.timezone))
            return next(c for c in await tx.clients() if c.client_id == client_id)
