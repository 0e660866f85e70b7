"""Validly signed reports with hostile values: each gets 422 naming the field, and nothing else breaks.

After each one, the dashboard's pages, the technician API and a site-mate's normal report still work: one
PC's bad report must not take the collector, its client or its site down.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from shared.printer_ip_conflict import NeighbourEntry, PrinterIpConflict, PrinterQueue, Probe, SegmentKey
from tests.support.agents import REPORTS, SimAgent, heartbeat
from tests.support.clock import Clock
from tests.support.collector import TECH, enrolled
from tests.web.conftest import log_in

PRINTER = "192.168.1.50"


def printers(agent: SimAgent) -> PrinterIpConflict:
    """A normal printer report: one queue, one neighbour entry, one probe with no answer yet."""
    return PrinterIpConflict(
        collected_at=agent.clock(),
        segment=SegmentKey(subnet="192.168.1.0/24", gateway_ip="192.168.1.1", gateway_mac="00:11:22:33:44:55"),
        queues=[PrinterQueue(name="Reception", uri=f"socket://{PRINTER}", host=PRINTER, addresses=[PRINTER])],
        neighbours=[NeighbourEntry(ip=PRINTER, mac="00:1b:a9:00:00:01", interface="eth0", state="reachable")],
        probes=[Probe(ip=PRINTER, method="arp-raw", window_seconds=2.0)],
    )


def spoil(envelope: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """The envelope with the value at a dotted path (list indexes as numbers) replaced."""
    *parents, last = path.split(".")
    node: Any = envelope
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value
    return envelope


# (what the hostile PC sends: the signal, the dotted path to spoil, the value) -> the field the 422 names
CASES = {
    "collected_at in year 1": ("heartbeat", "signals.0.collected_at", "0001-01-01T00:00:00+00:00",
                               "signals.0.heartbeat.collected_at"),
    "collected_at in year 999": ("printers", "signals.0.collected_at", "0999-06-01T00:00:00+00:00",
                                 "signals.0.printer_ip_conflict.collected_at"),
    "collected_at years ahead": ("printers", "signals.0.collected_at", "2999-06-01T00:00:00+00:00",
                                 "signals.0.printer_ip_conflict.collected_at"),
    "a date that overflows in UTC": ("heartbeat", "signals.0.boot_time", "9999-12-31T23:59:59-23:59",
                                     "signals.0.heartbeat.boot_time"),
    "infinite probe window": ("printers", "signals.0.probes.0.window_seconds", "INFINITY",
                              "signals.0.printer_ip_conflict.probes.0.window_seconds"),
    "an invalid IPv4 address": ("printers", "signals.0.neighbours.0.ip", "999.168.1.50",
                                "signals.0.printer_ip_conflict.neighbours.0.ip"),
    "a malformed MAC address": ("printers", "signals.0.neighbours.0.mac", "00:1b:a9:zz:00:01",
                                "signals.0.printer_ip_conflict.neighbours.0.mac"),
    "seq beyond 64 bits": ("heartbeat", "seq", 2**63, "seq"),
    "a 900 KB hostname": ("heartbeat", "signals.0.hostname", "H" * 900_000, "signals.0.heartbeat.hostname"),
}


async def send(client: TestClient, agent: SimAgent, envelope: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Upload one envelope, signed; infinity is written the way Python's JSON writes it (`Infinity`)."""
    body = agent.body(envelope).replace(b'"INFINITY"', b"1e999")
    response = await client.post(REPORTS, data=body, headers=agent.headers(body))
    return response.status, await response.json()


@pytest.mark.parametrize("case", CASES)
async def test_a_hostile_report_gets_422_and_breaks_nothing_for_anyone_else(
    client: TestClient, clock: Clock, case: str
) -> None:
    kind, path, value, field = CASES[case]
    hostile, mate = await enrolled(client, "RECEPTION-01"), await enrolled(client, "OFFICE-02")
    hostile.clock = mate.clock = clock
    status, _ = await send(client, mate, mate.envelope([heartbeat(mate.hostname, clock.now), printers(mate)]))
    assert status == 200

    signal = heartbeat(hostile.hostname, clock.now) if kind == "heartbeat" else printers(hostile)
    status, answer = await send(client, hostile, spoil(hostile.envelope([signal]), path, value))
    assert status == 422, answer
    assert f"envelopes.0.{field}" in [p["field"] for p in answer["problems"]], answer

    clock.advance(minutes=5)
    status, answer = await send(client, mate, mate.envelope([heartbeat(mate.hostname, clock.now), printers(mate)]))
    assert (status, answer["accepted"]) == (200, [mate.seq])
    status, answer = await send(client, hostile, hostile.envelope([heartbeat(hostile.hostname, clock.now)]))
    assert status == 200, answer
    devices = await client.get("/api/v1/devices", headers=TECH)
    assert devices.status == 200
    assert {d["hostname"] for d in (await devices.json())["devices"]} == {"RECEPTION-01", "OFFICE-02"}
    await log_in(client)
    for page in ["/", "/clients", f"/devices/{hostile.agent_id}", f"/devices/{mate.agent_id}"]:
        response = await client.get(page)
        assert response.status == 200, (page, await response.text())
    assert "H" * 300 not in await (await client.get("/clients")).text()


