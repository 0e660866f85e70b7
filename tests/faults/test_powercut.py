"""The power-cut shim itself: a write no fsync covered is undone at the cut, a synced one survives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.faults.powercut import PowerCut

# Run under the shim; the folder holds `before.txt` and `truncated.txt`, made by the test without the shim.
WRITER = """
import os, sys
folder = sys.argv[1]

def opened(name, flags=0):
    return os.open(os.path.join(folder, name), os.O_RDWR | os.O_CREAT | flags)

fd = opened("before.txt")
os.pwrite(fd, b"after, and longer", 0)
fd = opened("synced.txt")
os.write(fd, b"durable")
os.fsync(fd)
fd = opened("dsync.txt", os.O_DSYNC)
os.write(fd, b"durable at once")
fd = opened("partly.txt")
os.write(fd, b"one")
os.fdatasync(fd)
os.write(fd, b" two")
os.ftruncate(fd, 2)
os.write(fd, b"three")
fd = opened("truncated.txt")
os.ftruncate(fd, 3)
with open(os.path.join(folder, "buffered.txt"), "w") as out:
    out.write("written by Python's file object")
print("done", flush=True)
sys.stdin.read()
"""


def test_a_power_cut_undoes_what_was_not_synced_and_keeps_what_was(shim: Path, tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    folder.mkdir()
    (folder / "before.txt").write_bytes(b"before")
    (folder / "truncated.txt").write_bytes(b"0123456789")
    power = PowerCut(folder, shim, tmp_path / "undo.log")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], env=power.env(),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert writer.stdout is not None
    assert writer.stdout.readline() == b"done\n"
    # Before the cut the files hold everything written (the page cache).
    assert (folder / "before.txt").read_bytes() == b"after, and longer"
    assert (folder / "partly.txt").read_bytes() == b"on" + bytes(5) + b"three"  # written past the end

    undone = power.cut(writer)

    assert (folder / "before.txt").read_bytes() == b"before"
    assert (folder / "synced.txt").read_bytes() == b"durable"
    assert (folder / "dsync.txt").read_bytes() == b"durable at once"
    assert (folder / "partly.txt").read_bytes() == b"one"
    assert (folder / "truncated.txt").read_bytes() == b"0123456789"
    assert (folder / "buffered.txt").read_bytes() == b""
    assert undone == 6


def test_files_outside_the_watched_folder_are_left_alone(shim: Path, tmp_path: Path) -> None:
    folder = tmp_path / "disk"
    folder.mkdir()
    outside = tmp_path / "outside.txt"
    power = PowerCut(folder, shim, tmp_path / "undo.log")
    script = f"import os; fd = os.open({str(outside)!r}, os.O_WRONLY | os.O_CREAT); os.write(fd, b'kept')"
    writer = subprocess.Popen([sys.executable, "-c", script], env=power.env())
    writer.wait(30)
    assert power.cut(writer) == 0
    assert outside.read_bytes() == b"kept"
