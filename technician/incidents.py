"""`fieldpost incident` (open, list, show, note, close) and `fieldpost time` (timer, or time added by duration)."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from datetime import datetime
from typing import Any

from technician.alerts import alert_detail
from technician.client import CliError, Context
from technician.parsing import actions, command, duration_minutes
from technician.text import local_time, table


def classified(entry: dict[str, Any]) -> str:
    """How an entry is billed, in words: covered time past the included hours is said to be billed."""
    charged = entry.get("charged")
    if entry["classification"] == "covered" and charged not in (None, "0.00"):
        return f"beyond the contract's included hours: {charged} billed"
    if entry["classification"] == "billable" and charged is not None:
        return f"billable: {charged}"
    return {
        "covered": "covered by the contract",
        "billable": "billable",
        "non_billable": "not billed",
        None: "running",
    }[entry["classification"]]


def incident_detail(incident: dict[str, Any]) -> str:
    """One incident with its alerts, notes, time and parts, readable."""
    lines = [
        f"incident {incident['incident_id']} {incident['status']}: {incident['title']}",
        f"  {incident['client']}, {incident['category']}{', EMERGENCY' if incident['emergency'] else ''}, "
        f"opened {local_time(incident['opened_at'])} by {incident['opened_by']}",
    ]
    for alert in incident["alerts"]:
        lines.append("  " + alert_detail(alert).replace("\n", "\n  "))
    lines += [f"  note {local_time(n['at'])} {n['by']}: {n['text']}" for n in incident["notes"]]
    lines += [
        f"  time #{e['entry_id']} {local_time(e['started_at'])} {e['technician']} "
        f"{e['minutes'] if e['minutes'] is not None else '...'} min"
        f"{' on site' if e['on_site'] else ''}{' after hours' if e['after_hours'] else ''}: {classified(e)}"
        for e in incident["time"]
    ]
    lines += [f"  part #{p['part_id']} {p['day']} {p['quantity']} x {p['description']} at {p['price']}"
              for p in incident["parts"]]
    saved = incident.get("time_saved")
    if saved:
        what = saved["detail"] or saved["preparation"].replace("_", " ")
        lines.append(f"  time saved by preparation ({what}): about {saved['minutes_without']} min without it, "
                     f"{saved['minutes_saved']} min saved")
    if incident["closed_at"]:
        lines.append(f"  closed {local_time(incident['closed_at'])}: {incident['resolution'] or '-'}")
    lines.append(f"  {incident['minutes']} min in all")
    return "\n".join(lines)


async def open_incident(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost incident open --from-alert ID | --client NAME --title TEXT`."""
    body = {k: getattr(args, k) for k in ("alert_id", "client", "title", "category") if getattr(args, k)}
    opened = await ctx.collector.post("/api/v1/incidents", {**body, "emergency": args.emergency})
    source = f", from alert #{opened['alert_id']}" if opened["alert_id"] else ""
    print(f"incident {opened['incident_id']} opened: {opened['title']} ({opened['client']}{source})")


