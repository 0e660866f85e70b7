"""Technician diagnostics: the collector's verdict on a pasted smartctl output, by the production code."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.checks.disk_health.smartctl import parse_xall_text
from collector.rules import History
from collector.rules.disk_health import disk_subject, evaluate
from shared.disk_health import DiskHealth


def diagnose_smartctl_file(
    path: str | Path, now: datetime, settings: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """`{"file", "device", "model", "serial", "status", "reasons"}` for one `smartctl --json` output file.

    The file goes through the agent's parser and the collector's disk rule, exactly as a report
    would; a file that is not smartctl JSON (or names no disk) gets `unknown` with the reason.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return {
            "file": str(path),
            "device": None,
            "model": None,
            "serial": None,
            "status": "unknown",
            "reasons": [f"cannot read file: {exc.strerror}"],
        }
    disk = parse_xall_text(text)
    history = History(now=now, hostname="diagnose", settings=settings or {})
    evaluations = evaluate(DiskHealth(collected_at=now, disks=[disk]), history)
    verdict = next((e for e in evaluations if e.subject == disk_subject(disk)), None)
    return {
        "file": str(path),
        "device": disk.device,
        "model": disk.model,
        "serial": disk.serial,
        # No verdict: a disk asleep, left alone (`-n standby`), is judged at its next read.
        "status": verdict.status if verdict else disk.status_read,
        "reasons": verdict.details["reasons"] if verdict else disk.read_problems,
    }
