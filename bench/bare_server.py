"""The ceiling for this stack: an aiohttp endpoint that only reads and parses the same JSON bodies."""

from __future__ import annotations

import json
import sys

from aiohttp import web


async def parse_only(request: web.Request) -> web.Response:
    """Parse the body and answer like the collector does, doing nothing else."""
    body = json.loads(await request.read())
    return web.json_response({"accepted": [e["seq"] for e in body["envelopes"]], "duplicates": []})


async def healthz(request: web.Request) -> web.Response:
    """Readiness probe for the benchmark driver."""
    return web.json_response({"status": "ok"})


if __name__ == "__main__":
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/api/v1/reports", parse_only)
    app.router.add_get("/healthz", healthz)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
