"""Fixtures every test may use."""

from __future__ import annotations

import pytest

from tests.support.clock import Clock


@pytest.fixture
def clock() -> Clock:
    """The clock of the collector (or agent) under test, at tests.support.clock.START until moved."""
    return Clock()
