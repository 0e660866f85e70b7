"""Windows provider: a Windows Update Agent search through PowerShell COM, cached because it is slow."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.checks import CheckContext
from agent.checks.updates import updates_signal
from shared.updates import AvailableUpdate, Updates

DEFAULT_CACHE = timedelta(hours=6)
# Update classifications by id: their names are translated ("Sicherheitsupdates" on German Windows).
# Critical Updates (e6cf1350-c01b-414d-a61f-263d14d133b4) are, by Microsoft's definition, fixes for
# critical non-security bugs: they count as other updates unless they carry an MSRC severity.
SECURITY_UPDATES = "0fa1201d-4330-4fa8-8ae9-b877473b6441"
# Prints one JSON object. Dates are WUA's UTC values, written with literal separators in the invariant
# culture: a custom format's ':' is the culture's time separator, which is not ':' everywhere.
SEARCH_SCRIPT = """
$searcher = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()
$result = $searcher.Search("IsInstalled=0 and IsHidden=0")
$updates = @(foreach ($u in $result.Updates) {
  @{ Title = $u.Title; KB = @($u.KBArticleIDs); MsrcSeverity = $u.MsrcSeverity;
     Categories = @(foreach ($c in $u.Categories) { @{ Id = $c.CategoryID; Name = $c.Name } }) }
})
$au = (New-Object -ComObject Microsoft.Update.AutoUpdate).Results
$invariant = [System.Globalization.CultureInfo]::InvariantCulture
function Stamp($d) { if ($d) { $d.ToString('yyyy-MM-dd"T"HH":"mm":"ss', $invariant) } else { $null } }
$out = @{ updates = $updates; last_search_success = (Stamp $au.LastSearchSuccessDate);
          last_installation_success = (Stamp $au.LastInstallationSuccessDate) }
ConvertTo-Json -InputObject $out -Compress -Depth 5
"""
# Year, month, day, hour, minute, second, whatever separates them (2024-11-20T02.11.45 in some cultures).
STAMP = re.compile(r"^\s*(\d{4})\D(\d{1,2})\D(\d{1,2})\D+(\d{1,2})\D(\d{1,2})\D(\d{1,2})")


def utc_stamp(value: str | None) -> datetime | None:
    """A zone-less WUA date (UTC by the API's definition) as an aware datetime, whatever its separators."""
    if not value:
        return None
    found = STAMP.match(value)
    if not found:
        raise ValueError(f"not a date: {value!r}")
    return datetime(*(int(part) for part in found.groups()), tzinfo=UTC)


def is_security(update: dict[str, Any]) -> bool:
    """Security by classification id (never by its translated name), or by an MSRC severity."""
    ids = {str(category.get("Id", "")).lower() for category in update.get("Categories") or []}
    return SECURITY_UPDATES in ids or bool(update.get("MsrcSeverity"))


def parse_search(stdout: str) -> tuple[list[AvailableUpdate], datetime | None, datetime | None]:
    """Updates, last successful search and last successful installation from SEARCH_SCRIPT's JSON."""
    answer: dict[str, Any] = json.loads(stdout)
    items = []
    for update in answer.get("updates") or []:
        kbs = ", ".join(f"KB{kb}" for kb in update.get("KB") or [])
        items.append(AvailableUpdate(name=update["Title"], security=is_security(update), origin=kbs or None))
    return (
        items,
        utc_stamp(answer.get("last_search_success")),
        utc_stamp(answer.get("last_installation_success")),
    )


class WindowsUpdateProvider:
    """Available updates on Windows; the search result is reused for `search_cache_seconds`."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context
        seconds = context.settings.get("search_cache_seconds")
        self.cache_for = timedelta(seconds=seconds) if seconds is not None else DEFAULT_CACHE
        self.cached: Updates | None = None

    def collect(self, now: datetime) -> Updates:
        """The cached signal while it is fresh, else a new search (minutes on a slow PC)."""
        if self.cached and now - self.cached.collected_at < self.cache_for:
            return self.cached
        result = self.context.run(
            ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", SEARCH_SCRIPT], timeout=840.0
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"Windows Update search failed ({result.returncode}): {result.stderr.strip()[:300]}"
            )
        items, searched, installed = parse_search(result.stdout)
        self.cached = updates_signal("windows-update", now, items, searched, installed)
        return self.cached
