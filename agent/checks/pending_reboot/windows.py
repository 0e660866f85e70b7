"""Windows pending-reboot provider: the registry signals the established tools read, plus WUA and ConfigMgr.

The registry READ (`read_registry`, winreg) is kept apart from the PARSER (`reasons_from_registry`),
which takes a plain snapshot in the shapes winreg returns, so the parser is table-tested on any OS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from agent.checks import CheckContext
from agent.checks.pending_reboot import RebootFacts, sessions_from
from agent.checks.pending_reboot.windows_sessions import windows_sessions
from agent.commands import Runner
from shared.pending_reboot import RebootReason

# Key paths below HKEY_LOCAL_MACHINE, as Test-PendingReboot (bcwilhite/PendingReboot), Adam Bertram's
# Test-PendingReboot.ps1 and check-restart (atc0005) read them.
AUTO_UPDATE = r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Auto Update"
REBOOT_REQUIRED = AUTO_UPDATE + r"\RebootRequired"
POST_REBOOT_REPORTING = AUTO_UPDATE + r"\PostRebootReporting"
CBS = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Component Based Servicing"
CBS_REBOOT_PENDING = CBS + r"\RebootPending"
CBS_REBOOT_IN_PROGRESS = CBS + r"\RebootInProgress"
CBS_PACKAGES_PENDING = CBS + r"\PackagesPending"
WU_SERVICES_PENDING = r"SOFTWARE\Microsoft\Windows\CurrentVersion\WindowsUpdate\Services\Pending"
SESSION_MANAGER = r"SYSTEM\CurrentControlSet\Control\Session Manager"
UPDATES = r"SOFTWARE\Microsoft\Updates"
RUN_ONCE = r"SOFTWARE\Microsoft\Windows\CurrentVersion\RunOnce"
SERVER_MANAGER_REBOOT_ATTEMPTS = r"SOFTWARE\Microsoft\ServerManager\CurrentRebootAttempts"
NETLOGON = r"SYSTEM\CurrentControlSet\Services\Netlogon"
ACTIVE_COMPUTER_NAME = r"SYSTEM\CurrentControlSet\Control\ComputerName\ActiveComputerName"
COMPUTER_NAME = r"SYSTEM\CurrentControlSet\Control\ComputerName\ComputerName"
PREFETCH_PARAMETERS = SESSION_MANAGER + r"\Memory Management\PrefetchParameters"

WATCHED_KEYS = (
    REBOOT_REQUIRED,
    POST_REBOOT_REPORTING,
    CBS_REBOOT_PENDING,
    CBS_REBOOT_IN_PROGRESS,
    CBS_PACKAGES_PENDING,
    WU_SERVICES_PENDING,
    SESSION_MANAGER,
    UPDATES,
    RUN_ONCE,
    SERVER_MANAGER_REBOOT_ATTEMPTS,
    NETLOGON,
    ACTIVE_COMPUTER_NAME,
    COMPUTER_NAME,
    PREFETCH_PARAMETERS,
)
# The Windows Store service sits under Services\Pending on healthy machines; it is not a reboot signal.
NOISY_PENDING_SERVICE = "117cab2d-82b1-4b5a-a08c-4d62dbee7782"
# High-confidence keys whose mere presence is the signal: (key, source, detail).
HIGH_KEYS = (
    (REBOOT_REQUIRED, "wu-reboot-required", r"Windows Update: Auto Update\RebootRequired is set"),
    (CBS_REBOOT_PENDING, "cbs-reboot-pending", "Component Based Servicing: RebootPending is set"),
    (CBS_REBOOT_IN_PROGRESS, "cbs-reboot-in-progress", "Component Based Servicing: RebootInProgress is set"),
    (CBS_PACKAGES_PENDING, "cbs-packages-pending", "Component Based Servicing: PackagesPending is set"),
)
LOW_KEYS = (
    (
        POST_REBOOT_REPORTING,
        "wu-post-reboot-reporting",
        r"Windows Update: Auto Update\PostRebootReporting is set",
    ),
    (
        SERVER_MANAGER_REBOOT_ATTEMPTS,
        "server-manager-reboot-attempts",
        r"ServerManager\CurrentRebootAttempts is set",
    ),
)

# One PowerShell start for the COM/CIM questions and the sessions showing the lock screen: it is slow to
# start. Prints one JSON object, with what failed in `errors` (COM is refused in Constrained Language
# mode, CIM fails when WMI is broken). 0x8004100E is WMI's "invalid namespace": no ConfigMgr client is
# installed, so there is nothing to ask, not a failure.
POWERSHELL_SCRIPT = """
$r = @{ wua_reboot_required = $null; ccm = $null; logonui_sessions = $null; errors = @() }
try { $r.wua_reboot_required = (New-Object -ComObject Microsoft.Update.SystemInfo).RebootRequired }
catch { $r.errors += 'Windows Update Agent: ' + $_.Exception.Message }
try {
  $c = Invoke-CimMethod -Namespace root/ccm/ClientSDK -ClassName CCM_ClientUtilities `
       -MethodName DetermineIfRebootPending -ErrorAction Stop
  $r.ccm = @{ ReturnValue = $c.ReturnValue; RebootPending = $c.RebootPending;
              IsHardRebootPending = $c.IsHardRebootPending }
} catch {
  if ($_.FullyQualifiedErrorId -notlike 'HRESULT 0x8004100e*') {
    $r.errors += 'Configuration Manager client: ' + $_.Exception.Message }
}
try {
  $r.logonui_sessions = @(Get-CimInstance Win32_Process -Filter "Name='LogonUI.exe'" -ErrorAction Stop |
                          ForEach-Object { $_.SessionId })
} catch { $r.errors += 'Win32_Process: ' + $_.Exception.Message }
ConvertTo-Json -InputObject $r -Compress
"""
# Known ways PowerShell fails on managed PCs, and what they mean for the technician.
POWERSHELL_FAILURES = (
    ("blocked by group policy", "PowerShell is blocked by policy (AppLocker or Software Restriction Policies)"),
    ("only core types are supported in this language mode",
     "PowerShell runs in Constrained Language mode (AppLocker/WDAC), which refuses COM objects"),
    ("is not recognized as the name of a cmdlet", "PowerShell is too old for this query (2.0?)"),
    ("provider load failure", "WMI is broken (provider load failure); repair the WMI repository"),
    ("invalid class", "WMI is broken (invalid class); repair the WMI repository"),
    ("0x80041010", "WMI is broken (invalid class); repair the WMI repository"),
    ("0x80041013", "WMI is broken (provider load failure); repair the WMI repository"),
    ("rpc server is unavailable", "WMI is not answering (the service is stopped or broken)"),
)

FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RegistrySnapshot:
    """What `read_registry` saw: a key is present in `values` exactly when it exists."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    subkeys: dict[str, list[str]] = field(default_factory=dict)
    last_write: dict[str, datetime] = field(default_factory=dict)


def filetime_to_datetime(filetime: int) -> datetime:
    """A Windows FILETIME (100 ns ticks since 1601, what QueryInfoKey returns) as a UTC datetime."""
    return FILETIME_EPOCH + timedelta(microseconds=filetime // 10)


def read_registry(paths: Iterable[str] = WATCHED_KEYS) -> RegistrySnapshot:
    """Snapshot the watched HKLM keys with winreg (Windows only): values, subkey names, last-write times."""
    import winreg  # only exists on Windows

    snapshot = RegistrySnapshot()
    for path in paths:
        try:
            # The 64-bit view, even from a 32-bit Python, or WOW64 redirection hides the real keys.
            with winreg.OpenKey(
                winreg.HKEY_LOCAL_MACHINE, path, 0, winreg.KEY_READ | winreg.KEY_WOW64_64KEY
            ) as key:
                n_subkeys, n_values, modified = winreg.QueryInfoKey(key)
                snapshot.values[path] = {
                    name: data for name, data, _type in (winreg.EnumValue(key, i) for i in range(n_values))
                }
                snapshot.subkeys[path] = [winreg.EnumKey(key, i) for i in range(n_subkeys)]
                snapshot.last_write[path] = filetime_to_datetime(modified)
        except FileNotFoundError:
            continue  # an absent key is itself the fact: no such reboot signal
    return snapshot


def reasons_from_registry(snapshot: RegistrySnapshot, pending_xml: bool = False) -> list[RebootReason]:
    """Every pending-reboot reason in a registry snapshot; `pending_xml` is WinSxS\\pending.xml existing."""
    reasons = [
        RebootReason(source=source, confidence="high", detail=detail)
        for key, source, detail in HIGH_KEYS
        if key in snapshot.values
    ]
    reasons += rename_and_join(snapshot)
    reasons += [
        RebootReason(source=source, confidence="low", detail=detail)
        for key, source, detail in LOW_KEYS
        if key in snapshot.values
    ]
    session_manager = snapshot.values.get(SESSION_MANAGER, {})
    for name in ("PendingFileRenameOperations", "PendingFileRenameOperations2"):
        operations = [path for path in session_manager.get(name) or [] if path]
        if operations:
            reasons.append(
                RebootReason(
                    source=name,
                    confidence="low",
                    detail=f"{name}: {len(operations)} path(s), first {operations[0]}",
                )
            )
    volatile = snapshot.values.get(UPDATES, {}).get("UpdateExeVolatile")
    if volatile:
        reasons.append(
            RebootReason(
                source="update-exe-volatile", confidence="low", detail=f"UpdateExeVolatile is {volatile}"
            )
        )
    services = [
        guid
        for guid in snapshot.subkeys.get(WU_SERVICES_PENDING, [])
        if guid.lower() != NOISY_PENDING_SERVICE
    ]
    if services:
        reasons.append(
            RebootReason(
                source="wu-services-pending",
                confidence="low",
                detail="Windows Update services pending: " + ", ".join(services),
            )
        )
    if "DVDRebootSignal" in snapshot.values.get(RUN_ONCE, {}):
        reasons.append(
            RebootReason(
                source="dvd-reboot-signal", confidence="low", detail=r"RunOnce\DVDRebootSignal is set"
            )
        )
    if pending_xml:
        reasons.append(
            RebootReason(source="winsxs-pending-xml", confidence="low", detail=r"WinSxS\pending.xml exists")
        )
    return reasons


def rename_and_join(snapshot: RegistrySnapshot) -> list[RebootReason]:
    """A pending computer rename (active name differs from the configured one) or domain join."""
    reasons = []
    active = snapshot.values.get(ACTIVE_COMPUTER_NAME, {}).get("ComputerName")
    configured = snapshot.values.get(COMPUTER_NAME, {}).get("ComputerName")
    if active and configured and active != configured:
        reasons.append(
            RebootReason(
                source="computer-rename",
                confidence="high",
                detail=f"computer rename pending: {active} -> {configured}",
            )
        )
    # Some tools look for these as values, others as subkeys of Netlogon; either is the same signal.
    netlogon = set(snapshot.values.get(NETLOGON, {})) | set(snapshot.subkeys.get(NETLOGON, []))
    joined = sorted(netlogon & {"JoinDomain", "AvoidSpnSet"})
    if joined:
        reasons.append(
            RebootReason(
                source="domain-join",
                confidence="high",
                detail="domain join pending (Netlogon " + ", ".join(joined) + ")",
            )
        )
    return reasons


def pending_since(snapshot: RegistrySnapshot, boot_time: datetime | None) -> datetime | None:
    """Earliest last-write time of a set high-confidence key, if later than boot (older ones predate it)."""
    written = [
        snapshot.last_write[key]
        for key, _, _ in HIGH_KEYS
        if key in snapshot.values and key in snapshot.last_write
    ]
    after_boot = [when for when in written if boot_time is None or when > boot_time]
    return min(after_boot) if after_boot else None


def explain_powershell_failure(text: str) -> str:
    """A PowerShell failure in words (AppLocker, Constrained Language, broken WMI), with its first sentence."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "no output")
    first = line.split(". ")[0].rstrip(".")[:200] + "."
    meaning = next((words for needle, words in POWERSHELL_FAILURES if needle in text.lower()), None)
    return f"{meaning}: {first}" if meaning else first


class PowerShellAnswer(NamedTuple):
    """What POWERSHELL_SCRIPT found: reboot reasons, what failed, sessions showing the lock screen."""

    reasons: list[RebootReason]
    errors: list[str]
    logonui_sessions: set[int]


def parse_powershell(stdout: str) -> PowerShellAnswer:
    """The WUA SystemInfo and ConfigMgr answers from POWERSHELL_SCRIPT's JSON, and what failed to answer."""
    answer = json.loads(stdout or "{}")
    reasons = []
    if answer.get("wua_reboot_required") is True:
        reasons.append(
            RebootReason(
                source="wua-reboot-required",
                confidence="high",
                detail="Windows Update Agent: SystemInfo.RebootRequired is true",
            )
        )
    ccm = answer.get("ccm") or {}
    if ccm.get("ReturnValue") == 0 and (ccm.get("RebootPending") or ccm.get("IsHardRebootPending")):
        hard = " (hard reboot)" if ccm.get("IsHardRebootPending") else ""
        reasons.append(
            RebootReason(
                source="configmgr",
                confidence="high",
                detail=f"Configuration Manager client: reboot pending{hard}",
            )
        )
    return PowerShellAnswer(
        reasons,
        [explain_powershell_failure(error) for error in answer.get("errors") or []],
        set(answer.get("logonui_sessions") or []),
    )


def windows_dir(root: Path) -> Path:
    """The Windows directory: %SystemRoot% on the live system, root/Windows in a prepared tree."""
    if root == Path("/"):
        return Path(os.environ.get("SYSTEMROOT", r"C:\Windows"))
    return root / "Windows"


class WindowsProvider:
    """Pending-reboot facts of a Windows host."""

    def __init__(
        self,
        context: CheckContext,
        read: Callable[[], RegistrySnapshot] = read_registry,
        users: Callable[[], Iterable[Any]] = psutil.users,
        boot_time: Callable[[], float] = psutil.boot_time,
    ) -> None:
        self.context = context
        self.read = read
        self.users = users
        self.boot_time = boot_time

    def facts(self, now: datetime) -> RebootFacts:
        """Registry, WinSxS and PowerShell reasons; boot id from the kernel's BootId counter."""
        snapshot = self.read()
        booted = datetime.fromtimestamp(self.boot_time(), UTC)
        pending_xml = (windows_dir(self.context.root) / "WinSxS" / "pending.xml").exists()
        # The registry's reasons stand on their own: a failing PowerShell is reported beside them.
        asked = ask_powershell(self.context.run)
        reasons = reasons_from_registry(snapshot, pending_xml) + asked.reasons
        users = list(self.users())
        boot_id = snapshot.values.get(PREFETCH_PARAMETERS, {}).get("BootId")
        return RebootFacts(
            reasons=reasons,
            pending_since=pending_since(snapshot, booted),
            boot_time=booted,
            boot_id=str(boot_id) if boot_id is not None else None,
            # psutil has no input time on Windows: without quser, idle and state stay unknown.
            sessions=windows_sessions(
                self.context.run, users, asked.logonui_sessions, sessions_from(users, now, lambda _terminal: None)
            ),
            errors=asked.errors,
        )


def ask_powershell(run: Runner) -> PowerShellAnswer:
    """Ask WUA, ConfigMgr and CIM through PowerShell: what it found, and what failed (never 'no reboot')."""
    try:
        result = run(
            ["powershell.exe", "-NoProfile", "-NonInteractive", "-Command", POWERSHELL_SCRIPT], timeout=90.0
        )
    except OSError as exc:  # AppLocker refuses to start it: WinError 1260
        return PowerShellAnswer([], [f"PowerShell could not start: {explain_powershell_failure(str(exc))}"], set())
    if result.returncode != 0:
        failure = explain_powershell_failure(result.stderr or result.stdout)
        return PowerShellAnswer([], [f"PowerShell pending-reboot query failed ({result.returncode}): {failure}"], set())
    try:
        return parse_powershell(result.stdout)
    except ValueError:
        failure = explain_powershell_failure(result.stdout)
        return PowerShellAnswer([], [f"PowerShell pending-reboot query printed no JSON: {failure}"], set())
