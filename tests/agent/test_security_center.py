"""The security_center check: recorded Windows and macOS outputs, real clamscan and nft runs on Linux."""

from __future__ import annotations

import io
import json
import os
import shlex
import shutil
import subprocess
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.checks import CheckContext
from agent.checks.security_center import SecurityCenterCheck
from agent.checks.security_center.darwin import SOCKETFILTERFW, XPROTECT_PLISTS
from agent.checks.security_center.linux import LinuxProvider, parse_clamscan_version, parse_nft
from agent.checks.security_center.windows import (
    decode_product_state,
    defender_product,
    merge_defender,
    parse_defender_events,
    parse_detections,
    parse_firewall,
    parse_products,
    parse_script,
)
from agent.commands import CommandResult, Runner, run_command
from shared.security_center import SecurityCenter
from shared.wire import Unknown
from tests.agent.recorded_runs import FIXTURES, Recorded
from tests.tooling import requires_tool

WINDOWS = FIXTURES / "windows"
MACOS = FIXTURES / "macos"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def recorded(name: str) -> object:
    return json.loads((WINDOWS / name).read_text(encoding="utf-8"))


def test_it_decodes_security_center_product_states() -> None:
    assert decode_product_state(397568) == (True, True)  # 0x61100: Defender on, current
    assert decode_product_state(393472) == (False, True)  # 0x60100: off (another product protects)
    assert decode_product_state(397584) == (True, False)  # 0x61110: on, signatures out of date
    assert decode_product_state(266240) == (True, True)  # 0x41000: a third-party product on


def test_it_reads_registered_products_and_completes_defender_from_its_own_status() -> None:
    products = parse_products(recorded("security_center-antivirusproduct.json"))
    assert [(p.name, p.enabled) for p in products] == [("Windows Defender", False), ("Sophos Intercept X", True)]
    [single] = parse_products(recorded("security_center-antivirusproduct-defender.json"))
    assert (single.enabled, single.up_to_date) == (True, False)
    defender = defender_product(recorded("security_center-mpcomputerstatus.json"))  # type: ignore[arg-type]
    [merged] = merge_defender([single], defender)
    assert merged.name == "Windows Defender" and merged.source == "security-center+defender"
    assert (merged.enabled, merged.real_time, merged.up_to_date) == (True, True, False)
    assert merged.signatures_updated_at == datetime(2026, 11, 20, 6, 42, 10, tzinfo=UTC)
    assert merged.last_scan_at == datetime(2026, 11, 19, 21, 3, 55, tzinfo=UTC)
    assert merged.signature_version == "1.443.512.0"


def test_defender_in_passive_mode_is_not_counted_as_protecting() -> None:
    passive = defender_product(recorded("security_center-mpcomputerstatus-passive.json"))  # type: ignore[arg-type]
    assert (passive.enabled, passive.real_time) == (False, None)


def test_it_reads_detections_with_threat_name_path_action_and_user_newest_first() -> None:
    found = parse_detections(recorded("security_center-mpthreatdetection.json"),
                             recorded("security_center-mpthreat.json"))
    trojan, eicar = found
    assert (eicar.threat, eicar.path, eicar.action, eicar.remediated, eicar.user) == (
        "Virus:DOS/EICAR_Test_File", "E:\\setup\\eicar.com", "quarantined", True, "RECEPTION-PC\\guest")
    assert eicar.id == "8E2B3F4A-61C7-4D0E-9A51-2F7C0B9D13A4"
    assert (trojan.threat, trojan.action, trojan.remediated) == ("Trojan:Win32/Wacatac.B!ml", "remove failed", False)
    assert trojan.path == "C:\\ProgramData\\Updater\\svc.exe"
    assert trojan.detected_at == datetime(2026, 11, 20, 9, 31, 2, tzinfo=UTC)


def test_defenders_event_log_gives_detections_when_the_cmdlets_cannot() -> None:
    found = {d.threat: d for d in parse_defender_events(recorded("security_center-defender-events.json"))}
    eicar = found["Virus:DOS/EICAR_Test_File"]
    assert (eicar.action, eicar.remediated, eicar.path, eicar.user) == (
        "quarantine", True, "E:\\setup\\eicar.com", "GUEST-LAPTOP\\guest")
    assert eicar.id == "8E2B3F4A-61C7-4D0E-9A51-2F7C0B9D13A4"
    assert eicar.detected_at == datetime(2026, 11, 20, 9, 14, 37, 512000, tzinfo=UTC)
    only_seen = found["Trojan:Win32/Wacatac.B!ml"]
    assert (only_seen.action, only_seen.remediated, only_seen.path) == (
        "detected", False, "C:\\ProgramData\\Updater\\svc.exe")
    failed = found["Trojan:Win32/Kryptik!MTB"]
    assert (failed.action, failed.remediated) == ("remove failed", False)
    signal = parse_script((WINDOWS / "security_center-script-events.json").read_text(), NOW)
    assert signal.detections_error is None and len(signal.detections) == 3


