"""Fixtures for the agent's tests: an identity, a state directory, and a scripted collector on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.identity import Identity
from tests.agent.support import FakeCollector, loopback_server, make_identity


@pytest.fixture
def identity() -> Identity:
    """A fresh agent identity."""
    return make_identity()


@pytest.fixture
async def collector(identity: Identity) -> AsyncIterator[FakeCollector]:
    """A scripted collector on loopback for `identity`."""
    fake = FakeCollector(identity)
    async with loopback_server("/api/v1/reports", fake.reports) as fake.url:
        yield fake


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    """An empty agent state directory."""
    path = tmp_path / "state"
    path.mkdir()
    return path
