"""The collector's OpenAPI document: the agent API (enrolment, signed reports) from its pydantic models, and
the technician API and push pings derived from the app's routes and what their handlers read."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute
from pydantic import BaseModel, Field

from collector.access import Access, declare, required
from collector.api.agents import REPORTS_PATH, EnrolRequest
from collector.api.described import path_parameters, reads
from shared import __version__
from shared.reachability import SITE_CONFIG_PATH, SignedDocument, SiteConfig
from shared.signing import AGENT_HEADER, SIGNATURE_HEADER, TIME_HEADER
from shared.wire import ReportBatch

OPENAPI_PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{model}"
# The whole document, built from the app's routes at its first request (the routes are fixed by then).
DOCUMENT = web.AppKey("openapi_document", dict)
# How each kind of route is authenticated, as OpenAPI security requirements.
SECURITY: dict[Access, list[dict[str, list[str]]]] = {
    Access.TECHNICIAN: [{"technicianToken": []}],
    Access.OWNER: [{"technicianToken": []}],
    Access.PUSH: [],
}


class Enrolled(BaseModel):
    """The answer to an enrolment: the new agent id and where the device belongs."""

    agent_id: str
    client: str
    site: str
    config_key: str = Field(description="Base64 raw Ed25519 key that signs the site documents (the agent pins it)")


class Ingested(BaseModel):
    """The answer to a report upload: which envelopes were stored now and which had been before."""

    accepted: list[int]
    duplicates: list[int]


class Problem(BaseModel):
    """One bad field of a refused request."""

    field: str
    message: str


class Refusal(BaseModel):
    """Any error answer: what went wrong, and for a 422 each bad field."""

    error: str
    problems: list[Problem] = []


def _json(model: type[BaseModel]) -> dict[str, Any]:
    """A JSON body of the model, by reference."""
    return {"application/json": {"schema": {"$ref": REF.format(model=model.__name__)}}}


def _answer(description: str, model: type[BaseModel] = Refusal, retry: bool = False) -> dict[str, Any]:
    """A response entry; `retry` documents the Retry-After header."""
    answer: dict[str, Any] = {"description": description, "content": _json(model)}
    if retry:
        answer["headers"] = {"Retry-After": {"description": "Seconds to wait before sending again",
                                             "schema": {"type": "integer", "minimum": 0}}}
    return answer


def _signed_headers() -> list[dict[str, Any]]:
    """The three headers of a signed request (Ed25519 over agent, method, path, timestamp and body)."""
    return [
        {"name": AGENT_HEADER, "in": "header", "required": True, "schema": {"type": "string", "maxLength": 64},
         "description": "The agent id issued at enrolment"},
        {"name": TIME_HEADER, "in": "header", "required": True, "schema": {"type": "string", "maxLength": 20},
         "description": "Unix time of signing, seconds; refused when off by more than the collector's skew"},
        {"name": SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string", "maxLength": 200},
         "description": "Base64 Ed25519 signature of agent, method, path, timestamp and body"},
    ]


def _add_schema(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    """The model's JSON schema, and those it refers to, under components; a clash of names is a bug here."""
    schema = model.model_json_schema(ref_template=REF)
    for name, part in {**schema.pop("$defs", {}), model.__name__: schema}.items():
        if schemas.setdefault(name, part) != part:
            raise ValueError(f"two models named {name} would share one OpenAPI schema")


