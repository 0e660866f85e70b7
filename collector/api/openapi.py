"""The OpenAPI document of the agent API (enrolment, signed reports), generated from the pydantic models."""

from __future__ import annotations

import functools
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from collector.access import Access, declare
from collector.api.agents import REPORTS_PATH, EnrolRequest
from shared import __version__
from shared.signing import AGENT_HEADER, SIGNATURE_HEADER, TIME_HEADER
from shared.wire import ReportBatch

OPENAPI_PATH = "/api/v1/openapi.json"
REF = "#/components/schemas/{model}"


class Enrolled(BaseModel):
    """The answer to an enrolment: the new agent id and where the device belongs."""

    agent_id: str
    client: str
    site: str


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


@functools.cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document: each operation, its bodies and every answer it can give."""
    schemas: dict[str, Any] = {}
    for model in (ReportBatch, EnrolRequest, Enrolled, Ingested, Refusal):
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
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
        },
        "components": {"schemas": schemas},
    }


@declare(Access.PUBLIC)
async def openapi(request: web.Request) -> web.Response:
    """`GET /api/v1/openapi.json`: the agent API's OpenAPI document."""
    return web.json_response(document())


def setup(app: web.Application) -> None:
    """Serve the OpenAPI document."""
    app.router.add_get(OPENAPI_PATH, openapi)
