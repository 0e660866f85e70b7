"""apt provider: simulate a dist-upgrade and read each `Inst` line's origins to split security from other."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from agent.checks import CheckContext
from agent.checks.rootfs import below, mtime
from agent.checks.updates import updates_signal
from shared.updates import AvailableUpdate, Updates

# Inst libssl3 [3.0.19-1~deb12u2] (3.0.22-1~deb12u2 Debian-Security:12/oldstable-security [amd64]) []
INST = re.compile(
    r"^Inst (?P<name>\S+) (?:\[(?P<old>[^\]]*)\] )?\((?P<new>\S+) (?P<origins>.*) \[(?P<arch>[^\]]+)\]\)"
)
# dist-upgrade, not upgrade: a kernel security fix arrives as a NEW package that plain upgrade holds back.
# Debug::NoLocking keeps a simulation from failing while unattended-upgrades holds the dpkg lock.
COMMAND = ["apt-get", "-s", "-o", "Debug::NoLocking=true", "dist-upgrade"]


def parse_simulation(stdout: str) -> list[AvailableUpdate]:
    """Every package apt would install; security when any origin's archive is a -security one."""
    items = []
    for line in stdout.splitlines():
        found = INST.match(line)
        if not found:
            continue
        origins = [origin.strip() for origin in found["origins"].split(",")]
        security = [origin for origin in origins if "-security" in origin.lower()]
        items.append(
            AvailableUpdate(
                name=found["name"],
                version=found["new"],
                security=bool(security),
                origin=(security or origins)[0],
            )
        )
    return items


def index_refreshed_at(root: Path) -> datetime | None:
    """When `apt-get update` last succeeded: APT::Periodic's stamp, else the newest change in the lists."""
    stamp = mtime(below(root, "/var/lib/apt/periodic/update-success-stamp"))
    if stamp:
        return stamp
    lists = below(root, "/var/lib/apt/lists")
    # apt sets list files' mtimes from the archive's Last-Modified; the directory changes when a fetch lands.
    times = [
        when for when in [mtime(lists), *(mtime(path) for path in lists.glob("*") if path.is_file())] if when
    ]
    return max(times) if times else None


class AptProvider:
    """Available updates on Debian and Ubuntu."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def collect(self, now: datetime) -> Updates:
        """Simulate the upgrade; a failed simulation (lock, broken dependencies) is an error, not 'none'."""
        result = self.context.run(COMMAND, timeout=300.0)
        if result.returncode != 0:
            raise RuntimeError(
                f"apt-get -s dist-upgrade failed ({result.returncode}): {result.stderr.strip()[:300]}"
            )
        root = self.context.root
        return updates_signal(
            "apt",
            now,
            parse_simulation(result.stdout),
            index_refreshed_at(root),
            mtime(below(root, "/var/lib/dpkg/status")),
        )
