"""The wire schema: strict, versioned, and self-describing."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from shared.wire import SCHEMA_VERSION, Envelope, Heartbeat, ReportBatch, json_schema

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def heartbeat(**changes: Any) -> dict[str, Any]:
    """A valid heartbeat as JSON-ready data."""
    data = {
        "kind": "heartbeat", "collected_at": NOW.isoformat(), "hostname": "RECEPTION-01", "os_name": "Windows",
        "os_version": "10.0.22631", "agent_version": "0.1.0", "boot_time": NOW.isoformat(), "uptime_seconds": 5.0,
        "cpu_count": 4, "cpu_percent": 3.5, "memory_total_bytes": 8 << 30, "memory_used_percent": 41.0,
    }
    data.update(changes)
    return data


def envelope(**changes: Any) -> dict[str, Any]:
    """A valid envelope as JSON-ready data."""
    data = {"schema_version": SCHEMA_VERSION, "agent_id": "ag_1", "seq": 1, "boot_id": "b1",
            "sent_at": NOW.isoformat(), "signals": [heartbeat()]}
    data.update(changes)
    return data


def properties(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every (model, field, property schema) in a JSON Schema with $defs."""
    models = {"ReportBatch": schema, **schema.get("$defs", {})}
    return [(model, name, prop) for model, body in models.items() for name, prop in body.get("properties", {}).items()]


def test_it_accepts_a_valid_envelope() -> None:
    batch = ReportBatch.model_validate_json(json.dumps({"envelopes": [envelope()]}))
    assert isinstance(batch.envelopes[0].signals[0], Heartbeat)
    assert batch.envelopes[0].signals[0].hostname == "RECEPTION-01"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"surprise": 1}, "surprise"),
        ({"seq": 0}, "seq"),
        ({"signals": []}, "signals"),
        ({"signals": [heartbeat(cpu_percent=140)]}, "signals.0.heartbeat.cpu_percent"),
        ({"signals": [heartbeat(extra_field="x")]}, "signals.0.heartbeat.extra_field"),
        ({"signals": [{"kind": "teleport", "collected_at": NOW.isoformat()}]}, "signals.0"),
        ({"sent_at": "2026-11-23T12:00:00"}, "sent_at"),
    ],
)
def test_it_rejects_bad_envelopes_naming_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Envelope.model_validate(envelope(**change))
    assert field in {".".join(str(p) for p in e["loc"]) for e in caught.value.errors()}


def test_every_field_has_a_description_and_numbers_have_units() -> None:
    missing = []
    for model, name, prop in properties(json_schema()):
        if name == "kind":
            continue
        if not prop.get("description"):
            missing.append(f"{model}.{name}: description")
        types = {prop.get("type")} | {option.get("type") for option in prop.get("anyOf", [])}
        if types & {"integer", "number"} and not prop.get("unit"):
            missing.append(f"{model}.{name}: unit")
    assert missing == []


def test_the_schema_command_prints_the_json_schema() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "collector.cli", "schema"], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == json_schema()
