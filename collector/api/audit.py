"""The audit log over the API: newest first, as JSON or as a CSV export (the owner's)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from collector import keys
from collector.api.errors import query_values, whole_number
from collector.api.technician import owner
from collector.store.account_rows import AuditEntry
from shared.spreadsheet import write_csv

CSV_HEADER = ("at", "actor", "address", "action", "target", "status", "detail")
PAGE_MAX = 5000


def entry_view(entry: AuditEntry) -> dict[str, Any]:
    """One audit entry as the API shows it."""
    return {"id": entry.entry_id, "at": entry.at.isoformat(), "actor": entry.actor, "address": entry.address,
            "action": entry.action, "target": entry.target, "status": entry.status, "detail": entry.detail}


async def entries(request: web.Request) -> list[AuditEntry]:
    """The entries the query asks for: `limit` (default 200) older than `before` (an entry id)."""
    with query_values():
        limit = whole_number("limit", request.query.get("limit"), 200, 1, PAGE_MAX)
        before = request.query.get("before")
        older_than = whole_number("before", before, 0, 1, 2**63 - 1) if before is not None else None
    async with request.app[keys.STORE].read() as tx:
        return await tx.audit_log(limit, older_than)


def as_csv(rows: list[AuditEntry]) -> web.Response:
    """The entries as a CSV download (formula cells neutralised, one line per cell)."""
    text = write_csv(CSV_HEADER, [
        (e.at.isoformat(), e.actor, e.address, e.action, e.target, str(e.status),
         "; ".join(f"{k}={v}" for k, v in e.detail.items())) for e in rows
    ])
    return web.Response(text=text, content_type="text/csv",
                        headers={"Content-Disposition": 'attachment; filename="fieldpost-audit.csv"'})


@owner
async def audit_log(request: web.Request) -> web.Response:
    """`GET /api/v1/audit[?limit=N&before=ID&format=csv]`: who changed what, when and from where."""
    rows = await entries(request)
    if request.query.get("format") == "csv":
        return as_csv(rows)
    return web.json_response({"entries": [entry_view(e) for e in rows]})