@functools.cache
def agent_document() -> dict[str, Any]:
    """The agent API's part: each operation, its bodies and every answer it can give."""
    schemas: dict[str, Any] = {}
    for model in (ReportBatch, EnrolRequest, Enrolled, Ingested, Refusal, SignedDocument, SiteConfig):
        _add_schema(schemas, model)
    too_large = _answer("The body is larger than the collector accepts")
    return {
        "openapi": "3.1.0",
        "info": {"title": "fieldpost agent API", "version": __version__,
                 "description": "What a fieldpost agent calls: enrolment with a token, then signed report "
                                "uploads. A 422 is final (the agent keeps the report aside and says why); "
                                "429 and 503 are transient (send again after Retry-After)."},
        "paths": {
            "/api/v1/enrol": {"post": {
                "operationId": "enrol",
                "summary": "Exchange an enrolment token and a public key for an agent id",
                "requestBody": {"required": True, "content": _json(EnrolRequest)},
                "responses": {
                    "201": _answer("Enrolled", Enrolled),
                    "401": _answer("Unknown, expired or used-up token"),
                    "413": too_large,
                    "422": _answer("The request does not match the schema"),
                },
            }},
            REPORTS_PATH: {"post": {
                "operationId": "report",
                "summary": "Upload a signed batch of envelopes (idempotent per agent and sequence number)",
                "parameters": _signed_headers(),
                "requestBody": {"required": True, "content": _json(ReportBatch)},
                "responses": {
                    "200": _answer("Stored (or stored before)", Ingested),
                    "401": _answer("Unknown or revoked agent, bad signature or timestamp"),
                    "413": too_large,
                    "422": _answer("Can never be accepted: names each bad field"),
                    "429": _answer("Too many uploads from this device", retry=True),
                    "503": _answer("Could not store it now", retry=True),
                },
            }},
            SITE_CONFIG_PATH: {"get": {
                "operationId": "siteConfig",
                "summary": "The agent's site document (devices without an agent to probe), signed by the "
                           "collector's configuration key; `document` is a SiteConfig as JSON text",
                "parameters": _signed_headers(),
                "responses": {
                    "200": _answer("The signed site document", SignedDocument),
                    "401": _answer("Unknown or revoked agent, bad signature or timestamp"),
                },
            }},
        },
        "components": {"schemas": schemas},
    }


def operation(route: AbstractRoute, access: Access, schemas: dict[str, Any]) -> dict[str, Any]:
    """One technician, owner or push route as an OpenAPI operation, from its pattern and its handler's code."""
    handler = inspect.unwrap(route.handler)
    read = reads(route.handler)
    parameters = [{"name": name, "in": "path", "required": True,
                   "schema": {"type": "string", "pattern": f"^(?:{regex})$"}}
                  for name, regex in path_parameters(route).items()]
    parameters += [{"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                   for name in sorted(read.query)]
    refused = {str(status): _answer(text) for status, text in (
        (400, "A malformed value in the URL's query"), (401, "No valid technician token or session"),
        (403, "The session's role may not do this"), (404, "What the path names does not exist"),
        (409, "Conflicts with the current state"), (422, "Refused: names each bad field"))}
    summary, _, description = (handler.__doc__ or "").strip().partition("\n")
    found: dict[str, Any] = {
        "operationId": f"{route.method.lower()}_{handler.__name__}",
        "summary": summary.strip(),
        "x-fieldpost-access": str(access),
        "security": SECURITY[access],
        "parameters": parameters,
        "responses": {"2XX": {"description": "Done"}, **refused,
                      "503": _answer("The database is busy or unavailable", retry=True)},
    }
    if description.strip():
        found["description"] = description.strip()
    if read.body is not None:
        _add_schema(schemas, read.body)
        found["requestBody"] = {"required": False, "content": _json(read.body)}
    elif read.raw_body:
        found["requestBody"] = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    elif access is Access.PUSH and route.method == "POST":
        found["requestBody"] = {"required": False, "content": {"text/plain": {"schema": {"type": "string"}}}}
    return found


def document(app: web.Application) -> dict[str, Any]:
    """The OpenAPI 3.1 document: the agent API, then every route under /api/v1/ a technician, the owner or a
    backup job's push URL calls."""
    agent = agent_document()
    paths, schemas = dict(agent["paths"]), dict(agent["components"]["schemas"])
    for route in app.router.routes():
        access = required(route)
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/v1/") and access in SECURITY and route.method != "HEAD":
            paths.setdefault(path, {})[route.method.lower()] = operation(route, access, schemas)
    info = {**agent["info"], "title": "fieldpost collector API",
            "description": agent["info"]["description"] + " The technician API takes the technician token "
            "(Authorization: Bearer) or a dashboard session; `x-fieldpost-access` says which role a route needs."}
    return {**agent, "info": info, "paths": paths, "components": {
        "schemas": schemas,
        "securitySchemes": {"technicianToken": {"type": "http", "scheme": "bearer"}},
    }}


@declare(Access.PUBLIC)
async def openapi(request: web.Request) -> web.Response:
    """`GET /api/v1/openapi.json`: the collector API's OpenAPI document."""
    built = request.app[DOCUMENT]
    if not built:
        built.update(document(request.app))
    return web.json_response(built)


def setup(app: web.Application) -> None:
    """Serve the OpenAPI document."""
    app[DOCUMENT] = {}
    app.router.add_get(OPENAPI_PATH, openapi)
