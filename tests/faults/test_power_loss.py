"""Power loss, VM-less: processes run under the powercut shim, and at random moments while reports flow the power
is cut (SIGKILL, then every write no fsync covered is undone). After each cut the process starts again; at
the end, what was acknowledged must be stored, once. Run with `make faults`."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.e2e.harness import BIN, Collector
from tests.faults.figures import POWER_ROWS, PowerFigures, table
from tests.faults.powercut import PowerCut, build
from tests.faults.senders import Sender, Traffic, enrol

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DEVICES = 6
CUTS = 5
# The collector's settings: no upload limit (the senders send back to back), devices never declared offline.
SETTINGS = {"agent_uploads_per_minute": 0, "offline_after_missed": 1000}
# Imported at the start of the collector's interpreter (PYTHONPATH): the store as it was before this test's fix.
NORMAL = "import collector.store.sqlite as store\nstore.SYNCHRONOUS = 'NORMAL'\n"


@pytest.fixture(scope="session")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shim, compiled once for the session."""
    return build(tmp_path_factory.mktemp("powercut"))


def stored(db: Path, senders: list[Sender]) -> tuple[set[tuple[str, str, int]], int]:
    """(agent, epoch, seq) of the reports in the collector's database, and how many were stored twice."""
    with sqlite3.connect(db) as conn:
        have = {(agent, epoch, seq) for agent, epoch, seq in conn.execute("SELECT agent_id, epoch, seq FROM reports")}
        [(twice,)] = conn.execute("SELECT count(*) FROM (SELECT 1 FROM observations "
                                  "GROUP BY agent_id, epoch, seq, kind HAVING count(*) > 1)")
    return have, twice


def collector_scenario(tmp_path: Path, shim: Path, name: str, seed: int, env: dict[str, str] | None = None
                       ) -> PowerFigures:
    """Devices send to a collector under the shim whose power is cut CUTS times; count what survived."""
    collector = Collector(tmp_path / "collector")
    collector.workdir.mkdir()
    power = PowerCut(collector.workdir, shim, tmp_path / "undo.log")
    # Enrolled before the power periods, with a clean stop: the devices' keys are not what is under test.
    collector.start(**SETTINGS)
    token = subprocess.run([BIN / "fieldpost-collector", "--db", collector.db, "token", "create", "--client",
                            "Acme Tooling", "--site", "Main office", "--uses", str(DEVICES)],
                           capture_output=True, text=True, check=True).stdout.strip()
    senders = asyncio.run(enrol(collector.url, token, DEVICES))
    collector.stop()
    collector.env = {**power.env(), **(env or {})}
    rand = random.Random(seed)
    try:
        collector.start(**SETTINGS)
        with Traffic(collector.url, senders, seed):
            for _ in range(CUTS):
                time.sleep(rand.uniform(1.0, 3.0))
                assert collector.process is not None
                power.cut(collector.process)
                collector.start(**SETTINGS)
            time.sleep(rand.uniform(1.0, 3.0))
            assert collector.process is not None
            power.cut(collector.process)
    finally:
        collector.stop()
    have, twice = stored(collector.db, senders)
    acknowledged = {(s.device.agent_id, epoch, seq) for s in senders for epoch, seq in s.acknowledged}
    row = PowerFigures(name, power.cuts, len(acknowledged), len(acknowledged & have), len(acknowledged - have),
                       twice, sum(power.undone))
    POWER_ROWS.append(row)
    print(table([row]))
    return row


def test_sqlite_with_synchronous_normal_loses_acknowledged_reports_at_a_power_cut(tmp_path: Path, shim: Path
                                                                                  ) -> None:
    # The control: the store as it was (WAL synced only at checkpoints). It shows the harness sees the loss.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(NORMAL)
    row = collector_scenario(tmp_path, shim, "collector, SQLite synchronous=NORMAL (before)", seed=1,
                             env={"PYTHONPATH": str(site)})
    assert row.acknowledged > 100, row
    assert row.lost > 0, row


def test_sqlite_loses_no_acknowledged_report_at_a_power_cut(tmp_path: Path, shim: Path) -> None:
    row = collector_scenario(tmp_path, shim, "collector, SQLite synchronous=FULL", seed=2)
    assert row.acknowledged > 100, row
    assert row.lost == 0, row
    assert row.duplicated == 0, row
