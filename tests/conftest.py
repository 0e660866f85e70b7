"""Fixtures every test may use."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.clock import Clock

TESTS = Path(__file__).parent
# End-to-end: whole agent and collector processes, or a real browser (`make test-fast` leaves them out).
E2E = ("e2e/", "web/test_browser.py")
# Fixtures that build something real and slow (a restic or borg repository): every test that uses one is slow.
SLOW_FIXTURES = {"restic_repo", "borg_repo"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the end-to-end tests `e2e` by where they live, and the tests on slow fixtures `slow`."""
    for item in items:
        if item.path.relative_to(TESTS).as_posix().startswith(E2E):
            item.add_marker(pytest.mark.e2e)
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def clock() -> Clock:
    """The clock of the collector (or agent) under test, at tests.support.clock.START until moved."""
    return Clock()