def test_it_reads_firewall_profiles() -> None:
    profiles = parse_firewall(recorded("security_center-netfirewallprofile.json"))
    assert [(p.name, p.enabled) for p in profiles] == [("Domain", True), ("Private", True), ("Public", False)]
    [odd] = parse_firewall({"Name": "Public", "Enabled": 2})
    assert odd.enabled is None and odd.detail == "Enabled is 2"


def test_a_server_without_security_center_reports_defender_and_says_what_it_could_not_read() -> None:
    signal = parse_script((WINDOWS / "security_center-script-server.json").read_text(), NOW)
    names = [(p.name, p.enabled, p.real_time) for p in signal.antivirus]
    assert names == [("Microsoft Defender Antivirus", True, False)], "no Security Center on a server is no news"
    assert signal.detections == [] and signal.detections_error is None
    assert all(f.enabled for f in signal.firewalls)


def test_neither_security_center_nor_defender_answering_is_a_product_not_known() -> None:
    answer = {"av_error": "Invalid namespace ", "mp_error": "Access denied", "threats": [], "detections": []}
    [product] = parse_script(json.dumps(answer), NOW).antivirus
    assert product.enabled is None
    assert product.error == "Security Center: Invalid namespace ; Defender: Access denied"


def test_parts_that_fail_stay_unknown_and_never_look_fine() -> None:
    signal = parse_script((WINDOWS / "security_center-script-no-defender.json").read_text(), NOW)
    assert [(p.name, p.enabled) for p in signal.antivirus] == [("Sophos Intercept X", True)]
    assert signal.detections_error and signal.detections == []
    [firewall] = signal.firewalls
    assert firewall.enabled is None and firewall.detail == "Access is denied. "


async def test_the_windows_check_runs_one_powershell_script() -> None:
    run = Recorded({("powershell.exe",): ("windows/security_center-script-server.json", 0)})
    check = SecurityCenterCheck(CheckContext(run=run, clock=lambda: NOW), platform="win32")
    [signal] = await check.run()
    assert isinstance(signal, SecurityCenter) and signal.platform == "windows"
    assert len(run.calls) == 1


async def test_powershell_failing_is_the_check_failing() -> None:
    run = Recorded({("powershell.exe",): ("", 1)})
    [signal] = await SecurityCenterCheck(CheckContext(run=run, clock=lambda: NOW), platform="win32").run()
    assert isinstance(signal, Unknown) and signal.check == "security_center"


def mac_tree(root: Path) -> Path:
    plist = root / XPROTECT_PLISTS[0].lstrip("/")
    plist.parent.mkdir(parents=True)
    shutil.copy(MACOS / "xprotect-Info.plist", plist)
    return root


async def test_a_mac_reports_xprotect_gatekeeper_sip_and_its_firewall(tmp_path: Path) -> None:
    run = Recorded({
        (SOCKETFILTERFW,): ("macos/socketfilterfw-getglobalstate-disabled.txt", 0),
        ("spctl",): ("macos/spctl-status-enabled.txt", 0),
        ("csrutil",): ("macos/csrutil-status-custom.txt", 0),
    })
    context = CheckContext(run=run, root=mac_tree(tmp_path), clock=lambda: NOW)
    [signal] = await SecurityCenterCheck(context, platform="darwin").run()
    assert isinstance(signal, SecurityCenter) and signal.platform == "macos"
    [xprotect] = signal.antivirus
    assert (xprotect.name, xprotect.enabled, xprotect.signature_version) == ("XProtect", True, "5297")
    assert [(f.name, f.enabled) for f in signal.firewalls] == [("application firewall", False)]
    assert [(p.name, p.enabled) for p in signal.protections] == [("gatekeeper", True), ("sip", None)]
    assert "Custom Configuration" in (signal.protections[1].detail or "")


async def test_a_mac_whose_tools_are_missing_reports_unknown_parts(tmp_path: Path) -> None:
    run = Recorded({("csrutil",): ("macos/csrutil-status-enabled.txt", 0),
                    ("spctl",): ("macos/spctl-status-disabled.txt", 1)})
    [signal] = await SecurityCenterCheck(CheckContext(run=run, root=tmp_path, clock=lambda: NOW),
                                         platform="darwin").run()
    assert isinstance(signal, SecurityCenter)
    assert signal.antivirus[0].enabled is None and signal.antivirus[0].error == "XProtect.bundle not found"
    assert signal.firewalls[0].enabled is None
    assert [(p.name, p.enabled) for p in signal.protections] == [("gatekeeper", False), ("sip", True)]


