"""The fault suite's figures (each scenario adds a row; the tables are printed at the end of the run) and the
power-cut shim."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.faults.figures import POWER_ROWS, ROWS, table
from tests.faults.powercut import build


@pytest.fixture(scope="session")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The power-cut shim, compiled once for the session."""
    return build(tmp_path_factory.mktemp("powercut"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the tables of the scenarios that ran: produced / stored / lost / duplicated, and power loss."""
    if ROWS:
        terminalreporter.write_sep("=", "delivery under faults")
        terminalreporter.write_line(table(ROWS))
    if POWER_ROWS:
        terminalreporter.write_sep("=", "acknowledged reports under power loss")
        terminalreporter.write_line(table(POWER_ROWS))
