"""The pending_reboot check: Linux on real directory trees, Windows on registry snapshots, macOS output."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.checks import CheckContext
from agent.checks.pending_reboot import PendingRebootCheck
from agent.checks.pending_reboot.darwin import DarwinProvider
from agent.checks.pending_reboot.linux import LinuxProvider, parse_needrestart, parse_needs_restarting
from agent.checks.pending_reboot.windows import (
    ACTIVE_COMPUTER_NAME,
    CBS_PACKAGES_PENDING,
    CBS_REBOOT_PENDING,
    COMPUTER_NAME,
    NETLOGON,
    PREFETCH_PARAMETERS,
    REBOOT_REQUIRED,
    RUN_ONCE,
    SESSION_MANAGER,
    UPDATES,
    WU_SERVICES_PENDING,
    RegistrySnapshot,
    WindowsProvider,
    explain_powershell_failure,
    filetime_to_datetime,
    parse_powershell,
    pending_since,
    reasons_from_registry,
)
from agent.commands import CommandResult
from agent.maintenance import Decision, reboot_decision
from collector.rules import History
from collector.rules.pending_reboot import evaluate
from shared.pending_reboot import PendingReboot, RebootAction
from tests.agent.recorded_runs import FIXTURES, Recorded

try:  # psutil's own user-session record type; its private module moved in psutil 7
    from psutil._ntuples import suser
except ImportError:  # pragma: no cover - older psutil
    from psutil._common import suser

NOW = datetime(2024, 11, 20, 9, 30, tzinfo=UTC)
BOOT = datetime(2024, 11, 14, 7, 55, 12, tzinfo=UTC)
BOOT_ID = "3f1b8a56-7c0e-4d2b-9a61-5e0f3c1d2b7a"
NO_TOOLS = Recorded({})


def linux_tree(root: Path, running: str = "6.1.0-13-amd64") -> Path:
    """The /proc files every Linux host has: running kernel, boot time, boot id."""
    (root / "proc/sys/kernel/random").mkdir(parents=True)
    (root / "proc/sys/kernel/osrelease").write_text(running + "\n")
    (root / "proc/sys/kernel/random/boot_id").write_text(BOOT_ID + "\n")
    (root / "proc/stat").write_text(f"cpu  1 2 3 4\nbtime {int(BOOT.timestamp())}\nprocesses 812\n")
    return root


def touch(path: Path, when: datetime, text: str = "") -> Path:
    """Create a file with a chosen modification time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (when.timestamp(), when.timestamp()))
    return path


def linux_facts(root: Path, run: Recorded = NO_TOOLS, users: list | None = None):
    return LinuxProvider(CheckContext(root=root, run=run), users=lambda: users or []).facts(NOW)


def test_it_reports_debian_reboot_required_with_packages_boot_and_flag_age(tmp_path: Path) -> None:
    root = linux_tree(tmp_path)
    flagged = datetime(2024, 11, 16, 6, 25, tzinfo=UTC)
    touch(root / "run/reboot-required", flagged, "*** System restart required ***\n")
    touch(root / "run/reboot-required.pkgs", flagged, "linux-image-6.1.0-13-amd64\nlinux-base\nlinux-base\n")

    facts = linux_facts(root)

    assert [(r.source, r.confidence, r.detail) for r in facts.reasons] == [
        ("reboot-required-file", "high", "linux-base, linux-image-6.1.0-13-amd64")
    ]
    assert facts.pending_since == flagged
    assert facts.boot_time == BOOT
    assert facts.boot_id == BOOT_ID


def test_it_finds_nothing_on_a_clean_tree(tmp_path: Path) -> None:
    root = linux_tree(tmp_path)
    touch(root / "boot/vmlinuz-6.1.0-13-amd64", BOOT)

    facts = linux_facts(root)

    assert facts.reasons == []
    assert facts.pending_since is None