async def list_incidents(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost incident list [--client NAME] [--status S] [--json]`."""
    query = urllib.parse.urlencode({"status": args.status, **({"client": args.client} if args.client else {})})
    incidents = (await ctx.collector.get(f"/api/v1/incidents?{query}"))["incidents"]
    if args.json:
        print(json.dumps(incidents, indent=2))
        return
    rows = [
        [str(i["incident_id"]), i["status"], i["client"], local_time(i["opened_at"]),
         f"#{i['alert_id']}" if i["alert_id"] else "-", f"{i['minutes']} min", i["title"]]
        for i in incidents
    ]
    print(table(rows, ["ID", "STATUS", "CLIENT", "OPENED", "ALERT", "TIME", "TITLE"]) if rows else "no incidents")


async def show_incident(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost incident show ID [--json]`."""
    incident = await ctx.collector.get(f"/api/v1/incidents/{args.incident_id}")
    print(json.dumps(incident, indent=2) if args.json else incident_detail(incident))


async def note_incident(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost incident note ID TEXT`."""
    await ctx.collector.post(f"/api/v1/incidents/{args.incident_id}/notes", {"text": args.text})
    print(f"note added to incident {args.incident_id}")


async def close_incident(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost incident close ID [--resolution TEXT]`."""
    closed = await ctx.collector.post(f"/api/v1/incidents/{args.incident_id}/close", {"resolution": args.resolution})
    print(f"incident {closed['incident_id']} closed: {closed['title']}")


async def retitle_incident(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost incident retitle ID TITLE`."""
    incident = await ctx.collector.post(f"/api/v1/incidents/{args.incident_id}/title", {"title": args.title})
    print(f"incident {incident['incident_id']} is now titled: {incident['title']}")


async def time_saved(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost incident saved ID --without 5h --preparation backup_image [--detail TEXT]` or `--clear`."""
    path = f"/api/v1/incidents/{args.incident_id}/time-saved"
    if args.clear:
        await ctx.collector.delete(f"{path}?{urllib.parse.urlencode({'technician': args.technician})}")
        print(f"time saved removed from incident {args.incident_id}")
        return
    if args.without is None or args.preparation is None:
        raise CliError("give --without (e.g. 5h) and --preparation, or --clear")
    saved = await ctx.collector.post(path, {"minutes_without": round(args.without), "preparation": args.preparation,
                                            "detail": args.detail, "technician": args.technician})
    print(f"incident {args.incident_id}: about {saved['minutes_without']} min without the preparation "
          f"({saved['detail'] or saved['preparation']}), shown in the value report")


async def edit_time(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost time edit ENTRY [--minutes N] [--at WHEN] [--onsite|--remote] [--after-hours|--in-hours]`."""
    given = {"minutes": args.minutes, "start": args.at.isoformat() if args.at else None, "on_site": args.on_site,
             "after_hours": args.after_hours, "note": args.note}
    body = {key: value for key, value in given.items() if value is not None}
    if not body:
        raise CliError("say what to correct: --minutes, --at, --onsite/--remote, --after-hours/--in-hours, --note")
    entry = await ctx.collector.post(f"/api/v1/time/{args.entry_id}", {**body, "technician": args.technician})
    print(f"time entry {entry['entry_id']} corrected: {entry['minutes']} min ({classified(entry)})")


async def delete_part(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost incident delete-part PART`."""
    query = urllib.parse.urlencode({"technician": args.technician})
    part = await ctx.collector.delete(f"/api/v1/parts/{args.part_id}?{query}")
    print(f"part {args.part_id} deleted: {part['description']}")


async def delete_time(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost time delete ENTRY`."""
    query = urllib.parse.urlencode({"technician": args.technician})
    entry = await ctx.collector.delete(f"/api/v1/time/{args.entry_id}?{query}")
    print(f"time entry {entry['entry_id']} deleted ({entry['minutes']} min on incident {entry['incident_id']})")


def time_body(args: argparse.Namespace) -> dict[str, Any]:
    """Who worked, and for start/add where and when."""
    body: dict[str, Any] = {"technician": args.technician}
    if args.action != "stop":
        body.update(on_site=args.onsite, after_hours=args.after_hours)
    return body


async def start_timer(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost time start ID`."""
    entry = await ctx.collector.post(f"/api/v1/incidents/{args.incident_id}/timer/start", time_body(args))
    print(f"timer started on incident {args.incident_id} at {local_time(entry['started_at'])}")


async def stop_timer(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost time stop ID`."""
    entry = await ctx.collector.post(f"/api/v1/incidents/{args.incident_id}/timer/stop", time_body(args))
    print(f"timer stopped on incident {args.incident_id}: {entry['minutes']} min ({classified(entry)})")


async def add_time(ctx: Context, args: argparse.Namespace) -> None:
    """`fieldpost time add ID --minutes N`."""
    body = {**time_body(args), "minutes": args.minutes, "note": args.note}
    if args.at:
        body["start"] = args.at.isoformat()
    if args.override:
        body.update(override=args.override, override_reason=args.reason)
    entry = await ctx.collector.post(f"/api/v1/incidents/{args.incident_id}/time", body)
    print(f"{entry['minutes']} min added to incident {args.incident_id} ({classified(entry)})")


def register(commands: Any) -> None:
    """Add `incident` and `time`."""
    incident = command(
        commands, "incident", "billable work: open (from an alert or by hand), list, show, note, close",
        examples=("fieldpost incident open --from-alert 42", "fieldpost incident open --client 'Acme Tooling' "
                  "--title 'New printer' --category request", "fieldpost incident close 7 --resolution 'new disk'"),
    )
    verbs = actions(incident)
    opening = command(verbs, "open", "open an incident --from-alert ID, or --client NAME --title TEXT",
                      examples=("fieldpost incident open --from-alert 42 --emergency",), func=open_incident)
    opening.add_argument("--from-alert", type=int, dest="alert_id", help="the alert that caught it")
    opening.add_argument("--client", help="by hand: whose incident it is")
    opening.add_argument("--title", help="what it is about (default: the alert summary's first line)")
    opening.add_argument("--category", help="e.g. hardware, network, request, internal (not billed)")
    opening.add_argument("--emergency", action="store_true",
                         help="its call-out (first visit) billed at the emergency minimum and multiplier")
    listing = command(verbs, "list", "incidents, oldest first",
                      examples=("fieldpost incident list --client 'Acme Tooling' --status all",), func=list_incidents)
    listing.add_argument("--client")
    listing.add_argument("--status", choices=["open", "closed", "all"], default="open")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    show = command(verbs, "show", "one incident with its alerts, notes, time and parts", func=show_incident)
    show.add_argument("incident_id", type=int)
    show.add_argument("--json", action="store_true", help="machine-readable output")
    note = command(verbs, "note", "add a note", examples=("fieldpost incident note 7 'ordered a new disk'",),
                   func=note_incident)
    note.add_argument("incident_id", type=int)
    note.add_argument("text")
    retitle = command(verbs, "retitle", "the title the client reads on invoices and reports",
                      examples=("fieldpost incident retitle 7 'Failing disk in the bookkeeping PC replaced'",),
                      func=retitle_incident)
    retitle.add_argument("incident_id", type=int)
    retitle.add_argument("title")
    gone = command(verbs, "delete-part", "delete a part recorded in error (add it again to correct it)",
                   examples=("fieldpost incident delete-part 3",), func=delete_part)
    gone.add_argument("part_id", type=int, help="the part's id (fieldpost incident show ID lists them)")
    gone.add_argument("--technician", default="technician", help="who deletes it (kept in the live feed)")
    saved = command(verbs, "saved", "time saved by preparation: how long the work would have taken without it",
                    examples=("fieldpost incident saved 7 --without 5h --preparation backup_image",
                              "fieldpost incident saved 7 --without 90m --preparation other --detail 'spare laptop'",
                              "fieldpost incident saved 7 --clear"), func=time_saved)
    saved.add_argument("incident_id", type=int)
    saved.add_argument("--without", type=duration_minutes, help="the work without the preparation: 90m, 5h, 1d")
    saved.add_argument("--preparation", help="backup_image, monitoring, documentation, spare_part or other")
    saved.add_argument("--detail", default="", help="what the preparation was (needed for other)")
    saved.add_argument("--clear", action="store_true", help="remove an estimate recorded in error")
    saved.add_argument("--technician", default="technician", help="who records it (kept in the live feed)")
    close = command(verbs, "close", "close it", func=close_incident)
    close.add_argument("incident_id", type=int)
    close.add_argument("--resolution", default="", help="what fixed it, for the client's report")

    time_cmd = command(
        commands, "time", "time on an incident: start/stop a timer, or add by duration",
        examples=("fieldpost time start 7", "fieldpost time stop 7", "fieldpost time add 7 --minutes 45 --onsite"),
    )
    time_verbs = actions(time_cmd)
    for name, what, func, example in (
        ("start", "start your timer", start_timer, "fieldpost time start 7 --onsite"),
        ("stop", "stop your timer", stop_timer, "fieldpost time stop 7"),
        ("add", "add time worked", add_time,
         "fieldpost time add 7 --minutes 30 --at 2026-11-03T09:00 --override covered --reason goodwill"),
    ):
        action = command(time_verbs, name, what, examples=(example,), func=func)
        action.add_argument("incident_id", type=int)
        action.add_argument("--technician", default="technician")
        if name == "stop":
            continue
        action.add_argument("--onsite", action="store_true", help="worked on site (default: remote)")
        action.add_argument("--after-hours", action="store_true", help="worked outside business hours")
    add = time_verbs.choices["add"]
    add.add_argument("--minutes", type=int, required=True)
    add.add_argument("--at", type=datetime.fromisoformat, help="when it began (default: minutes ago)")
    add.add_argument("--note", default="")
    add.add_argument("--override", choices=["covered", "billable", "non_billable"],
                     help="bill it this way instead of by the rules (needs --reason)")
    add.add_argument("--reason", help="why the override")
    edit = command(time_verbs, "edit", "correct a finished time entry (only what you give changes)",
                   examples=("fieldpost time edit 12 --minutes 40 --note 'replaced the toner too'",), func=edit_time)
    edit.add_argument("entry_id", type=int, help="the entry's id (fieldpost incident show ID lists them)")
    edit.add_argument("--minutes", type=int)
    edit.add_argument("--at", type=datetime.fromisoformat, help="when it began")
    edit.add_argument("--onsite", dest="on_site", action="store_const", const=True, help="it was on site")
    edit.add_argument("--remote", dest="on_site", action="store_const", const=False, help="it was remote")
    edit.add_argument("--after-hours", dest="after_hours", action="store_const", const=True)
    edit.add_argument("--in-hours", dest="after_hours", action="store_const", const=False)
    edit.add_argument("--note")
    edit.add_argument("--technician", default="technician", help="who corrects it (kept in the live feed)")
    delete = command(time_verbs, "delete", "delete a time entry recorded in error",
                     examples=("fieldpost time delete 12",), func=delete_time)
    delete.add_argument("entry_id", type=int)
    delete.add_argument("--technician", default="technician", help="who deletes it (kept in the live feed)")
