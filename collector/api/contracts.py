"""Endpoints for clients' contracts and break/fix rate cards."""

from __future__ import annotations

from aiohttp import web

from collector.api.errors import parse
from collector.api.technician import Handler, owner
from collector.api.wiring import contracts
from collector.services.contracts import ContractInput, RatesInput
from collector.services.views import contract_view, rates_view


async def list_contracts(request: web.Request) -> web.Response:
    """`GET /api/v1/clients/{client}/contracts`: the client's contract versions, oldest first."""
    rows = await contracts(request).of_client(request.match_info["client"])
    return web.json_response({"contracts": [contract_view(r) for r in rows]})


async def add_contract(request: web.Request) -> web.Response:
    """`POST /api/v1/clients/{client}/contracts`: a contract, or a new version of it (a rate change)."""
    row = await contracts(request).add(request.match_info["client"], await parse(request, ContractInput))
    return web.json_response(contract_view(row), status=201)


async def list_rates(request: web.Request) -> web.Response:
    """`GET /api/v1/rates`: every break/fix rate card version."""
    cards = await contracts(request).rate_cards()
    return web.json_response({"rates": [rates_view(c.row, c.client) for c in cards]})


async def add_rates(request: web.Request) -> web.Response:
    """`POST /api/v1/rates`: a rate card version from `effective_from`; earlier days keep theirs."""
    card = await contracts(request).add_rates(await parse(request, RatesInput))
    return web.json_response(rates_view(card.row, card.client), status=201)


ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", "/api/v1/clients/{client}/contracts", list_contracts),
    ("POST", "/api/v1/clients/{client}/contracts", add_contract),
    ("GET", "/api/v1/rates", list_rates),
    ("POST", "/api/v1/rates", add_rates),
]


def setup(app: web.Application) -> None:
    """Register the routes (all for the owner: contracts and rates are how the business is set up)."""
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, owner(handler))
