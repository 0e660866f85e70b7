"""The updates check: apt simulation, dnf check-update/updateinfo, Windows Update search, softwareupdate."""

from __future__ import annotations

import os
import plistlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.checks import CheckContext
from agent.checks.updates import UpdatesCheck
from agent.checks.updates.apt import COMMAND as APT
from agent.checks.updates.apt import index_refreshed_at, parse_simulation
from agent.checks.updates.darwin import parse_softwareupdate
from agent.checks.updates.dnf import parse_check_update, parse_security_advisories
from agent.checks.updates.windows import SEARCH_SCRIPT, WindowsUpdateProvider, utc_stamp
from shared.updates import Updates
from shared.wire import Unknown
from tests.agent.recorded_runs import FIXTURES, Recorded

UPDATES = FIXTURES / "updates"
NOW = datetime(2024, 11, 20, 2, 40, tzinfo=UTC)


def touch(path: Path, when: datetime) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def debian_tree(root: Path) -> Path:
    touch(root / "usr/bin/apt-get", NOW - timedelta(days=300))
    return root


def test_it_splits_apt_updates_by_security_origin() -> None:
    items = parse_simulation((UPDATES / "apt-get-s-dist-upgrade-bookworm.txt").read_text())

    assert (len(items), sum(item.security for item in items)) == (136, 81)
    by_name = {item.name: item for item in items}
    # Offered by both the point release and the security archive: any security origin makes it security.
    assert by_name["libgcrypt20"].security is True
    assert by_name["libgcrypt20"].origin == "Debian-Security:12/oldstable-security"
    assert (by_name["bash"].security, by_name["bash"].version) == (False, "5.2.15-2+b13")


def test_it_finds_no_apt_updates_in_an_empty_simulation() -> None:
    assert parse_simulation((UPDATES / "apt-get-s-dist-upgrade-none.txt").read_text()) == []


def test_it_prefers_the_periodic_stamp_for_the_apt_index_refresh(tmp_path: Path) -> None:
    lists_changed = NOW - timedelta(days=20)
    touch(tmp_path / "var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease", lists_changed)
    os.utime(tmp_path / "var/lib/apt/lists", (lists_changed.timestamp(),) * 2)
    assert index_refreshed_at(tmp_path) == lists_changed

    stamp = touch(tmp_path / "var/lib/apt/periodic/update-success-stamp", NOW - timedelta(hours=5))
    assert index_refreshed_at(tmp_path) == datetime.fromtimestamp(stamp.stat().st_mtime, UTC)


async def test_the_check_reports_apt_updates_index_and_last_install(tmp_path: Path) -> None:
    root = debian_tree(tmp_path)
    touch(root / "var/lib/apt/periodic/update-success-stamp", NOW - timedelta(days=9))
    touch(root / "var/lib/dpkg/status", NOW - timedelta(days=30))
    run = Recorded({tuple(APT): ("updates/apt-get-s-dist-upgrade-bookworm.txt", 0)})

    [signal] = await UpdatesCheck(CheckContext(root=root, run=run), platform="linux").run()

    assert isinstance(signal, Updates)
    assert (signal.manager, signal.security_count, signal.other_count) == ("apt", 81, 55)
    assert all(item.security for item in signal.items[:81])
    assert signal.index_refreshed_at == NOW - timedelta(days=9)
    assert signal.last_install_at == NOW - timedelta(days=30)
    assert run.calls == [tuple(APT)]


async def test_a_failed_apt_simulation_is_unknown_not_up_to_date(tmp_path: Path) -> None:
    run = Recorded({tuple(APT): ("", 100)})
    [signal] = await UpdatesCheck(CheckContext(root=debian_tree(tmp_path), run=run), platform="linux").run()
    assert isinstance(signal, Unknown)


async def test_a_linux_without_apt_or_dnf_is_unknown(tmp_path: Path) -> None:
    [signal] = await UpdatesCheck(CheckContext(root=tmp_path, run=Recorded({})), platform="linux").run()
    assert isinstance(signal, Unknown)
    assert "apt-get and dnf" in signal.error