def test_it_flags_a_newer_kernel_by_version_order_not_text_order(tmp_path: Path) -> None:
    root = linux_tree(tmp_path, running="6.1.0-9-amd64")
    installed = datetime(2024, 11, 15, 3, 2, tzinfo=UTC)
    touch(root / "boot/vmlinuz-6.1.0-9-amd64", BOOT - timedelta(days=40))
    touch(root / "boot/vmlinuz-6.1.0-13-amd64", BOOT - timedelta(days=20))  # the package's build date
    touch(root / "lib/modules/6.1.0-13-amd64/modules.dep", installed)  # depmod ran at install

    facts = linux_facts(root)

    assert [(r.source, r.detail) for r in facts.reasons] == [
        ("newer-kernel", "running kernel 6.1.0-9-amd64, newest installed 6.1.0-13-amd64")
    ]
    assert facts.pending_since == installed


def test_it_ignores_other_flavours_and_leftover_module_dirs(tmp_path: Path) -> None:
    root = linux_tree(tmp_path, running="6.1.0-13-amd64")
    touch(root / "boot/vmlinuz-6.1.0-13-amd64", BOOT)
    touch(root / "boot/vmlinuz-6.1.0-15-rt-amd64", BOOT)
    # A removed kernel's modules dir keeps DKMS leftovers but no modules.dep.
    touch(root / "lib/modules/6.1.0-17-amd64/updates/dkms/vboxdrv.ko", BOOT)

    assert linux_facts(root).reasons == []


def test_it_counts_a_complete_modules_dir_as_an_installed_kernel(tmp_path: Path) -> None:
    root = linux_tree(tmp_path, running="5.14.0-427.el9.x86_64")
    touch(root / "lib/modules/5.14.0-427.el9.x86_64/modules.dep", BOOT)
    touch(root / "lib/modules/5.14.0-503.15.1.el9_5.x86_64/vmlinuz", BOOT)

    assert [r.detail for r in linux_facts(root).reasons] == [
        "running kernel 5.14.0-427.el9.x86_64, newest installed 5.14.0-503.15.1.el9_5.x86_64"
    ]


@pytest.mark.parametrize(
    ("fixture", "code", "detail"),
    [
        ("needs-restarting-r-required.txt", 1, "glibc, kernel, kernel-core"),
        ("needs-restarting-r-not-required.txt", 0, None),
        ("", 1, None),  # exit 1 without the verdict is a failure of the tool, not a reboot
    ],
)
def test_it_reads_needs_restarting_by_exit_code_and_verdict(
    fixture: str, code: int, detail: str | None
) -> None:
    stdout = (FIXTURES / "pending_reboot" / fixture).read_text() if fixture else ""
    reason = parse_needs_restarting(CommandResult(("needs-restarting", "-r"), code, stdout, ""))
    assert (reason.detail if reason else None) == detail


@pytest.mark.parametrize(
    ("fixture", "detail"),
    [
        (
            "needrestart-b-kernel-upgrade.txt",
            "kernel version upgrade: running 6.12.96+deb13-cloud-amd64, expected 6.12.100+deb13-cloud-amd64",
        ),
        ("needrestart-b-current.txt", None),
    ],
)
def test_it_reads_needrestart_kernel_status(fixture: str, detail: str | None) -> None:
    reason = parse_needrestart((FIXTURES / "pending_reboot" / fixture).read_text())
    assert (reason.detail if reason else None) == detail


def test_it_asks_the_rhel_and_debian_tools_when_installed(tmp_path: Path) -> None:
    run = Recorded(
        {
            ("needs-restarting", "-r"): ("pending_reboot/needs-restarting-r-required.txt", 1),
            ("needrestart", "-b"): ("pending_reboot/needrestart-b-kernel-upgrade.txt", 0),
        }
    )

    facts = linux_facts(linux_tree(tmp_path), run)

    assert [r.source for r in facts.reasons] == ["needs-restarting", "needrestart"]
    assert facts.pending_since is None  # neither tool dates its verdict


