"""Fixtures that start real collector and agent processes on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Agent, Collector


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    running = Collector(tmp_path / "collector")
    running.workdir.mkdir()
    running.start()
    yield running
    running.stop()


@pytest.fixture
def agents(tmp_path: Path, collector: Collector) -> Iterator[list[Agent]]:
    """Agents made by the test (append to the list); all are stopped afterwards."""
    made: list[Agent] = []
    yield made
    for agent in made:
        agent.stop()
