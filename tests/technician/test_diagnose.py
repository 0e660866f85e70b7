"""The technician CLI's offline commands."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "fixtures" / "smartctl"


def test_diagnose_smartctl_prints_one_verdict_per_file_and_fails_on_a_bad_disk() -> None:
    files = [FIXTURES / "smart-fail2.json", FIXTURES / "smart-nvme.json", FIXTURES / "smart-pass.json"]
    done = subprocess.run(
        [sys.executable, "-m", "technician", "diagnose", "smartctl", *map(str, files)],
        capture_output=True, text=True, check=False,
    )
    verdicts = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(Path(v["file"]).name, v["status"]) for v in verdicts] == [
        ("smart-fail2.json", "critical"), ("smart-nvme.json", "ok"), ("smart-pass.json", "unknown"),
    ]
    assert verdicts[0]["serial"] == "MSK423Y20S3HBC"
    assert "SMART overall-health self-assessment: FAILED" in verdicts[0]["reasons"]
    assert done.returncode == 1
