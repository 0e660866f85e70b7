"""Clients: create, rename, archive; their sites, contacts, billing details and business hours."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from datetime import time
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from collector.rules.expectations import format_days, parse_days
from collector.services.base import Service
from collector.services.errors import Conflict, NotFound
from collector.services.inputs import Input, valid_address, zone
from collector.store import ClientDetails, ClientHours, ClientRow, ContactRow, Store, Tx
from shared.clock import Clock

NAME_MAX = 100
ADDRESS_MAX = 500
NOTES_MAX = 4000
_PHONE = re.compile(r"^\+?[0-9 ()./-]{3,40}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _words(value: object) -> object:
    """Text with its runs of white space made one space and its ends trimmed (other values as they are)."""
    return " ".join(value.split()) if isinstance(value, str) else value


def _blank_is_none(value: object) -> object:
    """Trimmed text; blank text is None (a form's empty field clears it)."""
    if isinstance(value, str):
        return value.strip() or None
    return value


def _printable(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def _email(value: str | None) -> str | None:
    return None if value is None else valid_address(value)


def _phone(value: str | None) -> str | None:
    if value is not None and not _PHONE.fullmatch(value):
        raise ValueError(f"{value!r} is not a phone number (digits, spaces, + ( ) . / -)")
    return value


def _address(value: str | None) -> str | None:
    """Address lines: each trimmed, blank ones dropped, no control characters."""
    if value is None:
        return None
    lines = [_printable(" ".join(line.split())) for line in value.splitlines()]
    return "\n".join(line for line in lines if line) or None


# A client's, site's or contact's name: trimmed, one space between words, 1 to 100 printable characters.
Name = Annotated[str, BeforeValidator(_words), Field(min_length=1, max_length=NAME_MAX), AfterValidator(_printable)]
Email = Annotated[str | None, BeforeValidator(_blank_is_none), AfterValidator(_email)]
Phone = Annotated[Annotated[str, Field(max_length=40)] | None, BeforeValidator(_blank_is_none),
                  AfterValidator(_phone)]
Address = Annotated[Annotated[str, Field(max_length=ADDRESS_MAX)] | None, BeforeValidator(_blank_is_none),
                    AfterValidator(_address)]


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


class ClientInput(Input):
    """A new client."""

    name: Name = Field(description="the client's name, as invoices and reports show it")
    demo: bool = Field(False, description="a demo client (`make run`'s machine): never billed")


class ClientChange(Input):
    """A client's name, billing e-mail, billing address and notes; a field left out stays as it is, an empty
    one is cleared."""

    name: Name | None = Field(None, description="a new name for the client")
    billing_email: Email = Field(None, description="where invoices go when no contact is marked for billing")
    billing_address: Address = Field(None, description="postal address for invoices, one line per line")
    notes: str | None = Field(None, max_length=NOTES_MAX, description="the technician's notes on the client")


class ContactInput(Input):
    """A person at a client."""

    name: Name = Field(description="the person's name")
    email: Email = Field(None, description="e-mail address")
    phone: Phone = Field(None, description="phone number")
    role: Annotated[str, BeforeValidator(_words), Field(max_length=NAME_MAX), AfterValidator(_printable)] = Field(
        "", description="what they do (owner, office manager, bookkeeper)")
    billing: bool = Field(False, description="invoices and value reports go to this contact (one per client)")


class SiteInput(Input):
    """A client's site (an office, a branch)."""

    name: Name = Field(description="the site's name")


class DemoInput(Input):
    """Whether a client is the demo client."""

    demo: bool = Field(description="true: a demo client, kept out of billing")


async def client_id_of(tx: Tx, name: str) -> int:
    """The id of the client with this name (archived or not), or NotFound."""
    client_id = await tx.client_id(name)
    if client_id is None:
        raise NotFound(f"there is no client {name!r}")
    return client_id


async def site_id_of(tx: Tx, client_id: int, client: str, site: str) -> int:
    """The id of the client's site with this name, or NotFound."""
    site_id = await tx.site_id(client_id, site)
    if site_id is None:
        raise NotFound(f"{client} has no site {site!r}")
    return site_id


class Clients(Service):
    """Clients, their sites, contacts and billing details."""

    def __init__(self, store: Store, clock: Clock, renamed: Callable[[], None] | None = None) -> None:
        super().__init__(store, clock)
        # Tells the notifier to read the channels again: those that name a renamed client follow the rename.
        self.renamed = renamed or (lambda: None)

    async def list(self, archived: bool = False) -> list[ClientRow]:
        """Active clients (`archived`: all of them) with their sites, device counts and contacts."""
        async with self.store.read() as tx:
            return await tx.clients(archived)

    async def billable(self) -> list[ClientRow]:
        """The clients billing lists: active and not the demo client."""
        return [c for c in await self.list() if c.billable]

    async def get(self, name: str) -> ClientRow:
        """One client, archived or not, or NotFound."""
        async with self.store.read() as tx:
            return await self._row(tx, await client_id_of(tx, name))

    async def create(self, wanted: ClientInput) -> ClientRow:
        """A new client (Conflict when the name is taken, by an archived client too)."""
        async with self.store.transaction() as tx:
            client_id = await tx.add_client(wanted.name, wanted.demo)
            if client_id is None:
                raise Conflict(f"there is a client named {wanted.name!r} already (archived ones keep their names)")
            await self.publish(tx, "client.created", {"client": wanted.name, "demo": wanted.demo})
            return await self._row(tx, client_id)

    async def change(self, name: str, wanted: ClientChange) -> ClientRow:
        """Rename the client and change its billing details and notes (fields left out stay)."""
        given = wanted.model_fields_set
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, name)
            if wanted.name is not None and wanted.name != name:
                if await tx.client_id(wanted.name) is not None:
                    raise Conflict(f"there is a client named {wanted.name!r} already")
                await tx.rename_client(client_id, wanted.name)
                await self.publish(tx, "client.renamed", {"client": wanted.name, "was": name})
            row = await self._row(tx, client_id)
            kept = row.details
            details = ClientDetails(
                wanted.billing_email if "billing_email" in given else kept.billing_email,
                wanted.billing_address if "billing_address" in given else kept.billing_address,
                (wanted.notes or "").strip() if "notes" in given else kept.notes,
            )
            if details != kept:
                await tx.set_client_details(client_id, details)
                row = replace(row, details=details)
        if row.name != name:
            self.renamed()
        return row

    async def archive(self, name: str, archived: bool) -> ClientRow:
        """Archive the client (it leaves lists and billing; its history stays) or bring it back."""
        async with self.store.transaction() as tx:
            row = await self._row(tx, await client_id_of(tx, name))
            if (row.archived_at is not None) == archived:
                raise Conflict(f"{name} is {'archived' if archived else 'active'} already")
            at = self.clock() if archived else None
            await tx.set_client_flags(row.client_id, at, row.demo)
            await self.publish(tx, "client.archived" if archived else "client.restored", {"client": name})
            return replace(row, archived_at=at)

    async def set_demo(self, name: str, wanted: DemoInput) -> ClientRow:
        """Mark the client as the demo client (kept out of billing) or as a real one."""
        async with self.store.transaction() as tx:
            row = await self._row(tx, await client_id_of(tx, name))
            await tx.set_client_flags(row.client_id, row.archived_at, wanted.demo)
            return replace(row, demo=wanted.demo)

    async def add_contact(self, name: str, wanted: ContactInput) -> ClientRow:
        """Add a contact (Conflict when the client has one of that name); a billing contact takes the mark."""
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, name)
            contact = ContactRow(0, wanted.name, wanted.email, wanted.phone, wanted.role, wanted.billing)
            if await tx.add_contact(client_id, contact) is None:
                raise Conflict(f"{name} has a contact named {wanted.name!r} already: remove it first to change it")
            return await self._row(tx, client_id)

    async def change_contact(self, name: str, contact_id: int, wanted: ContactInput) -> ClientRow:
        """Replace one of the client's contacts (marking it for billing takes the mark from any other)."""
        async with self.store.transaction() as tx:
            row = await self._row(tx, await client_id_of(tx, name))
            if not any(c.contact_id == contact_id for c in row.contacts):
                raise NotFound(f"{name} has no contact {contact_id}")
            if any(c.name == wanted.name and c.contact_id != contact_id for c in row.contacts):
                raise Conflict(f"{name} has another contact named {wanted.name!r}")
            await tx.update_contact(row.client_id, ContactRow(contact_id, wanted.name, wanted.email, wanted.phone,
                                                              wanted.role, wanted.billing))
            return await self._row(tx, row.client_id)

    async def mark_billing_contact(self, name: str, contact_id: int) -> ClientRow:
        """Make one of the client's contacts the one invoices and reports go to."""
        row = await self.get(name)
        contact = next((c for c in row.contacts if c.contact_id == contact_id), None)
        if contact is None:
            raise NotFound(f"{name} has no contact {contact_id}")
        return await self.change_contact(name, contact_id, ContactInput(
            name=contact.name, email=contact.email, phone=contact.phone, role=contact.role, billing=True))

    async def remove_contact(self, name: str, contact_id: int) -> ClientRow:
        """Remove one of the client's contacts."""
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, name)
            if not await tx.remove_contact(client_id, contact_id):
                raise NotFound(f"{name} has no contact {contact_id}")
            return await self._row(tx, client_id)

    async def add_site(self, name: str, wanted: SiteInput) -> ClientRow:
        """A new site of the client (Conflict when it has one of that name, archived or not)."""
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, name)
            if await tx.add_site(client_id, wanted.name) is None:
                raise Conflict(f"{name} has a site named {wanted.name!r} already")
            return await self._row(tx, client_id)

    async def rename_site(self, name: str, site: str, wanted: SiteInput) -> ClientRow:
        """Give one of the client's sites another name."""
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, name)
            site_id = await site_id_of(tx, client_id, name, site)
            if wanted.name != site:
                if await tx.site_id(client_id, wanted.name) is not None:
                    raise Conflict(f"{name} has a site named {wanted.name!r} already")
                await tx.rename_site(site_id, wanted.name)
            return await self._row(tx, client_id)

    async def archive_site(self, name: str, site: str, archived: bool) -> ClientRow:
        """Archive one of the client's sites (it leaves lists; its devices' history stays) or bring it back."""
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, name)
            site_id = await site_id_of(tx, client_id, name, site)
            row = await self._row(tx, client_id)
            if (site in row.archived_sites) == archived:
                raise Conflict(f"site {site} of {name} is {'archived' if archived else 'active'} already")
            await tx.set_site_archived(site_id, self.clock() if archived else None)
            return await self._row(tx, client_id)

    @staticmethod
    async def _row(tx: Tx, client_id: int) -> ClientRow:
        row = await tx.client(client_id)
        assert row is not None  # the caller found its id in this transaction
        return row

    async def set_hours(self, name: str, wanted: HoursInput) -> ClientRow:
        """Give the client its own business hours (NotFound for an unknown client)."""
        async with self.store.transaction() as tx:
            client_id = await client_id_of(tx, name)
            await tx.set_client_hours(client_id, ClientHours(wanted.days, wanted.start, wanted.end, wanted.timezone))
            return await self._row(tx, client_id)
