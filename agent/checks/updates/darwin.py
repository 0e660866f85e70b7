"""macOS provider: `softwareupdate -l` entries, and the catalogue refresh time Software Update records."""

from __future__ import annotations

import plistlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from agent.checks import CheckContext
from agent.checks.rootfs import below, mtime
from agent.checks.updates import updates_signal
from agent.commands import Runner
from shared.updates import AvailableUpdate, Updates

# * Label: macOS Tahoe 26.6-25G72
# \tTitle: macOS Tahoe 26.6, Version: 26.6, Size: 3829595KiB, Recommended: YES, Action: restart,
LABEL = re.compile(r"^\s*\*\s*Label:\s*(?P<label>.+?)\s*$")
FIELD = re.compile(r"(Title|Version|Size|Recommended|Action):\s*([^,]*)")


@dataclass(frozen=True)
class SoftwareUpdateEntry:
    """One entry of `softwareupdate -l`."""

    label: str
    title: str
    version: str | None
    recommended: bool
    restart: bool

    @property
    def security(self) -> bool:
        """Apple names its security-only releases so (Security Update, Background Security Improvement)."""
        return "security" in f"{self.label} {self.title}".lower()


def parse_softwareupdate(stdout: str) -> list[SoftwareUpdateEntry]:
    """Each `* Label:` line with the `Title: ..., Action: restart,` line that follows it."""
    entries = []
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        found = LABEL.match(line)
        if not found:
            continue
        detail = lines[index + 1] if index + 1 < len(lines) else ""
        fields = dict(FIELD.findall(detail))
        entries.append(
            SoftwareUpdateEntry(
                label=found["label"],
                title=fields.get("Title", found["label"]).strip(),
                version=fields.get("Version", "").strip() or None,
                recommended=fields.get("Recommended", "").strip() == "YES",
                restart=fields.get("Action", "").strip() == "restart",
            )
        )
    return entries


def list_updates(run: Runner) -> list[SoftwareUpdateEntry]:
    """Run `softwareupdate -l` (a scan: the nightly run may use the network); failure raises."""
    argv = ["softwareupdate", "-l"]
    result = run(argv, timeout=600.0)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()[:300]}")
    return parse_softwareupdate(result.stdout)


def last_successful_check(root: Path) -> datetime | None:
    """Software Update's own LastSuccessfulDate (a naive UTC date in its preferences plist)."""
    try:
        with below(root, "/Library/Preferences/com.apple.SoftwareUpdate.plist").open("rb") as handle:
            when = plistlib.load(handle).get("LastSuccessfulDate")
    except (OSError, plistlib.InvalidFileException):
        return None
    return when.replace(tzinfo=UTC) if isinstance(when, datetime) else None


class SoftwareUpdateProvider:
    """Available updates on macOS."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def collect(self, now: datetime) -> Updates:
        """Scan for updates (the nightly run may use the network)."""
        items = [
            AvailableUpdate(
                name=entry.label,
                version=entry.version,
                security=entry.security,
                origin=entry.title,
                restart=entry.restart,
            )
            for entry in list_updates(self.context.run)
        ]
        root = self.context.root
        return updates_signal(
            "softwareupdate",
            now,
            items,
            last_successful_check(root),
            mtime(below(root, "/Library/Receipts/InstallHistory.plist")),
        )
