"""`fieldpost-agent` as a technician runs it: check, status, enroll and the global --config option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import TypeAdapter

import shared
from agent.cli import main
from agent.config import CONFIG_ENV
from agent.identity import save_identity
from agent.outbox import OUTBOX_FILE, Outbox
from shared.wire import AnySignal, Heartbeat, Unknown
from tests.agent.support import T0, heartbeat, make_identity

AGENT = Path(sys.executable).parent / "fieldpost-agent"
SIGNALS = TypeAdapter(list[AnySignal])


def installed_agent(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, with no configuration from the environment."""
    env = {k: v for k, v in os.environ.items() if k != CONFIG_ENV}
    return subprocess.run(
        [str(AGENT), *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env, check=False
    )


@pytest.fixture
def config_file(tmp_path: Path, state_dir: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\nstate_dir = "{state_dir}"\n')
    return path


@pytest.fixture
def bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text("[checks.heartbeat]\ninterval_seconds = 0\n")
    return path


@pytest.mark.skipif(not AGENT.exists(), reason="fieldpost-agent is not installed in this environment")
@pytest.mark.slow
def test_check_json_prints_signals_without_enrolment_or_config_file(tmp_path: Path) -> None:
    # Checks that only read this machine: printer_ip_conflict would probe the real network.
    local = ["heartbeat", "disk_health", "pending_reboot", "updates", "backup_results"]
    done = installed_agent("check", *local, "--json", cwd=tmp_path)
    signals = SIGNALS.validate_json(done.stdout)
    unknown = [s for s in signals if isinstance(s, Unknown)]
    assert done.returncode == (1 if unknown else 0), done.stderr
    assert {s.check if isinstance(s, Unknown) else s.kind for s in signals} == set(local)
    assert any(isinstance(s, Heartbeat) for s in signals)
    assert list(tmp_path.iterdir()) == [], "check writes nothing"


@pytest.mark.skipif(not AGENT.exists(), reason="fieldpost-agent is not installed in this environment")
def test_a_broken_config_file_stops_the_command_with_one_line(tmp_path: Path, bad_config: Path) -> None:
    done = installed_agent("check", "--config", str(bad_config), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"fieldpost-agent: {bad_config}: checks.heartbeat.interval_seconds: Input should be greater than 0\n"
    )


def test_check_prints_readable_text_by_default(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    assert main(["--config", str(config_file), "check", "heartbeat"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("heartbeat (")
    assert "\n  hostname: " in out
    assert "\n  interfaces:\n    - name: " in out


def test_check_names_an_unknown_kind(capsys: pytest.CaptureFixture[str], config_file: Path) -> None:
    assert main(["--config", str(config_file), "check", "hartbeat"]) == 2
    assert "unknown check 'hartbeat'" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize(
    "command",
    [
        ["check"],
        ["status"],
        ["run"],
        ["enroll", "--collector", "http://x", "--token", "t"],
    ],
)
def test_config_is_accepted_before_and_after_every_command(
    capsys: pytest.CaptureFixture[str], bad_config: Path, where: str, command: list[str]
) -> None:
    option = ["--config", str(bad_config)]
    args = [*option, *command] if where == "before" else [*command, *option]
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"fieldpost-agent: {bad_config}: checks.heartbeat.interval_seconds: Input should be greater than 0\n"
    )


def test_a_config_file_that_was_asked_for_must_exist(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["status", "--config", str(tmp_path / "nope.toml")]) == 2
    assert capsys.readouterr().err == f"fieldpost-agent: {tmp_path / 'nope.toml'}: no such file\n"


@pytest.mark.parametrize("command", ["status", "run"])
def test_status_and_run_say_how_to_enrol_first(
    capsys: pytest.CaptureFixture[str], config_file: Path, command: str
) -> None:
    assert main(["--config", str(config_file), command]) == 1
    captured = capsys.readouterr()
    assert "run fieldpost-agent enroll --collector URL --token TOKEN" in captured.out + captured.err


def test_status_shows_identity_outbox_and_last_upload(
    capsys: pytest.CaptureFixture[str], config_file: Path, state_dir: Path
) -> None:
    save_identity(state_dir, make_identity("https://fp.example.net", "ag_1234"))
    outbox = Outbox(state_dir / OUTBOX_FILE, "ag_1234", "boot-1")
    outbox.put([heartbeat()], now=T0)
    outbox.record_upload("sent 0 envelopes; last answer HTTP 503: busy", T0)
    outbox.close()
    assert main(["status", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert "ag_1234 (client 'Acme Tooling', site 'Main office')" in out
    assert "collector:  https://fp.example.net" in out
    assert "1 envelopes waiting" in out
    assert "oldest queued 2024-05-06 07:00:00 UTC" in out
    assert "last upload: 2024-05-06 07:00:00 UTC: sent 0 envelopes; last answer HTTP 503: busy" in out


def test_enroll_rejects_a_collector_that_is_not_a_url(
    capsys: pytest.CaptureFixture[str], config_file: Path
) -> None:
    assert (
        main(["--config", str(config_file), "enroll", "--collector", "fp.example.net", "--token", "t"]) == 1
    )
    assert (
        "--collector 'fp.example.net': Value error, must be an http:// or https:// URL"
        in capsys.readouterr().err
    )


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == f"fieldpost-agent {shared.__version__}\n"


DAMAGE = {
    "identity truncated": ("identity.json", b'{"agent_id": "ag_1234", "collec'),
    "identity emptied": ("identity.json", b""),
    "identity garbage": ("identity.json", b"\x00\xff\x13 not json"),
    "identity missing a field": ("identity.json", b'{"agent_id": "ag_1234"}'),
    "identity not an object": ("identity.json", b"[1, 2]"),
    "identity bad date": ("identity.json", None),
    "key truncated": ("agent.key", b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw"),
    "key emptied": ("agent.key", b""),
    "key removed": ("agent.key", b"REMOVE"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("command", ["status", "run"])
def test_a_damaged_identity_or_key_file_gives_a_clear_message_not_a_traceback(
    capsys: pytest.CaptureFixture[str], config_file: Path, state_dir: Path, damage: str, command: str
) -> None:
    save_identity(state_dir, make_identity("https://fp.example.net", "ag_1234"))
    name, content = DAMAGE[damage]
    path = state_dir / name
    if content is None:
        path.write_text(path.read_text().replace('"enrolled_at": "', '"enrolled_at": "yesterday'))
    elif content == b"REMOVE":
        path.unlink()
    else:
        path.write_bytes(content)
    assert main(["--config", str(config_file), command]) == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "Traceback" not in text
    assert f"{path} is damaged or unreadable" in text
    assert "fieldpost-agent enroll --force" in text
