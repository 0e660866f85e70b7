"""The collector's OpenAPI document, and schemathesis runs against a live collector process on loopback: whatever
they send to the agent API (validly signed, so that validation is reached) or to the technician API (with the
technician token), no answer is a 5xx."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from bench.ingest import free_port
from collector.app import create_app
from collector.settings import Settings
from shared.signing import sign_headers
from tests.support.agents import SimAgent

pytestmark = pytest.mark.slow
STATUSES: Counter[int] = Counter()
EXAMPLES = 50  # per operation and generation mode
TECHNICIAN_EXAMPLES = 8  # per technician operation and generation mode
HEADERS = {"Authorization": "Bearer tech"}
# Not fuzzed: the feed is a stream that never ends; a channel made or edited from generated URLs could send to
# hosts outside this machine (the channel routes have their own tests on a loopback SMTP server).
UNFUZZED = {("GET", "/api/v1/feed"), ("POST", "/api/v1/channels"), ("PATCH", "/api/v1/channels/{name}"),
            ("POST", "/api/v1/channels/{name}/test")}


class Live:
    """A collector process on loopback and one enrolled agent of it."""

    def __init__(self, url: str, agent: SimAgent) -> None:
        self.url, self.agent = url, agent


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """`fieldpost-collector serve` on a fresh SQLite file, with no upload rate limit, and one enrolled agent."""
    db = str(tmp_path_factory.mktemp("fuzz") / "collector.db")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "FIELDPOST_COLLECTOR_ADMIN_TOKEN": "tech", "FIELDPOST_COLLECTOR_AGENT_UPLOADS_PER_MINUTE": "0"}
    cli = [sys.executable, "-m", "collector.cli", "--db", db]
    token = subprocess.run([*cli, "token", "create", "--client", "Acme", "--site", "Office", "--uses", "100"],
                           capture_output=True, text=True, check=True, env=env).stdout.strip()
    server = subprocess.Popen([*cli, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        agent = SimAgent("FUZZ-01")
        answer = requests.post(url + "/api/v1/enrol", json=agent.enrol_body(token), timeout=10)
        assert answer.status_code == 201, answer.text
        agent.agent_id = answer.json()["agent_id"]
        # Something for valid paths to name: an incident with a time entry and a part.
        made = requests.post(url + "/api/v1/incidents", json={"client": "Acme", "title": "Disk"}, headers=HEADERS,
                             timeout=10)
        assert made.status_code == 201, made.text
        incident = made.json()["incident_id"]
        for path, body in (("time", {"minutes": 30, "technician": "sam"}),
                           ("parts", {"description": "SSD", "cost": "60.00", "price": "80.00"})):
            added = requests.post(f"{url}/api/v1/incidents/{incident}/{path}", json=body, headers=HEADERS, timeout=10)
            assert added.status_code == 201, added.text
        yield Live(url, agent)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
        print(f"\nschemathesis: {sum(STATUSES.values())} requests, status codes {dict(sorted(STATUSES.items()))}")
        assert b"Traceback" not in errors, errors.decode()[-3000:]


def test_the_collector_serves_an_openapi_document_of_its_whole_api(live: Live) -> None:
    document = requests.get(live.url + "/api/v1/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    assert schemas["ReportBatch"]["properties"]["envelopes"]["maxItems"] == 100
    assert schemas["Heartbeat"]["properties"]["hostname"]["maxLength"] == 255
    # Every route under /api/v1/ but the document itself, each with the role it needs.
    app = create_app(Settings(db=":memory:"))
    routes = {(route.method.lower(), route.resource.canonical) for route in app.router.routes()
              if route.resource and route.resource.canonical.startswith("/api/v1/") and route.method != "HEAD"}
    listed = {(method, path) for path, operations in document["paths"].items() for method in operations}
    assert listed == routes - {("get", "/api/v1/openapi.json")}
    close = document["paths"]["/api/v1/alerts/{alert_id}/{action}"]["post"]
    assert close["x-fieldpost-access"] == "technician"
    assert close["parameters"][1]["schema"]["pattern"] == "^(?:acknowledge|snooze|resolve)$"
    assert close["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/ActionInput")
    assert "minutes" in schemas["TimeInput"]["properties"]
    invoice = document["paths"]["/api/v1/clients/{client}/invoice"]["get"]
    assert {p["name"] for p in invoice["parameters"] if p["in"] == "query"} >= {"month", "format", "due_days"}
    assert document["paths"]["/api/v1/audit"]["get"]["x-fieldpost-access"] == "owner"
    # An id too large for the database's integers names nothing (the fuzz run found it answered 500).
    too_large = requests.post(f"{live.url}/api/v1/incidents/{'9' * 20}/close", json={}, headers=HEADERS, timeout=10)
    assert too_large.status_code == 404


def adopted(body: Any, live: Live) -> Any:
    """The body with every envelope naming the enrolled agent (else all would be refused as a stranger's)."""
    if isinstance(body, dict) and isinstance(body.get("envelopes"), list):
        for envelope in body["envelopes"]:
            if isinstance(envelope, dict) and "agent_id" in envelope:
                envelope["agent_id"] = live.agent.agent_id
    return None if isinstance(body, schemathesis.core.NotSet) else body


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(live: Live, mode: schemathesis.GenerationMode) -> None:
    """Requests generated from the served document (valid ones, and ones that break it), to each operation."""
    schema = schemathesis.openapi.from_url(live.url + "/api/v1/openapi.json")
    for operation in (result.ok() for result in schema.get_all_operations()):

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def send(case: schemathesis.Case) -> None:
            body = case.body if isinstance(case.body, bytes) else json.dumps(adopted(case.body, live)).encode()
            headers = {"Content-Type": "application/json"}
            if case.path == "/api/v1/reports":
                # Signed with the enrolled agent's key, whatever the envelopes say: validation is reached.
                headers.update(sign_headers(live.agent.key, live.agent.agent_id, "POST", case.path, body,
                                            int(time.time())))
            response = requests.post(live.url + case.path, data=body, headers=headers, timeout=60)
            STATUSES[response.status_code] += 1
            assert response.status_code < 500, (response.status_code, response.text[:500], body[:500])

        send()


def valid_path(case: schemathesis.Case, live: Live) -> None:
    """Path parameters that name what exists, so that a generated body or query reaches the operation."""
    known = {"client": "Acme", "name": "Acme", "agent_id": live.agent.agent_id}
    for name in case.path_parameters or {}:
        case.path_parameters[name] = known.get(name, "1" if name.endswith("_id") else case.path_parameters[name])


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_no_technician_request_gets_a_server_error(live: Live, mode: schemathesis.GenerationMode) -> None:
    """Requests generated from the document to every technician and owner operation, with the technician token:
    in the positive mode on paths that name existing things, so that bodies and queries reach the services."""
    schema = schemathesis.openapi.from_url(live.url + "/api/v1/openapi.json")
    fuzzed = 0
    for operation in (result.ok() for result in schema.get_all_operations()):
        if (operation.method.upper(), operation.path) in UNFUZZED or not operation.definition.raw.get("security"):
            continue
        fuzzed += 1

        # No shrinking: the failing request is reported as sent, and a failure does not cost many minutes.
        @settings(max_examples=TECHNICIAN_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy(generation_mode=mode))
        def send(case: schemathesis.Case) -> None:
            if mode is schemathesis.GenerationMode.POSITIVE:
                valid_path(case, live)
            response = case.call(base_url=live.url, headers=HEADERS, timeout=60)
            STATUSES[response.status_code] += 1
            assert response.status_code < 500, (case.method, case.formatted_path, response.status_code,
                                                 response.text[:500])

        send()
    assert fuzzed >= 40