def test_it_parses_dnf_check_update_columns() -> None:
    rows = parse_check_update((UPDATES / "dnf-check-update-fedora34.txt").read_text())
    assert rows[:2] == [
        ("audit-libs", "x86_64", "3.0.5-1.fc34", "updates"),
        ("avahi", "x86_64", "0.8-14.fc34", "updates"),
    ]
    assert ("vim-minimal", "x86_64", "2:8.2.3318-1.fc34", "updates") in rows
    assert len(rows) == 6


def test_it_joins_wrapped_dnf_rows_and_stops_at_obsoletes() -> None:
    stdout = (
        "Last metadata expiration check: 0:00:01 ago on Wed Jul 29 15:41:09 2026.\n\n"
        "python3-pyOpenSSL-very-long-name.noarch\n"
        "                             23.2.0-1.fc39                updates\n"
        "Obsoleting Packages\n"
        "kernel-core.x86_64           6.5.6-300.fc39               updates\n"
    )
    assert parse_check_update(stdout) == [
        ("python3-pyOpenSSL-very-long-name", "noarch", "23.2.0-1.fc39", "updates")
    ]


@pytest.mark.parametrize(
    ("fixture", "key", "advisory", "count"),
    [
        (
            "dnf-updateinfo-list-security-fedora34.txt",
            ("perl-Encode", "x86_64"),
            "FEDORA-2021-92e07de1dd",
            11,
        ),
        ("dnf-updateinfo-list-security-alma10.txt", ("glibc-common", "x86_64"), "ALSA-2026:33092", 6),
    ],
)
def test_it_reads_dnf_security_advisories(fixture: str, key: tuple, advisory: str, count: int) -> None:
    advisories = parse_security_advisories((UPDATES / fixture).read_text())
    assert (advisories[key], len(advisories)) == (advisory, count)


async def test_the_check_marks_dnf_updates_with_security_advisories(tmp_path: Path) -> None:
    touch(tmp_path / "usr/bin/dnf", NOW)
    refreshed = NOW - timedelta(hours=3)
    touch(tmp_path / "var/cache/dnf/updates-2d5c1fdd5d3fa9a1/repodata/repomd.xml", refreshed)
    run = Recorded(
        {
            ("dnf", "check-update"): ("updates/dnf-check-update-fedora34.txt", 100),
            ("dnf", "updateinfo"): ("updates/dnf-updateinfo-list-security-fedora34.txt", 0),
        }
    )

    [signal] = await UpdatesCheck(CheckContext(root=tmp_path, run=run), platform="linux").run()

    assert [(item.name, item.origin) for item in signal.items if item.security] == [
        ("avahi", "FEDORA-2021-74ebf2f06f"),
        ("avahi-libs", "FEDORA-2021-74ebf2f06f"),
    ]
    assert (signal.security_count, signal.other_count) == (2, 4)
    assert signal.index_refreshed_at == refreshed


@pytest.mark.parametrize("code", [1, 200])
async def test_a_dnf_error_exit_is_unknown(tmp_path: Path, code: int) -> None:
    touch(tmp_path / "usr/bin/dnf", NOW)
    run = Recorded({("dnf", "check-update"): ("", code)})
    [signal] = await UpdatesCheck(CheckContext(root=tmp_path, run=run), platform="linux").run()
    assert isinstance(signal, Unknown)


def wua(
    tmp_path: Path, fixture: str, cache_seconds: int | None = None
) -> tuple[WindowsUpdateProvider, Recorded]:
    run = Recorded({("powershell.exe",): (f"updates/{fixture}", 0)})
    settings = {} if cache_seconds is None else {"search_cache_seconds": cache_seconds}
    return WindowsUpdateProvider(CheckContext(settings=settings, root=tmp_path, run=run)), run


def test_it_classifies_windows_updates_by_category_and_severity(tmp_path: Path) -> None:
    provider, _ = wua(tmp_path, "wua-search.json")

    signal = provider.collect(NOW)

    assert [(item.security, item.origin) for item in signal.items] == [
        (True, "KB5046617"),
        (False, "KB5045935"),
        (False, "KB2267602"),
    ]
    assert signal.index_refreshed_at == datetime(2024, 11, 20, 2, 11, 45, tzinfo=UTC)
    assert signal.last_install_at == datetime(2024, 11, 12, 3, 14, 7, tzinfo=UTC)


