"""Clients and sites as records: create, rename, archive, contacts and billing details, on both backends."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient, TestServer

from collector import keys
from collector.app import create_app
from collector.services.channels import ChannelInput, Channels
from collector.services.clients import ClientChange, ClientInput, Clients, ContactInput, DemoInput, SiteInput
from collector.services.errors import Conflict, Invalid, NotFound
from collector.services.inputs import validated
from collector.services.silences import SilenceInput, Silences
from collector.services.tokens import Tokens
from collector.settings import Settings
from collector.store import Store
from tests.support.collector import TECH

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
async def api(database: str) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(create_app(Settings(db=database, admin_token="tech-secret")))) as client:
        yield client


@pytest.fixture
def clients(store: Store) -> Clients:
    return Clients(store, lambda: NOW)


async def test_a_client_is_created_with_a_trimmed_name_and_a_taken_name_is_a_conflict(clients: Clients) -> None:
    row = await clients.create(validated(ClientInput, {"name": "  Müller   Steuerberatung "}))
    assert row.name == "Müller Steuerberatung" and row.sites == [] and row.billable
    with pytest.raises(Conflict, match="already"):
        await clients.create(validated(ClientInput, {"name": "Müller Steuerberatung"}))
    for bad in ({"name": "   "}, {"name": "x" * 101}, {"name": "a\x07b"}, {"name": "A", "extra": 1}):
        with pytest.raises(Invalid):
            validated(ClientInput, bad)


async def test_renaming_keeps_the_record_and_refuses_a_taken_name(clients: Clients) -> None:
    await clients.create(validated(ClientInput, {"name": "Acme"}))
    await clients.create(validated(ClientInput, {"name": "Bakery"}))
    with pytest.raises(Conflict):
        await clients.change("Acme", validated(ClientChange, {"name": "Bakery"}))
    row = await clients.change("Acme", validated(ClientChange, {"name": "Acme Tooling", "notes": " key at desk "}))
    assert (row.name, row.details.notes) == ("Acme Tooling", "key at desk")
    assert [c.name for c in await clients.list()] == ["Acme Tooling", "Bakery"]
    with pytest.raises(NotFound):
        await clients.get("Acme")


async def test_billing_details_are_validated_and_a_left_out_field_stays(clients: Clients) -> None:
    await clients.create(validated(ClientInput, {"name": "Acme"}))
    row = await clients.change("Acme", validated(ClientChange, {
        "billing_email": " accounts@acme.example ", "billing_address": " Hauptstr. 1 \n\n 10115  Berlin "}))
    assert row.details.billing_email == "accounts@acme.example"
    assert row.details.billing_address == "Hauptstr. 1\n10115 Berlin"
    row = await clients.change("Acme", validated(ClientChange, {"notes": "alarm code with the owner"}))
    assert row.details.billing_email == "accounts@acme.example"
    assert (await clients.get("Acme")).details.notes == "alarm code with the owner"
    row = await clients.change("Acme", validated(ClientChange, {"billing_email": ""}))
    assert row.details.billing_email is None
    with pytest.raises(Invalid, match="not an e-mail address"):
        validated(ClientChange, {"billing_email": "accounts at acme"})


async def test_one_contact_is_marked_for_billing(clients: Clients) -> None:
    await clients.create(validated(ClientInput, {"name": "Acme"}))
    await clients.add_contact("Acme", validated(ContactInput, {
        "name": "Eva Weber", "email": "eva@acme.example", "phone": "+49 30 123456", "role": "owner",
        "billing": True}))
    row = await clients.add_contact("Acme", validated(ContactInput, {
        "name": "Jan Koch", "email": "jan@acme.example", "role": "bookkeeper", "billing": True}))
    assert [(c.name, c.billing) for c in row.contacts] == [("Eva Weber", False), ("Jan Koch", True)]
    assert row.billing_contact is not None and row.billing_contact.email == "jan@acme.example"
    with pytest.raises(Conflict):
        await clients.add_contact("Acme", validated(ContactInput, {"name": "Jan Koch"}))
    with pytest.raises(Invalid, match="phone"):
        validated(ContactInput, {"name": "X", "phone": "call me"})
    row = await clients.remove_contact("Acme", row.contacts[1].contact_id)
    assert [c.name for c in row.contacts] == ["Eva Weber"] and row.billing_contact is None
    with pytest.raises(NotFound):
        await clients.remove_contact("Acme", 999)


async def test_an_archived_client_leaves_the_lists_and_billing_and_comes_back(clients: Clients) -> None:
    await clients.create(validated(ClientInput, {"name": "Acme"}))
    await clients.create(validated(ClientInput, {"name": "Old Shop"}))
    row = await clients.archive("Old Shop", True)
    assert row.archived_at == NOW and not row.billable
    assert [c.name for c in await clients.list()] == ["Acme"]
    assert [c.name for c in await clients.list(archived=True)] == ["Acme", "Old Shop"]
    assert [c.name for c in await clients.billable()] == ["Acme"]
    with pytest.raises(Conflict, match="archived already"):
        await clients.archive("Old Shop", True)
    assert (await clients.archive("Old Shop", False)).archived_at is None
    assert [c.name for c in await clients.billable()] == ["Acme", "Old Shop"]


async def test_the_demo_client_is_listed_but_not_billed(clients: Clients) -> None:
    await clients.create(validated(ClientInput, {"name": "This machine", "demo": True}))
    await clients.create(validated(ClientInput, {"name": "Acme"}))
    assert [c.name for c in await clients.list()] == ["Acme", "This machine"]
    assert [c.name for c in await clients.billable()] == ["Acme"]
    await clients.set_demo("This machine", DemoInput(demo=False))
    assert [c.name for c in await clients.billable()] == ["Acme", "This machine"]


async def test_sites_are_created_renamed_and_archived_under_their_client(clients: Clients) -> None:
    await clients.create(validated(ClientInput, {"name": "Acme"}))
    await clients.add_site("Acme", validated(SiteInput, {"name": "Main office"}))
    row = await clients.add_site("Acme", validated(SiteInput, {"name": "Warehouse"}))
    assert row.sites == [("Main office", 0), ("Warehouse", 0)]
    with pytest.raises(Conflict):
        await clients.add_site("Acme", validated(SiteInput, {"name": "Warehouse"}))
    with pytest.raises(Conflict):
        await clients.rename_site("Acme", "Warehouse", validated(SiteInput, {"name": "Main office"}))
    row = await clients.rename_site("Acme", "Warehouse", validated(SiteInput, {"name": "Store"}))
    assert row.sites == [("Main office", 0), ("Store", 0)]
    row = await clients.archive_site("Acme", "Store", True)
    assert (row.sites, row.archived_sites) == ([("Main office", 0)], ["Store"])
    with pytest.raises(NotFound):
        await clients.archive_site("Acme", "Nowhere", True)
    row = await clients.archive_site("Acme", "Store", False)
    assert row.sites == [("Main office", 0), ("Store", 0)]


async def test_the_api_manages_a_client_with_clear_refusals(api: TestClient) -> None:
    made = await api.post("/api/v1/clients", json={"name": " Acme  Tooling "}, headers=TECH)
    assert made.status == 201 and (await made.json())["name"] == "Acme Tooling"
    taken = await api.post("/api/v1/clients", json={"name": "Acme Tooling"}, headers=TECH)
    assert taken.status == 409 and "already" in (await taken.json())["error"]
    bad = await api.patch("/api/v1/clients/Acme%20Tooling", json={"billing_email": "nope"}, headers=TECH)
    assert bad.status == 422
    assert (await bad.json())["problems"][0]["field"] == "billing_email"
    changed = await api.patch("/api/v1/clients/Acme%20Tooling", headers=TECH, json={
        "name": "Acme", "billing_email": "accounts@acme.example", "billing_address": "Hauptstr. 1\n10115 Berlin"})
    body = await changed.json()
    assert (body["name"], body["billing_email"]) == ("Acme", "accounts@acme.example")
    contact = await api.post("/api/v1/clients/Acme/contacts", headers=TECH, json={
        "name": "Eva Weber", "email": "eva@acme.example", "role": "owner", "billing": True})
    assert contact.status == 201 and (await contact.json())["contacts"][0]["billing"] is True
    site = await api.post("/api/v1/clients/Acme/sites", json={"name": "Main office"}, headers=TECH)
    assert [s["name"] for s in (await site.json())["sites"]] == ["Main office"]
    archived = await api.post("/api/v1/clients/Acme/sites/Main%20office/archive", headers=TECH)
    assert (await archived.json())["archived_sites"] == ["Main office"]
    assert (await api.post("/api/v1/clients/Acme/archive", headers=TECH)).status == 200
    listed = await (await api.get("/api/v1/clients", headers=TECH)).json()
    assert listed["clients"] == []
    everyone = await (await api.get("/api/v1/clients?archived=yes", headers=TECH)).json()
    assert [c["name"] for c in everyone["clients"]] == ["Acme"] and everyone["clients"][0]["archived_at"]
    assert (await api.get("/api/v1/clients?archived=maybe", headers=TECH)).status == 400
    assert (await api.get("/api/v1/clients/Nobody", headers=TECH)).status == 404


async def test_the_xero_export_carries_the_clients_billing_email_and_address(api: TestClient) -> None:
    await api.post("/api/v1/clients", json={"name": "Acme"}, headers=TECH)
    await api.patch("/api/v1/clients/Acme", headers=TECH, json={
        "billing_address": "Acme GmbH\nHauptstr. 1\n10115 Berlin\nGermany"})
    await api.post("/api/v1/clients/Acme/contacts", headers=TECH, json={
        "name": "Jan Koch", "email": "jan@acme.example", "role": "bookkeeper", "billing": True})
    charge = {"description": "Server installation", "amount": "450.00", "day": "2026-10-14"}
    assert (await api.post("/api/v1/clients/Acme/charges", json=charge, headers=TECH)).status == 201
    xero = "/api/v1/clients/Acme/invoice?month=2026-10&format=xero&tax_type=Tax%20Exempt"
    [row] = list(csv.DictReader(io.StringIO(await (await api.get(xero, headers=TECH)).text())))
    assert row["*ContactName"] == "Acme" and row["EmailAddress"] == "jan@acme.example"
    assert [row[f"POAddressLine{n}"] for n in range(1, 5)] == ["Acme GmbH", "Hauptstr. 1", "10115 Berlin", "Germany"]
    # The client's own billing e-mail comes before its billing contact's.
    await api.patch("/api/v1/clients/Acme", json={"billing_email": "invoices@acme.example"}, headers=TECH)
    [row] = list(csv.DictReader(io.StringIO(await (await api.get(xero, headers=TECH)).text())))
    assert row["EmailAddress"] == "invoices@acme.example"


async def test_the_demo_client_is_never_invoiced_nor_enrolled_into_when_archived(api: TestClient) -> None:
    tokens = Tokens(api.app[keys.STORE], lambda: NOW)
    await tokens.create("This machine", "Local", demo=True)
    assert (await Clients(api.app[keys.STORE], lambda: NOW).get("This machine")).demo
    charge = {"description": "Test", "amount": "1.00", "day": "2026-10-14"}
    await api.post("/api/v1/clients/This%20machine/charges", json=charge, headers=TECH)
    refused = await api.get("/api/v1/clients/This%20machine/invoice?month=2026-10", headers=TECH)
    assert refused.status == 409 and "demo client" in (await refused.json())["error"]
    issue = await api.post("/api/v1/clients/This%20machine/invoices", json={"month": "2026-10"}, headers=TECH)
    assert issue.status == 409
    await api.put("/api/v1/clients/This%20machine/demo", json={"demo": False}, headers=TECH)
    assert (await api.get("/api/v1/clients/This%20machine/invoice?month=2026-10", headers=TECH)).status == 200
    await api.post("/api/v1/clients/This%20machine/archive", headers=TECH)
    with pytest.raises(Conflict, match="archived"):
        await tokens.create("This machine", "Local")


async def test_channels_and_silences_that_name_a_client_follow_its_rename(store: Store, clients: Clients) -> None:
    await clients.create(validated(ClientInput, {"name": "Acme"}))
    await Channels(store, lambda: NOW).create(validated(ChannelInput, {
        "name": "phone", "url": "json://127.0.0.1:9/", "clients": ["Acme", "Bakery"]}))
    await Silences(store, lambda: NOW).create(validated(SilenceInput, {
        "client": "Acme", "minutes": 600, "comment": "moving the office"}))
    await clients.change("Acme", validated(ClientChange, {"name": "Acme Tooling"}))
    async with store.read() as tx:
        [channel] = await tx.channels()
        [silence] = await tx.silences()
    assert channel.clients == ("Acme Tooling", "Bakery")
    assert silence.matchers.client == "Acme Tooling"


async def test_a_contact_is_changed_and_the_billing_mark_moves_to_it(clients: Clients) -> None:
    await clients.create(validated(ClientInput, {"name": "Acme"}))
    await clients.add_contact("Acme", validated(ContactInput, {"name": "Eva Weber", "billing": True}))
    row = await clients.add_contact("Acme", validated(ContactInput, {"name": "Jan Koch"}))
    eva, jan = row.contacts
    row = await clients.mark_billing_contact("Acme", jan.contact_id)
    assert [(c.name, c.billing) for c in row.contacts] == [("Eva Weber", False), ("Jan Koch", True)]
    with pytest.raises(Conflict, match="another contact"):
        await clients.change_contact("Acme", eva.contact_id, validated(ContactInput, {"name": "Jan Koch"}))
    row = await clients.change_contact("Acme", eva.contact_id, validated(ContactInput, {
        "name": "Eva Weber-Koch", "email": "eva@acme.example", "role": "owner"}))
    assert [(c.name, c.email, c.billing) for c in row.contacts] == [
        ("Eva Weber-Koch", "eva@acme.example", False), ("Jan Koch", None, True)]
    with pytest.raises(NotFound):
        await clients.mark_billing_contact("Acme", 999)