def daily_cld(directory: Path, built: datetime, version: int = 27838) -> Path:
    """A ClamAV daily database in the .cld layout: a 512-byte header (the build time as seconds since 1970 in its
    last field, which clamscan prints) and a tar holding one signature. Unsigned, which `--version` does not check."""
    header = f"ClamAV-VDB:{built:%d %b %Y %H-%M} +0000:{version}:1:90:X:X:fieldpost:{int(built.timestamp())}"
    body = io.BytesIO()
    with tarfile.open(fileobj=body, mode="w") as tar:
        data = b"fieldpost-test:0:*:6669656c64706f7374\n"
        info = tarfile.TarInfo("daily.ndb")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "daily.cld").write_bytes(header.encode().ljust(512, b" ") + body.getvalue())
    return directory


needs_clamav = requires_tool("clamscan")


@needs_clamav
def test_real_clamscan_reports_its_database_version_and_build_time(tmp_path: Path) -> None:
    built = datetime(2026, 11, 14, 7, 25, tzinfo=UTC)
    database = daily_cld(tmp_path / "db", built)
    provider = LinuxProvider(CheckContext(settings={"clamav_database": str(database)}, clock=lambda: NOW))
    [clamav] = provider.clamav()
    assert (clamav.name, clamav.enabled, clamav.signature_version) == ("ClamAV", True, "27838")
    assert clamav.signatures_updated_at == built


@needs_clamav
def test_real_clamscan_without_a_database_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    provider = LinuxProvider(CheckContext(settings={"clamav_database": str(tmp_path / "empty")}))
    [clamav] = provider.clamav()
    assert clamav.up_to_date is False and clamav.signatures_updated_at is None
    assert "no signature database" in (clamav.error or "")


def test_clamscan_version_lines_parse() -> None:
    product = parse_clamscan_version("ClamAV 1.4.6/27838/Mon Dec  1 09:18:00 2025\n")
    assert product.signatures_updated_at == datetime(2025, 12, 1, 9, 18, tzinfo=UTC)
    assert parse_clamscan_version("garbage").error


def in_own_netns(setup: str) -> Runner:
    """A runner that runs each command in a fresh network namespace after `setup` (nft commands) ran there."""

    def run(argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
        script = f"{setup} exec {shlex.join(argv)}"
        return run_command(["unshare", "-n", "sh", "-c", script], timeout=timeout)

    return run


def can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("nft") is None or shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-n", "true"], check=False).returncode == 0


needs_netns = pytest.mark.skipif(not can_unshare(), reason="needs root, unshare and nft")
DROP_INPUT = ("nft add table inet filter && nft add chain inet filter input "
              "'{ type filter hook input priority 0; policy drop; }' && "
              "nft add rule inet filter input iif lo accept && ")
NAT_ONLY = ("nft add table ip nat && nft add chain ip nat post '{ type nat hook postrouting priority 100; }' && ")


@needs_netns
@pytest.mark.skipif(shutil.which("ufw") is not None or shutil.which("firewall-cmd") is not None,
                    reason="ufw or firewalld is the firewall here")
@pytest.mark.parametrize(("setup", "enabled"), [("", False), (NAT_ONLY, False), (DROP_INPUT, True)])
def test_real_nft_rulesets_tell_whether_input_is_filtered(setup: str, enabled: bool) -> None:
    firewall = LinuxProvider(CheckContext(run=in_own_netns(setup))).firewall()
    assert (firewall.name, firewall.enabled) == ("nftables", enabled)
    if enabled:
        assert firewall.detail == "inet filter input"


def test_nft_failing_is_not_known() -> None:
    result = CommandResult(("nft",), 1, "", "Error: Operation not permitted")
    firewall = parse_nft(result)
    assert firewall.enabled is None and "Operation not permitted" in (firewall.detail or "")


def test_the_firewall_is_not_looked_at_when_the_setting_says_so() -> None:
    run = Recorded({("env",): ("", 1)})  # clamscan, where it is installed, fails: not what this test is about
    provider = LinuxProvider(CheckContext(settings={"firewall": False}, run=run, clock=lambda: NOW))
    assert provider.collect().firewalls == []
    assert not [argv for argv in run.calls if argv[0] in ("nft", "ufw", "firewall-cmd")]
