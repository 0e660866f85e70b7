"""The fault suite's figures: each scenario adds a row, and the table is printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.faults.figures import POWER_ROWS, ROWS, table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the tables of the scenarios that ran: produced / stored / lost / duplicated, and power loss."""
    if ROWS:
        terminalreporter.write_sep("=", "delivery under faults")
        terminalreporter.write_line(table(ROWS))
    if POWER_ROWS:
        terminalreporter.write_sep("=", "acknowledged reports under power loss")
        terminalreporter.write_line(table(POWER_ROWS))