def test_it_measures_idle_time_from_the_tty_access_time(tmp_path: Path) -> None:
    root = linux_tree(tmp_path)
    touch(root / "dev/pts/0", NOW - timedelta(minutes=3))
    users = [
        suser("alice", "pts/0", "192.0.2.10", (NOW - timedelta(hours=15)).timestamp(), 4242),
        suser("bob", ":0", None, (NOW - timedelta(hours=1)).timestamp(), 1337),
    ]

    sessions = linux_facts(root, users=users).sessions

    assert [(s.user, s.terminal, s.started, s.idle_seconds) for s in sessions] == [
        ("alice", "pts/0", NOW - timedelta(hours=15), 180.0),
        ("bob", ":0", NOW - timedelta(hours=1), None),
    ]


async def test_the_check_reports_a_prepared_tree_with_the_last_policy_action(tmp_path: Path) -> None:
    root = linux_tree(tmp_path)
    touch(root / "run/reboot-required", BOOT + timedelta(days=2))
    touch(root / "run/reboot-required.pkgs", BOOT + timedelta(days=2), "linux-image-6.1.0-13-amd64\n")
    check = PendingRebootCheck(CheckContext(root=root, run=NO_TOOLS), platform="linux")
    check.last_action = RebootAction(
        policy="when-required-and-idle",
        action="skip",
        reason="skipped: user session active since 17:42",
        decided_at=NOW,
    )

    [signal] = await check.run()

    assert isinstance(signal, PendingReboot)
    assert signal.pending is True
    assert signal.boot_id == BOOT_ID
    assert signal.last_action == check.last_action
    assert PendingReboot.model_validate_json(signal.model_dump_json()) == signal


# Windows: snapshots shaped as winreg returns them (REG_MULTI_SZ -> list[str], REG_DWORD -> int).
CLEAN = RegistrySnapshot(
    values={
        SESSION_MANAGER: {
            "BootExecute": ["autocheck autochk *"],
            "ProtectionMode": 1,
            "CriticalSectionTimeout": 2592000,
        },
        ACTIVE_COMPUTER_NAME: {"ComputerName": "RECEPTION-01"},
        COMPUTER_NAME: {"ComputerName": "RECEPTION-01"},
        NETLOGON: {"DisplayName": "@%SystemRoot%\\System32\\netlogon.dll,-102", "Start": 3},
        UPDATES: {"UpdateExeVolatile": 0},
        RUN_ONCE: {},
        WU_SERVICES_PENDING: {},
        PREFETCH_PARAMETERS: {"BootId": 97, "BaseTime": 1032144171, "EnablePrefetcher": 3},
    },
    subkeys={WU_SERVICES_PENDING: ["117cab2d-82b1-4b5a-a08c-4d62dbee7782"], NETLOGON: ["Parameters"]},
)


def snapshot(values: dict | None = None, subkeys: dict | None = None, last_write: dict | None = None):
    """The clean machine with some keys changed."""
    return RegistrySnapshot(
        {**CLEAN.values, **(values or {})}, {**CLEAN.subkeys, **(subkeys or {})}, last_write or {}
    )


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        (snapshot(), []),
        (
            snapshot({REBOOT_REQUIRED: {"7a1a7e3c-32b1-4f0e-8a2c-5f4b0e9d2c11": 1}}),
            [("wu-reboot-required", "high")],
        ),
        (snapshot({CBS_REBOOT_PENDING: {}}), [("cbs-reboot-pending", "high")]),
        (snapshot({CBS_PACKAGES_PENDING: {}}), [("cbs-packages-pending", "high")]),
        (snapshot({COMPUTER_NAME: {"ComputerName": "FRONTDESK-01"}}), [("computer-rename", "high")]),
        (snapshot({NETLOGON: {**CLEAN.values[NETLOGON], "JoinDomain": 1}}), [("domain-join", "high")]),
        (snapshot(subkeys={NETLOGON: ["Parameters", "AvoidSpnSet"]}), [("domain-join", "high")]),
        (
            snapshot(
                {
                    SESSION_MANAGER: {
                        **CLEAN.values[SESSION_MANAGER],
                        "PendingFileRenameOperations": [
                            "\\??\\C:\\ProgramData\\Microsoft\\Windows Defender\\Scans\\mpenginedb.db-wal",
                            "",
                        ],
                    }
                }
            ),
            [("PendingFileRenameOperations", "low")],
        ),
        (
            snapshot(
                {SESSION_MANAGER: {**CLEAN.values[SESSION_MANAGER], "PendingFileRenameOperations2": []}}
            ),
            [],
        ),
        (snapshot({UPDATES: {"UpdateExeVolatile": 1}}), [("update-exe-volatile", "low")]),
        (snapshot({RUN_ONCE: {"DVDRebootSignal": b"\x02\x00\x00\x00"}}), [("dvd-reboot-signal", "low")]),
        (snapshot(subkeys={WU_SERVICES_PENDING: ["117CAB2D-82B1-4B5A-A08C-4D62DBEE7782"]}), []),
        (
            snapshot(subkeys={WU_SERVICES_PENDING: ["7971f918-a847-4430-9279-4a52d1efe18d"]}),
            [("wu-services-pending", "low")],
        ),
    ],
)
def test_it_turns_registry_snapshots_into_reasons(changed: RegistrySnapshot, expected: list) -> None:
    assert [(r.source, r.confidence) for r in reasons_from_registry(changed)] == expected


