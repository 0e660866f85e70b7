"""Endpoints for clients as records: create, rename, billing details, archive, contacts and sites."""

from __future__ import annotations

from aiohttp import web

from collector import keys
from collector.api.errors import parse
from collector.api.technician import Handler, client_view, owner, technician
from collector.api.wiring import clients
from collector.services.clients import ClientChange, ClientInput, ContactInput, DemoInput, SiteInput
from collector.store import ClientRow

CONTACT = r"{contact_id:\d{1,18}}"


def answer(request: web.Request, client: ClientRow, status: int = 200) -> web.Response:
    """The client as the API shows it."""
    return web.json_response(client_view(client, request.app[keys.SETTINGS]), status=status)


async def create_client(request: web.Request) -> web.Response:
    """`POST /api/v1/clients` with `{"name": ..., "demo": false}`: a new client (409 when the name is taken)."""
    return answer(request, await clients(request).create(await parse(request, ClientInput)), 201)


async def show_client(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}`: one client, archived or not."""
    return answer(request, await clients(request).get(request.match_info["client"]))


async def change_client(request: web.Request) -> web.Response:
    """`PATCH /api/v1/clients/{client}` with any of `name`, `billing_email`, `billing_address`, `notes`:
    rename the client or change its billing details (an empty value clears one)."""
    changed = await clients(request).change(request.match_info["client"], await parse(request, ClientChange))
    return answer(request, changed)


async def archive_client(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/archive|restore`: archive the client (it leaves lists and billing, its
    history stays) or bring it back."""
    archived = request.match_info["change"] == "archive"
    return answer(request, await clients(request).archive(request.match_info["client"], archived))


async def set_demo(request: web.Request) -> web.Response:
    """`PUT /api/v1/clients/{client}/demo` with `{"demo": true}`: a demo client is kept out of billing."""
    return answer(request, await clients(request).set_demo(request.match_info["client"],
                                                           await parse(request, DemoInput)))


async def add_contact(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/contacts` with `{"name", "email", "phone", "role", "billing"}`; a billing
    contact takes the mark from any other."""
    added = await clients(request).add_contact(request.match_info["client"], await parse(request, ContactInput))
    return answer(request, added, 201)


async def change_contact(request: web.Request) -> web.Response:
    """`PUT /api/v1/clients/{client}/contacts/{contact_id}` with the contact as `POST .../contacts` takes it:
    replace a contact (`"billing": true` takes the mark from any other)."""
    client = await clients(request).change_contact(request.match_info["client"], int(request.match_info["contact_id"]),
                                                   await parse(request, ContactInput))
    return answer(request, client)


async def remove_contact(request: web.Request) -> web.Response:
    """`DELETE /api/v1/clients/{client}/contacts/{contact_id}`: remove a contact."""
    client = await clients(request).remove_contact(request.match_info["client"],
                                                   int(request.match_info["contact_id"]))
    return answer(request, client)


async def add_site(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/sites` with `{"name": ...}`: a new site of the client."""
    added = await clients(request).add_site(request.match_info["client"], await parse(request, SiteInput))
    return answer(request, added, 201)


async def rename_site(request: web.Request) -> web.Response:
    """`PATCH /api/v1/clients/{client}/sites/{site}` with `{"name": ...}`: rename a site."""
    info = request.match_info
    return answer(request, await clients(request).rename_site(info["client"], info["site"],
                                                              await parse(request, SiteInput)))


async def archive_site(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/sites/{site}/archive|restore`: archive a site or bring it back."""
    info = request.match_info
    return answer(request, await clients(request).archive_site(info["client"], info["site"],
                                                               info["change"] == "archive"))


CHANGE = "{change:archive|restore}"
ROUTES: list[tuple[str, str, Handler]] = [
    ("POST", "/api/v1/clients", technician(create_client)),
    ("GET", "/api/v1/clients/{client}", technician(show_client)),
    ("PATCH", "/api/v1/clients/{client}", technician(change_client)),
    ("POST", f"/api/v1/clients/{{client}}/{CHANGE}", owner(archive_client)),
    ("PUT", "/api/v1/clients/{client}/demo", owner(set_demo)),
    ("POST", "/api/v1/clients/{client}/contacts", technician(add_contact)),
    ("PUT", f"/api/v1/clients/{{client}}/contacts/{CONTACT}", technician(change_contact)),
    ("DELETE", f"/api/v1/clients/{{client}}/contacts/{CONTACT}", technician(remove_contact)),
    ("POST", "/api/v1/clients/{client}/sites", technician(add_site)),
    ("PATCH", "/api/v1/clients/{client}/sites/{site}", technician(rename_site)),
    ("POST", f"/api/v1/clients/{{client}}/sites/{{site}}/{CHANGE}", technician(archive_site)),
]


def setup(app: web.Application) -> None:
    """Register the routes (archiving a client and the demo mark for the owner: they change billing)."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
