"""Windows provider: a Windows Update Agent search through PowerShell COM, cached because it is slow."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from agent.checks import CheckContext
from agent.checks.updates import updates_signal
from shared.updates import AvailableUpdate, Updates

DEFAULT_CACHE = timedelta(hours=6)
SECURITY_CATEGORY = "Security Updates"
# Prints one JSON object. Dates are WUA's UTC values, written without a zone so nothing converts them twice.
SEARCH_SCRIPT = """
$searcher = (New-Object -ComObject Microsoft.Update.Session).CreateUpdateSearcher()
$result = $searcher.Search("IsInstalled=0 and IsHidden=0")
$updates = @(foreach ($u in $result.Updates) {
  @{ Title = $u.Title; KB = @($u.KBArticleIDs); MsrcSeverity = $u.MsrcSeverity;
     Categories = @(foreach ($c in $u.Categories) { $c.Name }) }
})
$au = (New-Object -ComObject Microsoft.Update.AutoUpdate).Results
function Stamp($d) { if ($d) { $d.ToString('yyyy-MM-ddTHH:mm:ss') } else { $null } }
$out = @{ updates = $updates; last_search_success = (Stamp $au.LastSearchSuccessDate);
          last_installation_success = (Stamp $au.LastInstallationSuccessDate) }
ConvertTo-Json -InputObject $out -Compress -Depth 4
"""


def utc_stamp(value: str | None) -> datetime | None:
    """A zone-less WUA date (UTC by the API's definition) as an aware datetime."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None


def parse_search(stdout: str) -> tuple[list[AvailableUpdate], datetime | None, datetime | None]:
    """Updates, last successful search and last successful installation from SEARCH_SCRIPT's JSON."""
    answer: dict[str, Any] = json.loads(stdout)
    items = []
    for update in answer.get("updates") or []:
        categories = update.get("Categories") or []
        security = SECURITY_CATEGORY in categories or bool(update.get("MsrcSeverity"))
        kbs = ", ".join(f"KB{kb}" for kb in update.get("KB") or [])
        items.append(AvailableUpdate(name=update["Title"], security=security, origin=kbs or None))
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
