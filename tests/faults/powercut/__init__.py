"""A VM-less power cut: processes run with the powercut.c shim preloaded, then are killed and every write to
the watched folder that no fsync made durable is undone (see README.md beside this file for the model)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SOURCE = Path(__file__).with_name("powercut.c")
# type, path_len, dev, ino, offset, old_size, old_len: the C `struct record`, packed.
HEADER = struct.Struct("<IIQQqqq")
UNDO, SYNC, SYNC_ALL = 1, 2, 3


def build(folder: Path) -> Path:
    """Compile the shim with `cc` into `folder`; returns the shared library's path."""
    if shutil.which("cc") is None:
        raise RuntimeError("the power-cut shim needs a C compiler: apt-get install gcc libc6-dev")
    library = folder / "powercut.so"
    subprocess.run(["cc", "-O2", "-Wall", "-shared", "-fPIC", "-o", str(library), str(SOURCE), "-ldl"],
                   check=True, capture_output=True, text=True)
    return library


@dataclass(frozen=True)
class Undo:
    """What one change replaced: the file's size before it, and its old bytes from `offset` on."""

    path: str
    offset: int
    old_size: int
    old: bytes


def records(log: Path) -> Iterator[tuple[int, tuple[int, int], Undo | None]]:
    """The log's records in order: (type, (dev, inode), the undo record or None)."""
    data = log.read_bytes() if log.exists() else b""
    at = 0
    while at < len(data):
        kind, path_len, dev, ino, offset, old_size, old_len = HEADER.unpack_from(data, at)
        at += HEADER.size
        path = data[at:at + path_len].decode()
        at += path_len
        old = data[at:at + old_len]
        at += old_len
        yield kind, (dev, ino), Undo(path, offset, old_size, old) if kind == UNDO else None


@dataclass
class PowerCut:
    """Files under `folder` lose, at `cut()`, every change their processes did not fsync."""

    folder: Path
    library: Path
    log: Path
    cuts: int = 0
    undone: list[int] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        """The environment variables that put a process under the shim."""
        return {"LD_PRELOAD": str(self.library), "POWERCUT_DIR": str(self.folder), "POWERCUT_LOG": str(self.log)}

    def pending(self) -> dict[tuple[int, int], list[Undo]]:
        """Per file, the changes made since it was last synced, oldest first."""
        unsynced: dict[tuple[int, int], list[Undo]] = {}
        for kind, inode, undo in records(self.log):
            if kind == SYNC:
                unsynced.pop(inode, None)
            elif kind == SYNC_ALL:
                unsynced.clear()
            elif undo is not None:
                unsynced.setdefault(inode, []).append(undo)
        return unsynced

    def cut(self, *processes: subprocess.Popen[bytes], group: bool = False) -> int:
        """SIGKILL the processes (their process groups when `group`), then undo what was not synced; returns
        how many changes were undone. The log starts afresh, for the processes of the next power period."""
        for process in processes:
            if group:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
            elif process.poll() is None:
                process.kill()
            process.wait(30)
            if group:
                gone(process.pid)
        undone = 0
        for inode, changes in self.pending().items():
            undone += restore(inode, changes)
        self.log.unlink(missing_ok=True)
        self.cuts += 1
        self.undone.append(undone)
        return undone


def gone(group: int, within: float = 30) -> None:
    """Wait until no process of the group is alive (a killed process may still be finishing a write)."""
    deadline = time.monotonic() + within
    while living(group):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of group {group} outlived SIGKILL")
        time.sleep(0.05)


def living(group: int) -> bool:
    """True while a process of the group exists and is not a zombie."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The command name is in parentheses and may hold spaces: fields are counted after it.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            return True
    return False


def restore(inode: tuple[int, int], changes: list[Undo]) -> int:
    """Apply one file's undo records newest first; a file since removed or replaced is left as it is."""
    path = changes[0].path
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return 0
    try:
        stat = os.fstat(fd)
        if (stat.st_dev, stat.st_ino) != inode:
            return 0
        for change in reversed(changes):
            os.ftruncate(fd, change.old_size)
            os.pwrite(fd, change.old, change.offset)
    finally:
        os.close(fd)
    return len(changes)