def test_the_json_schema_states_a_bound_for_every_value() -> None:
    """Every string and list has a maximum length, every integer a 64-bit maximum, every timestamp a minimum."""
    from shared.base import INT64_MAX
    from shared.wire import json_schema

    unbounded: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            kind = node.get("type")
            if kind == "string" and "enum" not in node and "const" not in node:
                if node.get("format") == "date-time":
                    if "formatMinimum" not in node:
                        unbounded.append(f"{where}: timestamp without a minimum")
                elif "maxLength" not in node:
                    unbounded.append(f"{where}: string without maxLength")
            if kind == "array" and "maxItems" not in node:
                unbounded.append(f"{where}: list without maxItems")
            if kind == "object" and "additionalProperties" in node and isinstance(node["additionalProperties"], dict) \
                    and "maxProperties" not in node:
                unbounded.append(f"{where}: mapping without maxProperties")
            if kind == "integer" and "const" not in node and node.get("maximum", INT64_MAX + 1) > INT64_MAX:
                unbounded.append(f"{where}: integer beyond 64 bits")
            for key, child in node.items():
                walk(child, f"{where}.{key}")
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, f"{where}[{index}]")

    walk(json.loads(json.dumps(json_schema())), "#")
    assert unbounded == []


def crowded(agent: SimAgent, envelopes: int, per_envelope: int) -> bytes:
    """An upload of `envelopes` envelopes, each with `per_envelope` printer reports."""
    return agent.body(*(agent.envelope([printers(agent)] * per_envelope) for _ in range(envelopes)))


@pytest.mark.parametrize(("envelopes", "per_envelope", "field", "message"), [
    (1, 11, "envelopes.0", "11 printer_ip_conflict signals in one envelope; at most 10 of one kind"),
    (11, 10, "(body)", "110 printer_ip_conflict signals in one upload; at most 100 of one kind"),
])
async def test_too_many_signals_of_one_kind_get_422_naming_the_kind_and_the_limit(
    client: TestClient, clock: Clock, envelopes: int, per_envelope: int, field: str, message: str
) -> None:
    hostile = await enrolled(client)
    hostile.clock = clock
    body = crowded(hostile, envelopes, per_envelope)
    response = await client.post(REPORTS, data=body, headers=hostile.headers(body))
    assert response.status == 422
    [problem] = (await response.json())["problems"]
    assert problem["field"] == field and message in problem["message"], problem


async def test_a_pc_flooding_its_site_with_large_printer_uploads_blocks_no_site_mate(
    client: TestClient, clock: Clock
) -> None:
    """Uploads as large as the caps allow, sent together with a site-mate's and answered 200 alike."""
    hostile, mate = await enrolled(client, "RECEPTION-01"), await enrolled(client, "OFFICE-02")
    hostile.clock = mate.clock = clock
    # Large in what the collector stores and reads back, not in addresses (each address is its own verdict).
    big = printers(hostile).model_copy(update={"problems": [f"{n}: " + "x" * 2000 for n in range(4)]})
    floods = [hostile.body(*(hostile.envelope([big]) for _ in range(100))) for _ in range(4)]
    assert all(700_000 < len(body) < 1024 * 1024 for body in floods)
    mates = [mate.body(mate.envelope([heartbeat(mate.hostname, clock.now), printers(mate)])) for _ in range(3)]

    answers = await asyncio.gather(
        *(client.post(REPORTS, data=body, headers=hostile.headers(body)) for body in floods),
        *(client.post(REPORTS, data=body, headers=mate.headers(body)) for body in mates),
    )

    assert [a.status for a in answers[4:]] == [200, 200, 200]
    assert [a.status for a in answers[:4]] == [200, 200, 200, 200]
    await log_in(client)
    for page in ["/", "/clients", f"/devices/{hostile.agent_id}", f"/devices/{mate.agent_id}"]:
        assert (await client.get(page)).status == 200, page