def test_it_names_the_pending_computer_rename() -> None:
    [reason] = reasons_from_registry(snapshot({COMPUTER_NAME: {"ComputerName": "FRONTDESK-01"}}))
    assert reason.detail == "computer rename pending: RECEPTION-01 -> FRONTDESK-01"


def test_it_counts_winsxs_pending_xml_as_low_confidence() -> None:
    assert [(r.source, r.confidence) for r in reasons_from_registry(CLEAN, pending_xml=True)] == [
        ("winsxs-pending-xml", "low")
    ]


def test_it_converts_registry_last_write_filetimes() -> None:
    assert filetime_to_datetime(116444736000000000) == datetime(1970, 1, 1, tzinfo=UTC)


def test_it_dates_the_reboot_from_the_key_written_after_boot() -> None:
    written = BOOT + timedelta(days=2, hours=19)
    after = snapshot({REBOOT_REQUIRED: {}}, last_write={REBOOT_REQUIRED: written})
    before = snapshot({REBOOT_REQUIRED: {}}, last_write={REBOOT_REQUIRED: BOOT - timedelta(hours=1)})

    assert pending_since(after, BOOT) == written
    assert pending_since(before, BOOT) is None


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("powershell-wua-reboot-required.json", [("wua-reboot-required", "high")]),
        ("powershell-configmgr-reboot-pending.json", [("configmgr", "high")]),
        ("powershell-nothing-pending.json", []),
    ],
)
def test_it_reads_wua_and_configmgr_answers(fixture: str, expected: list) -> None:
    answer = parse_powershell((FIXTURES / "pending_reboot" / fixture).read_text())
    assert [(r.source, r.confidence) for r in answer.reasons] == expected
    assert answer.errors == []


@pytest.mark.parametrize(
    ("fixture", "expected", "error"),
    [
        (
            "powershell-constrained-language.json",
            [],
            "PowerShell runs in Constrained Language mode (AppLocker/WDAC), which refuses COM objects: "
            "Windows Update Agent: Cannot create type.",
        ),
        (
            "powershell-wmi-broken.json",
            [("wua-reboot-required", "high")],
            "WMI is broken (provider load failure); repair the WMI repository: "
            "Configuration Manager client: Provider load failure.",
        ),
    ],
)
def test_it_reports_what_powershell_could_not_ask_beside_what_it_could(fixture, expected, error) -> None:
    answer = parse_powershell((FIXTURES / "pending_reboot" / fixture).read_text())
    assert [(r.source, r.confidence) for r in answer.reasons] == expected
    assert answer.errors == [error]


def test_it_explains_an_old_powershell_by_its_error_text() -> None:
    stderr = (FIXTURES / "pending_reboot" / "powershell-v2-stderr.txt").read_text()
    assert explain_powershell_failure(stderr) == (
        "PowerShell is too old for this query (2.0?): The term 'ConvertTo-Json' is not recognized as the name "
        "of a cmdlet, function, script file, or operable program."
    )


