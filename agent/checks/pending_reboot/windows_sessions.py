"""Windows sessions as `query user` prints them: state (active, disconnected) and idle time, plus locks.

psutil has no idle time on Windows, so every session looked in use and `when-required-and-idle` never
rebooted. `query user` (quser.exe) shows each session's state and the time since its last input; a
session in which LogonUI.exe runs (Win32_Process, asked in the same PowerShell run as the reboot
questions) shows the lock screen. The parser is kept apart from the call and tested on recorded output.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from agent.commands import CommandNotFound, Runner
from shared.pending_reboot import InteractiveSession, SessionState

#  USERNAME              SESSIONNAME        ID  STATE   IDLE TIME  LOGON TIME
# >reception             console             1  Active      none   11/20/2024 7:58 AM
#  jsmith                                    3  Disc        1:05   11/19/2024 5:42 PM   (no session name)
QUERY_USER_LINE = re.compile(
    r"^[ >](?P<user>\S+)\s+(?:(?P<session>\S+)\s+)?(?P<id>\d+)\s+(?P<state>\S+)\s+(?P<idle>\S+)\s+\S"
)
# quser translates its states (German "Aktiv"/"Getr."); anything else stays unknown, i.e. maybe in use.
STATES: dict[str, SessionState] = {
    "active": "active",
    "aktiv": "active",
    "actif": "active",
    "disc": "disconnected",
    "getr.": "disconnected",
    "déco": "disconnected",
}
# `5` minutes, `1:05` hours:minutes, `2+03:15` days+hours:minutes; `.` is under a minute.
IDLE = re.compile(r"(?:(\d+)\+)?(?:(\d+):)?(\d+)")


def parse_idle(text: str) -> float | None:
    """quser's IDLE TIME in seconds; None for `none` (or its translation): not tracked for the session."""
    if text == ".":
        return 0.0
    found = IDLE.fullmatch(text)
    if not found:
        return None
    days, hours, minutes = (int(part or 0) for part in found.groups())
    return float(((days * 24 + hours) * 60 + minutes) * 60)


def parse_query_user(stdout: str, locked: set[int]) -> list[tuple[int, InteractiveSession]]:
    """(session id, session) per line; an active session showing the lock screen is `locked`."""
    sessions = []
    for line in stdout.splitlines()[1:]:
        found = QUERY_USER_LINE.match(line)
        if not found:
            continue
        session_id = int(found["id"])
        state = STATES.get(found["state"].lower())
        if state == "active" and session_id in locked:
            state = "locked"
        sessions.append(
            (
                session_id,
                InteractiveSession(
                    user=found["user"],
                    terminal=found["session"],
                    idle_seconds=parse_idle(found["idle"]),
                    state=state,
                ),
            )
        )
    return sessions


def query_user(run: Runner) -> str | None:
    """`query user`'s output; "" when nobody is logged on, None where it cannot run (Windows Home, policy)."""
    try:
        result = run(["query", "user"], timeout=30.0)
    except (CommandNotFound, OSError):
        return None
    # Exit 1 with "No User exists for *" when nobody is logged on.
    return result.stdout if result.returncode == 0 else ""


def windows_sessions(
    run: Runner, users: Iterable[Any], locked: set[int], fallback: list[InteractiveSession]
) -> list[InteractiveSession]:
    """Sessions from `query user`, with start times from psutil's users; `fallback` where quser is missing."""
    stdout = query_user(run)
    if stdout is None:
        return fallback
    started = {user.name.lower(): user.started for user in users if user.started}
    return [
        session.model_copy(
            update={"started": datetime.fromtimestamp(started[session.user.lower()], UTC)}
        )
        if session.user.lower() in started
        else session
        for _, session in parse_query_user(stdout, locked)
    ]
