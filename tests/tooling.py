"""Test helpers for real external tools: skip where a tool is missing, but never on CI (CI=true)."""

from __future__ import annotations

import os
import shutil

import pytest


def requires_tool(name: str) -> pytest.MarkDecorator:
    """Mark a test that runs the program `name`.

    Without the program the test is skipped on a developer machine; with CI=true it runs and fails
    instead, so a CI image that lost the package cannot pass by skipping.
    """
    missing = shutil.which(name) is None and os.environ.get("CI") != "true"
    return pytest.mark.skipif(missing, reason=f"{name} is not installed (install it, or set CI=true to fail)")
