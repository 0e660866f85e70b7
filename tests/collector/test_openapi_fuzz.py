"""The agent API's OpenAPI document, served by the collector, and a schemathesis run against a live collector
process on loopback: whatever it sends (validly signed, so that validation is reached), no answer is a 5xx."""

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
from hypothesis import HealthCheck, given, settings

from bench.ingest import free_port
from shared.signing import sign_headers
from tests.support.agents import SimAgent

pytestmark = pytest.mark.slow
STATUSES: Counter[int] = Counter()
EXAMPLES = 50  # per operation and generation mode


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
        yield Live(url, agent)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
        print(f"\nschemathesis: {sum(STATUSES.values())} requests, status codes {dict(sorted(STATUSES.items()))}")
        assert b"Traceback" not in errors, errors.decode()[-3000:]


def test_the_collector_serves_an_openapi_document_of_the_agent_api(live: Live) -> None:
    document = requests.get(live.url + "/api/v1/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {"/api/v1/enrol", "/api/v1/reports"}
    batch = document["components"]["schemas"]["ReportBatch"]
    assert batch["properties"]["envelopes"]["maxItems"] == 100
    assert document["components"]["schemas"]["Heartbeat"]["properties"]["hostname"]["maxLength"] == 255


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
