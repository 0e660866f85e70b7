"""The fault suite's figures: each scenario adds a row, and the table is printed at the end of the run."""

from __future__ import annotations

import pytest

from tests.faults.figures import ROWS, table


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the produced / stored / lost / duplicated table of the scenarios that ran."""
    if ROWS:
        terminalreporter.write_sep("=", "delivery under faults")
        terminalreporter.write_line(table(ROWS))
