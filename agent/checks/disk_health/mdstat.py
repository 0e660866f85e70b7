"""Linux software RAID: the arrays in `/proc/mdstat`, parsed apart from the reading (tests feed recorded text).

Each array is a header line, `md6 : active raid1 sdb2[2] sda2[0](F)`, then indented lines: the size with
`[expected/up] [U_]` for redundant levels, and a progress line while it recovers, resyncs or reshapes.
"""

from __future__ import annotations

import re
from pathlib import Path

from shared.disk_health import RaidArray

HEADER = re.compile(r"^(?P<name>md\w+)\s*:\s*(?P<state>\w+(?: \([\w-]+\))?)\s+(?P<rest>.*)$")
MEMBER = re.compile(r"^(?P<dev>[^\s\[]+)\[\d+\](?P<flags>(?:\([A-Z]\))*)$")
COUNTS = re.compile(r"\[(?P<expected>\d+)/(?P<up>\d+)\]")
SUPER = re.compile(r"super (?P<metadata>\S+)")
PROGRESS = re.compile(r"(?P<action>recovery|resync|reshape|check|repair)\s*=\s*(?P<percent>[\d.]+)%")
WAITING = re.compile(r"(?P<action>recovery|resync|reshape|check|repair)\s*=\s*(?P<state>DELAYED|PENDING)")


def _array(name: str, state: str, rest: str, body: list[str]) -> RaidArray:
    words = rest.split()
    level = words[0] if words and not MEMBER.match(words[0]) else None
    members, failed, spares = [], [], []
    for word in words[1:] if level else words:
        match = MEMBER.match(word)
        if not match:
            continue
        members.append(match["dev"])
        if "(F)" in match["flags"]:
            failed.append(match["dev"])
        if "(S)" in match["flags"]:
            spares.append(match["dev"])
    text = " ".join(body)
    counts = COUNTS.search(text)
    metadata = SUPER.search(text)
    progress = PROGRESS.search(text)
    waiting = WAITING.search(text)
    return RaidArray(
        name=name,
        level=level,
        state=state,
        metadata=metadata["metadata"] if metadata else None,
        members=members,
        failed_members=failed,
        spare_members=spares,
        members_expected=int(counts["expected"]) if counts else None,
        members_up=int(counts["up"]) if counts else None,
        sync_action=(progress or waiting)["action"] if progress or waiting else None,
        sync_percent=float(progress["percent"]) if progress else None,
    )


def parse_mdstat(text: str) -> list[RaidArray]:
    """The arrays described by the text of `/proc/mdstat`, in its order."""
    arrays = []
    current: tuple[str, str, str] | None = None
    body: list[str] = []
    for line in [*text.splitlines(), ""]:
        header = HEADER.match(line)
        if header or not line.strip():
            if current is not None:
                arrays.append(_array(*current, body))
                current, body = None, []
            if header:
                current = (header["name"], header["state"], header["rest"])
        elif current is not None:
            body.append(line.strip())
    return arrays


def read_arrays(root: Path) -> list[RaidArray]:
    """The md arrays of a Linux machine (none where `/proc/mdstat` does not exist)."""
    try:
        return parse_mdstat((root / "proc" / "mdstat").read_text(encoding="ascii", errors="replace"))
    except FileNotFoundError:
        return []
