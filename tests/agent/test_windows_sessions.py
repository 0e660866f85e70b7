"""Windows sessions: state and idle time from recorded `query user` output, locks from LogonUI.exe."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.checks import CheckContext
from agent.checks.pending_reboot.windows import WindowsProvider
from agent.checks.pending_reboot.windows_sessions import parse_idle, parse_query_user
from tests.agent.recorded_runs import FIXTURES, Recorded
from tests.agent.test_pending_reboot import BOOT, CLEAN, NOW, suser

RECORDED = FIXTURES / "pending_reboot"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(".", 0.0), ("5", 300.0), ("1:12", 4320.0), ("2+03:15", 184500.0), ("none", None), ("Kein", None)],
)
def test_it_reads_quser_idle_times(text: str, seconds: float | None) -> None:
    assert parse_idle(text) == seconds


def test_it_reads_states_idle_times_and_the_lock_screen_from_query_user() -> None:
    sessions = parse_query_user((RECORDED / "query-user-en.txt").read_text(), locked={1})
    assert [(sid, s.user, s.terminal, s.state, s.idle_seconds) for sid, s in sessions] == [
        (1, "reception", "console", "locked", 4320.0),
        (2, "administrator", "rdp-tcp#0", "active", 0.0),
        (3, "jsmith", None, "disconnected", 184500.0),
    ]


def test_it_reads_german_query_user() -> None:
    sessions = parse_query_user((RECORDED / "query-user-de.txt").read_text(), locked=set())
    assert [(sid, s.user, s.terminal, s.state, s.idle_seconds) for sid, s in sessions] == [
        (1, "empfang", "console", "active", None),
        (3, "jschmidt", None, "disconnected", 2700.0),
    ]


def provider(tmp_path: Path, run: Recorded) -> WindowsProvider:
    started = datetime(2024, 11, 20, 7, 58, tzinfo=UTC).timestamp()
    return WindowsProvider(
        CheckContext(root=tmp_path, run=run),
        read=lambda: CLEAN,
        users=lambda: [suser("reception", None, None, started, None)],
        boot_time=BOOT.timestamp,
    )


def test_windows_facts_carry_session_state_idle_and_start(tmp_path: Path) -> None:
    run = Recorded(
        {
            ("query", "user"): ("pending_reboot/query-user-en.txt", 0),
            ("powershell.exe",): ("pending_reboot/powershell-locked-session.json", 0),
        }
    )

    sessions = provider(tmp_path, run).facts(NOW).sessions

    assert [(s.user, s.state, s.idle_seconds, s.started) for s in sessions] == [
        ("reception", "locked", 4320.0, datetime(2024, 11, 20, 7, 58, tzinfo=UTC)),
        ("administrator", "active", 0.0, None),
        ("jsmith", "disconnected", 184500.0, None),
    ]


def test_nobody_logged_on_is_no_session(tmp_path: Path) -> None:
    run = Recorded(
        {("query", "user"): ("", 1), ("powershell.exe",): ("pending_reboot/powershell-nothing-pending.json", 0)}
    )
    assert provider(tmp_path, run).facts(NOW).sessions == []


def test_without_query_user_windows_home_falls_back_to_psutil_with_state_unknown(tmp_path: Path) -> None:
    run = Recorded({("powershell.exe",): ("pending_reboot/powershell-nothing-pending.json", 0)})
    [session] = provider(tmp_path, run).facts(NOW).sessions
    assert (session.user, session.state, session.idle_seconds) == ("reception", None, None)