def windows_provider(tmp_path: Path, run: Recorded, registry: RegistrySnapshot) -> WindowsProvider:
    return WindowsProvider(
        CheckContext(root=tmp_path, run=run),
        read=lambda: registry,
        users=lambda: [suser("reception", None, None, BOOT.timestamp() + 600, None)],
        boot_time=BOOT.timestamp,
    )


def test_windows_facts_combine_registry_winsxs_and_wua(tmp_path: Path) -> None:
    touch(tmp_path / "Windows/WinSxS/pending.xml", NOW)
    written = BOOT + timedelta(days=1)
    run = Recorded({("powershell.exe",): ("pending_reboot/powershell-wua-reboot-required.json", 0)})
    registry = snapshot({REBOOT_REQUIRED: {}}, last_write={REBOOT_REQUIRED: written})

    facts = windows_provider(tmp_path, run, registry).facts(NOW)

    assert [r.source for r in facts.reasons] == [
        "wu-reboot-required",
        "winsxs-pending-xml",
        "wua-reboot-required",
    ]
    assert (facts.pending_since, facts.boot_time, facts.boot_id) == (written, BOOT, "97")
    assert [(s.user, s.idle_seconds) for s in facts.sessions] == [("reception", None)]


def failing_powershell(stderr_fixture: str, code: int = 1):
    """A runner whose PowerShell exits with `code` and the recorded stderr."""

    def run(argv, timeout: float = 60.0) -> CommandResult:
        stderr = (FIXTURES / "pending_reboot" / stderr_fixture).read_text()
        return CommandResult(tuple(argv), code, "", stderr)

    return run


def blocked_powershell(argv, timeout: float = 60.0) -> CommandResult:
    """AppLocker refuses to start powershell.exe: CreateProcess fails, Python raises."""
    raise PermissionError((FIXTURES / "pending_reboot" / "powershell-applocker-winerror.txt").read_text().strip())


@pytest.mark.parametrize(
    ("run", "error"),
    [
        (
            blocked_powershell,
            "PowerShell could not start: PowerShell is blocked by policy (AppLocker or Software Restriction "
            "Policies): [WinError 1260] This program is blocked by group policy.",
        ),
        (
            failing_powershell("powershell-v2-stderr.txt"),
            "PowerShell pending-reboot query failed (1): PowerShell is too old for this query (2.0?): The term "
            "'ConvertTo-Json' is not recognized as the name of a cmdlet, function, script file, or operable "
            "program.",
        ),
    ],
)
async def test_a_failing_powershell_keeps_the_registry_reasons_and_reports_the_failure(
    tmp_path: Path, run, error: str
) -> None:
    registry = snapshot({CBS_REBOOT_PENDING: {}}, last_write={CBS_REBOOT_PENDING: BOOT + timedelta(days=1)})
    check = PendingRebootCheck(CheckContext(root=tmp_path, run=run), platform="linux")
    check.provider = windows_provider(tmp_path, run, registry)

    [signal] = await check.run()

    assert isinstance(signal, PendingReboot), "not unknown: the registry was read"
    assert signal.pending is True
    assert [(r.source, r.confidence) for r in signal.reasons] == [("cbs-reboot-pending", "high")]
    assert signal.errors == [error]
    verdict, _ = evaluate(signal, History(now=NOW, hostname="RECEPTION-01"))
    assert verdict.status == "warning"
    assert verdict.summary.endswith(f"; could not read: {error}")