def test_it_counts_german_sicherheitsupdates_as_security_by_category_id(tmp_path: Path) -> None:
    provider, _ = wua(tmp_path, "wua-search-de.json")

    signal = provider.collect(NOW)

    assert [(item.security, item.origin) for item in signal.items] == [
        (True, "KB5044020"),  # no MSRC severity: the category id alone says security
        (True, "KB5046617"),
        (False, "KB2267602"),
        (False, "KB890830"),  # Kritische Updates: Microsoft's non-security fixes
    ]
    assert (signal.security_count, signal.other_count) == (2, 2)
    assert signal.index_refreshed_at == datetime(2024, 11, 20, 2, 11, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    "stamp",
    [
        "2024-11-20T02:11:45",  # what SEARCH_SCRIPT prints (invariant culture)
        "2024-11-20T02.11.45",  # a culture whose time separator is '.' (the old script's custom format)
        "2024-11-20 02:11:45Z",
        "2024-11-20T02:11:45.0000000",  # the round-trip format 'o'
    ],
)
def test_it_reads_wua_dates_whatever_the_cultures_separators(stamp: str) -> None:
    assert utc_stamp(stamp) == datetime(2024, 11, 20, 2, 11, 45, tzinfo=UTC)


def test_the_search_asks_for_dates_in_the_invariant_culture() -> None:
    assert "InvariantCulture" in SEARCH_SCRIPT
    assert "'yyyy-MM-dd\"T\"HH\":\"mm\":\"ss'" in SEARCH_SCRIPT


def test_it_reuses_the_slow_windows_search_while_fresh(tmp_path: Path) -> None:
    provider, run = wua(tmp_path, "wua-search-none.json", cache_seconds=3600)

    first = provider.collect(NOW)
    again = provider.collect(NOW + timedelta(minutes=30))
    later = provider.collect(NOW + timedelta(hours=2))

    assert again is first
    assert later.collected_at == NOW + timedelta(hours=2)
    assert len(run.calls) == 2


def test_it_marks_apples_security_releases_and_restarts() -> None:
    entries = parse_softwareupdate((UPDATES / "softwareupdate-l.txt").read_text())
    assert [(e.label, e.version, e.security, e.restart) for e in entries] == [
        ("macOS Tahoe 26.6-25G72", "26.6", False, True),
        ("macOS Background Security Improvement (a)-25D771280a", "26.3.1 (a)", True, True),
        ("Command Line Tools for Xcode 27.0-27.0", "27.0", False, False),
    ]


async def test_the_check_reads_macos_catalogue_refresh_from_software_update_prefs(tmp_path: Path) -> None:
    prefs = tmp_path / "Library/Preferences/com.apple.SoftwareUpdate.plist"
    prefs.parent.mkdir(parents=True)
    prefs.write_bytes(
        plistlib.dumps(
            {"LastSuccessfulDate": datetime(2024, 11, 19, 23, 5, 1), "LastRecommendedUpdatesAvailable": 2},
            fmt=plistlib.FMT_BINARY,
        )
    )
    run = Recorded({("softwareupdate", "-l"): ("updates/softwareupdate-l.txt", 0)})

    [signal] = await UpdatesCheck(CheckContext(root=tmp_path, run=run), platform="darwin").run()

    assert (signal.manager, signal.security_count, signal.other_count) == ("softwareupdate", 1, 2)
    # Where a restart-requiring update belongs: an update to install, that will need a restart.
    assert [(item.name, item.restart) for item in signal.items] == [
        ("macOS Background Security Improvement (a)-25D771280a", True),
        ("Command Line Tools for Xcode 27.0-27.0", False),
        ("macOS Tahoe 26.6-25G72", True),
    ]
    assert signal.index_refreshed_at == datetime(2024, 11, 19, 23, 5, 1, tzinfo=UTC)
    assert run.calls == [("softwareupdate", "-l")]
