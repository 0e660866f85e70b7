"""The service definitions and install scripts, rendered from packaging/ and checked by real tools."""

from __future__ import annotations

import os
import plistlib
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from agent.install import LAUNCHD_LABEL, Launchd, Systemd, layout, render, script_path
from collector.cli import main as collector_main
from collector.install import install_commands, installer_script, render_unit
from tests.tooling import requires_tool

GOLDEN = Path(__file__).parent / "golden"
# Real programs, because systemd-analyze verify checks that ExecStart= names an executable.
AGENT = script_path("fieldpost-agent")
COLLECTOR = script_path("fieldpost-collector")


def verify(unit_dir: Path, name: str, text: str) -> subprocess.CompletedProcess[str]:
    """`systemd-analyze verify` on the unit written as `name`; it prints every problem to stderr."""
    path = unit_dir / name
    path.write_text(text)
    return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, check=False)


def exposure(path: Path) -> float:
    """systemd's own score of how exposed the service is (0 = locked down, 10 = not at all)."""
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", str(path)],
                          capture_output=True, text=True, check=True)
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match, done.stdout[-500:]
    return float(match.group(1))


def agent_unit() -> str:
    return Systemd().service_file(layout("linux"), AGENT).decode()


@requires_tool("systemd-analyze")
def test_it_renders_units_that_systemd_accepts_without_a_warning(tmp_path: Path) -> None:
    for name, text in (("fieldpost-agent.service", agent_unit()),
                       ("fieldpost-collector.service", render_unit(COLLECTOR))):
        done = verify(tmp_path, name, text)
        assert (done.returncode, done.stderr) == (0, ""), name


@requires_tool("systemd-analyze")
def test_the_verify_check_catches_a_mistyped_directive(tmp_path: Path) -> None:
    done = verify(tmp_path, "fieldpost-agent.service", agent_unit().replace("ProtectSystem=", "ProtectSytem="))
    assert "Unknown key 'ProtectSytem'" in done.stderr


@requires_tool("systemd-analyze")
def test_the_collector_unit_is_locked_down_and_the_agent_unit_is_hardened(tmp_path: Path) -> None:
    (tmp_path / "fieldpost-collector.service").write_text(render_unit(COLLECTOR))
    (tmp_path / "fieldpost-agent.service").write_text(agent_unit())
    assert exposure(tmp_path / "fieldpost-collector.service") < 2.0
    # The agent keeps root with a bounded capability set (smartctl, raw ARP): "OK" on systemd's scale.
    assert exposure(tmp_path / "fieldpost-agent.service") < 5.0


def test_the_agent_unit_asks_for_the_watchdog_the_agent_feeds() -> None:
    unit = agent_unit()
    for line in ("Type=notify", "WatchdogSec=60s", "Restart=on-failure", "StandardOutput=journal",
                 f'ExecStart="{AGENT}" --config "/etc/fieldpost/agent.toml" run'):
        assert line in unit.splitlines()


def test_the_collector_unit_runs_as_its_own_user_with_its_state_writable() -> None:
    lines = render_unit(COLLECTOR, "0.0.0.0:9000").splitlines()
    for line in ("User=fieldpost", "StateDirectory=fieldpost-collector", "ProtectSystem=strict",
                 "ReadWritePaths=/var/lib/fieldpost-collector", "NoNewPrivileges=yes",
                 "Environment=FIELDPOST_COLLECTOR_LISTEN=0.0.0.0:9000", "Restart=on-failure"):
        assert line in lines


def test_it_renders_a_launchd_plist_with_the_keys_launchd_needs() -> None:
    lay = layout("darwin")
    plist = plistlib.loads(Launchd().service_file(lay, "/usr/local/fieldpost/bin/fieldpost-agent"))
    assert plist["Label"] == LAUNCHD_LABEL
    assert plist["ProgramArguments"] == [
        "/usr/local/fieldpost/bin/fieldpost-agent", "--config", "/Library/Application Support/fieldpost/agent.toml",
        "run"]
    assert plist["RunAtLoad"] is True
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert plist["StandardErrorPath"] == "/Library/Logs/fieldpost/agent.log"


def test_plist_values_are_escaped() -> None:
    plist = plistlib.loads(Launchd().service_file(layout("darwin"), "/Apps/R&D <test>/fieldpost-agent"))
    assert plist["ProgramArguments"][0] == "/Apps/R&D <test>/fieldpost-agent"


def test_the_windows_install_script_matches_its_golden_file() -> None:
    rendered = installer_script("install.ps1", version="0.1.0", python="3.12.10")
    assert rendered == (GOLDEN / "install.ps1").read_text(encoding="utf-8")


def test_the_unix_install_script_matches_its_golden_file_and_parses(tmp_path: Path) -> None:
    rendered = installer_script("install.sh", version="0.1.0")
    assert rendered == (GOLDEN / "install.sh").read_text(encoding="utf-8")
    (tmp_path / "install.sh").write_text(rendered)
    subprocess.run(["sh", "-n", str(tmp_path / "install.sh")], check=True)


def test_a_template_with_a_value_missing_is_refused() -> None:
    with pytest.raises(ValueError, match="placeholders"):
        render("systemd/fieldpost-collector.service", exec_start="x", state_directory="y", listen="z")


def test_token_create_prints_an_install_line_per_os_with_the_token(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert collector_main(["--db", str(tmp_path / "c.db"), "token", "create", "--client", "Acme", "--site", "HQ",
                           "--collector-url", "https://fp.example.net"]) == 0
    out, err = capsys.readouterr()
    token = out.strip()
    assert token.startswith("fp_enrol_")
    commands = install_commands("https://fp.example.net", token)
    assert list(commands) == ["Linux", "Windows (PowerShell as Administrator, with packaging/windows/install.ps1)",
                              "macOS"]
    for command in commands.values():
        assert command in err
        assert token in command and "https://fp.example.net" in command


def test_the_posix_install_lines_pass_awkward_values_through_both_shells() -> None:
    commands = install_commands("https://fp.example.net/it's", "tok'en $HOME")
    for system, prefix in (("Linux", "/opt/fieldpost"), ("macOS", "/usr/local/fieldpost")):
        sudo, sh, dash_c, inner = shlex.split(commands[system])
        assert (sudo, sh, dash_c) == ("sudo", "sh", "-c")
        *_, agent = inner.split(" && ")
        assert shlex.split(agent) == [f"{prefix}/bin/fieldpost-agent", "install", "--collector",
                                      "https://fp.example.net/it's", "--token", "tok'en $HOME"]


@pytest.mark.skipif(os.geteuid() != 0, reason="install.sh insists on root")
def test_the_unix_install_script_passes_the_transport_options_to_the_agent(tmp_path: Path) -> None:
    script = tmp_path / "install.sh"
    script.write_text(installer_script("install.sh", version="0.1.0"))
    prefix = tmp_path / "prefix with space"
    (prefix / "bin").mkdir(parents=True)
    for name, body in (("python", "exit 0"), ("fieldpost-agent", 'printf "%s|" "$@"')):
        (prefix / "bin" / name).write_text(f"#!/bin/sh\n{body}\n")
        (prefix / "bin" / name).chmod(0o755)
    done = subprocess.run(["sh", str(script), "--collector", "https://fp.example.net", "--token", "fp_enrol_x",
                           "--prefix", str(prefix), "--ca-file", "/etc/fp ca.pem", "--insecure-http"],
                          capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.split("|")[:-1] == ["install", "--collector", "https://fp.example.net", "--token",
                                           "fp_enrol_x", "--ca-file", "/etc/fp ca.pem", "--insecure-http"]
