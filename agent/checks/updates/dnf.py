"""dnf provider: `dnf check-update` lists what is available, `dnf updateinfo --security` what is security."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from agent.checks import CheckContext
from agent.checks.rootfs import below, mtime
from agent.checks.updates import updates_signal
from shared.updates import AvailableUpdate, Updates

# check-update's exit codes: 100 updates available, 0 none; anything else is an error.
UPDATES_AVAILABLE = 100
# FEDORA-2021-92e07de1dd Important/Sec. perl-Encode-4:3.12-460.fc34.x86_64
ADVISORY = re.compile(r"^(?P<advisory>\S+)\s+\S+/Sec\.\s+(?P<nevra>\S+)\s*$")
REPO_METADATA = ("/var/cache/dnf/*/repodata/repomd.xml", "/var/cache/libdnf5/*/repodata/repomd.xml")
RPM_DATABASES = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite", "/var/lib/rpm/Packages")


def parse_check_update(stdout: str) -> list[tuple[str, str, str, str]]:
    """(name, arch, version, repository) of each available update, up to the Obsoleting Packages section."""
    rows = []
    carried = ""
    for line in stdout.splitlines():
        if line.startswith("Obsoleting Packages"):
            break
        # A name too long for its column is printed alone, its version and repository on the next line.
        fields = (carried + " " + line).split() if carried else line.split()
        carried = ""
        if len(fields) == 1 and "." in fields[0]:
            carried = fields[0]
        elif len(fields) == 3 and "." in fields[0] and not line.startswith("Last metadata"):
            name, arch = fields[0].rsplit(".", 1)
            rows.append((name, arch, fields[1], fields[2]))
    return rows


def parse_security_advisories(stdout: str) -> dict[tuple[str, str], str]:
    """(name, arch) -> advisory id, from `dnf updateinfo list --security`."""
    advisories = {}
    for line in stdout.splitlines():
        found = ADVISORY.match(line)
        if found:
            without_arch, arch = found["nevra"].rsplit(".", 1)
            name = without_arch.rsplit("-", 2)[0]
            advisories[(name, arch)] = found["advisory"]
    return advisories


def newest_mtime(root: Path, patterns: tuple[str, ...]) -> datetime | None:
    """The newest modification time among files matching the patterns below root."""
    times = [
        when
        for pattern in patterns
        for path in below(root, "/").glob(pattern.lstrip("/"))
        if (when := mtime(path))
    ]
    return max(times) if times else None


class DnfProvider:
    """Available updates on Fedora, RHEL and their rebuilds."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def collect(self, now: datetime) -> Updates:
        """List updates and security advisories; either command failing is an error, not 'none'."""
        available = self.context.run(["dnf", "check-update"], timeout=600.0)
        if available.returncode not in (0, UPDATES_AVAILABLE):
            raise RuntimeError(
                f"dnf check-update failed ({available.returncode}): {available.stderr.strip()[:300]}"
            )
        security = self.context.run(["dnf", "updateinfo", "list", "--security"], timeout=600.0)
        if security.returncode != 0:
            raise RuntimeError(
                f"dnf updateinfo failed ({security.returncode}): {security.stderr.strip()[:300]}"
            )
        advisories = parse_security_advisories(security.stdout)
        items = [
            AvailableUpdate(
                name=name,
                version=version,
                security=(name, arch) in advisories,
                origin=advisories.get((name, arch), repository),
            )
            for name, arch, version, repository in parse_check_update(available.stdout)
        ]
        root = self.context.root
        return updates_signal(
            "dnf", now, items, newest_mtime(root, REPO_METADATA), newest_mtime(root, RPM_DATABASES)
        )
