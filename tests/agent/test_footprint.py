"""The agent's memory on every client PC: its normal run never loads cryptography's OpenSSL extension."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The service's modules and every check, as `fieldpost-agent run` loads them; then what cryptography loaded.
START = """
import sys
import agent.cli, agent.service, agent.uploader
from agent.checks.registry import all_checks
all_checks()
print(sorted(m for m in sys.modules if m.startswith("cryptography")))
"""


def test_starting_the_agent_and_its_checks_does_not_import_cryptography() -> None:
    # A fresh interpreter: this test process has long imported cryptography for the collector's tests.
    run = subprocess.run([sys.executable, "-c", START], capture_output=True, text=True, timeout=60, cwd=ROOT,
                         check=True)
    assert run.stdout.strip() == "[]", "cryptography costs the agent about 6 MiB; import it where it is needed"