@pytest.mark.parametrize(
    "fixture",
    [
        "softwareupdate-l-no-scan-restart.txt",
        "softwareupdate-l-no-scan-security.txt",
        "softwareupdate-l-no-scan-none.txt",
    ],
)
async def test_an_available_macos_update_that_needs_a_restart_is_not_a_pending_reboot(
    tmp_path: Path, fixture: str
) -> None:
    run = Recorded(
        {
            ("softwareupdate",): (f"pending_reboot/{fixture}", 0),
            ("sysctl", "-n", "kern.bootsessionuuid"): ("pending_reboot/sysctl-kern-bootsessionuuid.txt", 0),
        }
    )
    check = PendingRebootCheck(CheckContext(root=tmp_path, run=run, clock=lambda: NOW), platform="darwin")
    check.provider = DarwinProvider(check.context, users=list, boot_time=BOOT.timestamp)

    [signal] = await check.run()

    assert isinstance(signal, PendingReboot)
    assert (signal.pending, signal.reasons) == (False, [])
    assert signal.boot_id == "0C2E43A4-2E43-4E36-9D3A-52C7CBF3F5E1"
    night = datetime(2024, 11, 21, 2, 30, tzinfo=UTC)
    assert reboot_decision("when-required", signal, [], night) == Decision("skip", "no reboot pending")


async def test_pending_since_keeps_the_earliest_date_of_this_boot_across_later_installs(tmp_path: Path) -> None:
    root = linux_tree(tmp_path / "root")
    first = BOOT + timedelta(days=1)
    touch(root / "run/reboot-required", first, "*** System restart required ***\n")
    touch(root / "run/reboot-required.pkgs", first, "linux-image-6.1.0-13-amd64\n")
    check = PendingRebootCheck(CheckContext(root=root, run=NO_TOOLS, state_dir=tmp_path / "state"), platform="linux")
    [before] = await check.run()

    # Two days later another package asks for the reboot: the OS's flag gets a new date.
    touch(root / "run/reboot-required", first + timedelta(days=2), "*** System restart required ***\n")
    [after] = await check.run()

    # After a reboot the spell starts afresh.
    (root / "proc/sys/kernel/random/boot_id").write_text("next-boot\n")
    touch(root / "run/reboot-required", first + timedelta(days=3), "*** System restart required ***\n")
    [rebooted] = await check.run()

    assert isinstance(before, PendingReboot) and isinstance(after, PendingReboot)
    assert isinstance(rebooted, PendingReboot)
    assert (before.pending_since, after.pending_since) == (first, first)
    assert rebooted.pending_since == first + timedelta(days=3)


async def test_without_an_os_date_pending_since_is_when_the_agent_first_saw_it(tmp_path: Path) -> None:
    run = Recorded({("needrestart", "-b"): ("pending_reboot/needrestart-b-kernel-upgrade.txt", 0)})
    clock = iter([NOW, NOW + timedelta(hours=1)])
    context = CheckContext(root=linux_tree(tmp_path / "root"), run=run, state_dir=tmp_path / "state",
                           clock=lambda: next(clock))
    check = PendingRebootCheck(context, platform="linux")

    [first] = await check.run()
    [second] = await check.run()

    assert isinstance(first, PendingReboot) and isinstance(second, PendingReboot)
    assert (first.pending_since, second.pending_since) == (NOW, NOW)


def test_a_kernel_installed_minutes_ago_on_a_host_up_40_days_is_pending_for_minutes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    # Unpacked just now (its real ctime), as dpkg does: the package's build date, 60 days ago, as mtime.
    image = touch(root / "boot/vmlinuz-6.1.0-13-amd64", datetime.now(UTC) - timedelta(days=60))
    unpacked = datetime.fromtimestamp(image.stat().st_ctime, UTC)
    booted = unpacked - timedelta(days=40)
    linux_tree(root, running="6.1.0-9-amd64")
    (root / "proc/stat").write_text(f"btime {int(booted.timestamp())}\n")
    touch(root / "boot/vmlinuz-6.1.0-9-amd64", booted - timedelta(days=90))
    now = unpacked + timedelta(minutes=10)
    check = PendingRebootCheck(CheckContext(root=root, run=NO_TOOLS, clock=lambda: now), platform="linux")

    [signal] = check.collect()

    assert isinstance(signal, PendingReboot)
    assert signal.pending_since == unpacked
    verdict, _ = evaluate(signal, History(now=now, hostname="WS-07"))
    assert (verdict.status, verdict.details["pending_seconds"]) == ("ok", 600)
