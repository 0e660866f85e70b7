"""One clock per process: the product's code reads the wall clock in `shared/clock.py` only."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("agent", "collector", "shared", "technician")
# Calls that read the calendar. time.monotonic() measures intervals and decides no date, so it may stay.
WALL_CLOCK = {("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today"), ("date", "today"),
              ("time", "time"), ("time", "time_ns")}
# Where a wall-clock read is right: the one clock itself.
ALLOWED = {Path("shared/clock.py")}


def wall_clock_reads(path: Path) -> list[str]:
    """`file:line call` for each call of a wall-clock function in one source file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
            if (name, node.func.attr) in WALL_CLOCK:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}.{node.func.attr}()")
    return found


def test_nothing_but_the_clock_module_reads_the_wall_clock() -> None:
    sources = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(sources) > 100, "the scan found the sources"
    reads = [read for p in sources if p.relative_to(ROOT) not in ALLOWED for read in wall_clock_reads(p)]
    assert reads == []


def test_the_scan_finds_a_wall_clock_read() -> None:
    [read] = wall_clock_reads(ROOT / "shared" / "clock.py")
    assert read.startswith("shared/clock.py:") and read.endswith(" datetime.now()")
