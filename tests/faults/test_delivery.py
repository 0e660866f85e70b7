"""The delivery guarantee under faults, with real processes: agents report through a proxy to a collector that
fails in turn (errors from the proxy, the collector killed, its database locked). Nothing may be lost or stored
twice, and no device may be declared offline because the collector was down. Run with `make faults`."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import Collector
from tests.faults.proxy import FaultProxy
from tests.faults.scenario import GRACE, locked, run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def scenario(tmp_path: Path, name: str, fault: Callable[[Collector, FaultProxy], None], **settings: Any) -> None:
    """One collector on SQLite behind the proxy, with `fault` injected."""
    run(tmp_path, name, [Collector(tmp_path / "collector")], lambda cs, proxy: fault(cs[0], proxy), **settings)


def test_a_proxy_answering_500_then_408_loses_nothing(tmp_path: Path) -> None:
    def fault(collector: Collector, proxy: FaultProxy) -> None:
        proxy.fault = 500
        time.sleep(15)
        proxy.fault = 408
        time.sleep(10)
        proxy.fault = None

    # The collector sees nothing while the proxy fails: a device is offline only after a minute of silence.
    scenario(tmp_path, "proxy: 500 for 15 s, then 408 for 10 s", fault, offline_after_missed=60)


def test_a_killed_collector_down_20_s_loses_nothing_and_declares_no_device_offline(tmp_path: Path) -> None:
    settings = {"offline_after_missed": 3, "agent_reconnect_seconds": 5}

    def fault(collector: Collector, proxy: FaultProxy) -> None:
        assert collector.process is not None
        collector.process.kill()
        collector.process.wait(10)
        time.sleep(20)
        collector.start(GRACE, **settings)

    # Devices silent for 3 s are offline: only the start-up grace and the agents' quick return prevent it.
    scenario(tmp_path, "collector kill -9, down 20 s", fault, **settings)


def test_the_collector_database_locked_for_15_s_loses_nothing_and_declares_no_device_offline(
    tmp_path: Path,
) -> None:
    def fault(collector: Collector, proxy: FaultProxy) -> None:
        with locked(collector.db):
            time.sleep(15)

    scenario(tmp_path, "SQLite write lock held 15 s", fault, offline_after_missed=3, agent_reconnect_seconds=5)
