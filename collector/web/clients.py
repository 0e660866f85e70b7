"""A client's own page: its name, billing e-mail and address, notes, contacts and sites, with the forms that
change them; and the form that creates a client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import web

from collector.api.wiring import clients, escrow, tokens
from collector.services.clients import ClientChange, ClientInput, Clients, ContactInput, DemoInput, SiteInput
from collector.services.errors import DomainError
from collector.services.escrow import EscrowInput
from collector.services.inputs import validated
from collector.web.render import refused, refused_page, render, see_other
from collector.web.sessions import SESSION, form, owner_form, page


def client_page_path(name: str) -> str:
    """The path of a client's page."""
    return f"/clients/{quote(name, safe='')}"


async def posted(request: web.Request, *names: str) -> dict[str, str]:
    """The named fields of the form as sent (a blank one as blank: it clears the value); others, like the CSRF
    token, are left out."""
    sent = await request.post()
    return {name: str(sent[name]) for name in names if name in sent}


@page
async def client_page(request: web.Request) -> web.Response:
    """`GET /clients/{client}`: the client's record, contacts and sites (archived clients too)."""
    name = request.match_info["client"]
    try:
        client = await clients(request).get(name)
    except DomainError as exc:
        return refused_page(request, exc)
    owner = request[SESSION].role == "owner"
    # Enrolment tokens are the owner's to see (a technician's session is not shown even their hashes).
    listed = [t for t in await tokens(request).list() if t.client == client.name] if owner else []
    escrow_policy = await escrow(request).policy(client.name)
    return render(request, "client.html", client=client, path=client_page_path(client.name), tokens=listed,
                  owner=owner, escrow=escrow_policy)


@form
async def create_client(request: web.Request) -> web.Response:
    """`POST /clients`: a new client; its page opens."""
    try:
        made = await clients(request).create(validated(ClientInput, await posted(request, "name")))
    except DomainError as exc:
        return refused(exc, "/clients", "created")
    return see_other(client_page_path(made.name), flash=f"Client {made.name} created.")


def change(action: Callable[[Clients, str, web.Request], Awaitable[Any]], done: str,
           guard: Callable[[Any], Any] = form) -> Any:
    """A form on a client's page: do `action`, then back to the (perhaps renamed) client's page with a message."""

    async def handler(request: web.Request) -> web.Response:
        name = request.match_info["client"]
        try:
            row = await action(clients(request), name, request)
        except DomainError as exc:
            return refused(exc, client_page_path(name), "saved")
        return see_other(client_page_path(row.name), flash=done.format(client=row.name))

    handler.__doc__ = action.__doc__
    return guard(handler)


async def _details(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/details`: name, billing e-mail and address, notes."""
    fields = await posted(request, "name", "billing_email", "billing_address", "notes")
    return await service.change(name, validated(ClientChange, fields))


async def _add_contact(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/contacts`: a contact person."""
    fields = {k: v for k, v in (await posted(request, "name", "email", "phone", "role", "billing")).items() if v}
    return await service.add_contact(name, validated(ContactInput, fields))


async def _billing_contact(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/contacts/{contact_id}/billing`: invoices and reports go to this contact."""
    return await service.mark_billing_contact(name, int(request.match_info["contact_id"]))


async def _remove_contact(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/contacts/{contact_id}/remove`: remove a contact."""
    return await service.remove_contact(name, int(request.match_info["contact_id"]))


async def _add_site(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/sites`: a new site."""
    return await service.add_site(name, validated(SiteInput, await posted(request, "name")))


async def _rename_site(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/sites/{site}/rename`: a site's new name."""
    return await service.rename_site(name, request.match_info["site"],
                                     validated(SiteInput, await posted(request, "name")))


async def _archive_site(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/sites/{site}/archive|restore`: archive a site or bring it back."""
    return await service.archive_site(name, request.match_info["site"], request.match_info["change"] == "archive")


async def _archive(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/archive|restore`: archive the client (it leaves lists and billing) or restore it."""
    return await service.archive(name, request.match_info["change"] == "archive")


async def _demo(service: Clients, name: str, request: web.Request) -> Any:
    """`POST /clients/{client}/demo`: mark the client as the demo client (kept out of billing) or not."""
    return await service.set_demo(name, validated(DemoInput, {"demo": (await posted(request, "demo")).get("demo")}))


@form
async def set_escrow(request: web.Request) -> web.Response:
    """`POST /clients/{client}/escrow`: turn recovery-key escrow on or off (recorded: who, when)."""
    name = request.match_info["client"]
    try:
        wanted = validated(EscrowInput, {"enabled": (await posted(request, "enabled")).get("enabled")})
        policy = await escrow(request).turn(name, wanted.enabled, request[SESSION].name)
    except DomainError as exc:
        return refused(exc, client_page_path(name), "saved")
    done = ("on: its devices send their BitLocker recovery passwords, sealed, at their next check" if policy.enabled
            else "off: the keys kept so far stay until a technician purges them")
    return see_other(client_page_path(name), flash=f"Recovery-key escrow is {done}.")


CHANGE = "{change:archive|restore}"


def setup(app: web.Application) -> None:
    """Register the client's page and its forms (archive and the demo mark for the owner: they change billing)."""
    app.router.add_post("/clients", create_client)
    app.router.add_get("/clients/{client}", client_page)
    app.router.add_post("/clients/{client}/details", change(_details, "Saved {client}."))
    app.router.add_post("/clients/{client}/contacts", change(_add_contact, "Contact added."))
    app.router.add_post(r"/clients/{client}/contacts/{contact_id:\d{1,18}}/remove",
                        change(_remove_contact, "Contact removed."))
    app.router.add_post(r"/clients/{client}/contacts/{contact_id:\d{1,18}}/billing",
                        change(_billing_contact, "Invoices and reports of {client} go to the new billing contact."))
    app.router.add_post("/clients/{client}/sites", change(_add_site, "Site added."))
    app.router.add_post("/clients/{client}/sites/{site}/rename", change(_rename_site, "Site renamed."))
    app.router.add_post(f"/clients/{{client}}/sites/{{site}}/{CHANGE}", change(_archive_site, "Site saved."))
    app.router.add_post(f"/clients/{{client}}/{CHANGE}", change(_archive, "Saved {client}.", owner_form))
    app.router.add_post("/clients/{client}/demo", change(_demo, "Saved {client}.", owner_form))
    app.router.add_post("/clients/{client}/escrow", set_escrow)
