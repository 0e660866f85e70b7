"""How the agent reaches its collector: plain http:// only to this machine unless allowed, and saying why."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.cli import main
from agent.identity import save_identity
from agent.install import InstallError, install
from agent.transport import InsecureTransport, check_collector_url
from shared.loopback import is_loopback
from tests.agent.support import make_identity

REMOTE = "http://fp.example.net:8470"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.8.9.10", True), ("[::1]", True), ("localhost", True), ("LOCALHOST.", True),
     ("fp.localhost", True), ("10.0.0.5", False), ("fp.example.net", False), ("localhost.example.net", False),
     ("::ffff:10.0.0.1", False), ("", False)],
)
def test_only_this_machine_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_plain_http_is_refused_for_another_machine_and_the_message_says_why() -> None:
    with pytest.raises(InsecureTransport) as refused:
        check_collector_url(REMOTE)
    message = str(refused.value)
    assert message.startswith(f"refusing {REMOTE}: plain http:// to another machine")
    assert "read the enrolment token and the reports" in message
    assert "https://fp.example.net" in message and "--insecure-http" in message
    assert "agent.insecure_http = true" in message
    check_collector_url(REMOTE, insecure_http=True)
    for allowed in ("https://fp.example.net", "http://127.0.0.1:8470", "http://localhost:8470/", "http://[::1]:1"):
        check_collector_url(allowed)


def test_enroll_refuses_plain_http_to_another_machine_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\nstate_dir = "{state_dir}"\n')
    assert main(["--config", str(config), "enroll", "--collector", REMOTE, "--token", "t"]) == 1
    assert capsys.readouterr().err.startswith(f"fieldpost-agent: refusing {REMOTE}: plain http://")
    assert not state_dir.exists()
    # Allowed by the option, or by the configuration, it goes on to the network (here: nobody answers).
    unreachable = "http://fp.invalid:9"
    assert main(["--config", str(config), "enroll", "--collector", unreachable, "--token", "t",
                 "--insecure-http"]) == 1
    assert "cannot reach the collector at http://fp.invalid:9/api/v1/enrol" in capsys.readouterr().err
    config.write_text(f'[agent]\nstate_dir = "{state_dir}"\ninsecure_http = true\n')
    assert main(["--config", str(config), "enroll", "--collector", unreachable, "--token", "t"]) == 1
    assert "cannot reach the collector" in capsys.readouterr().err


def test_run_refuses_an_identity_that_reports_over_plain_http_to_another_machine(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    state_dir = tmp_path / "state"
    save_identity(state_dir, make_identity(REMOTE))
    config = tmp_path / "agent.toml"
    config.write_text(f'[agent]\nstate_dir = "{state_dir}"\n')
    assert main(["--config", str(config), "run"]) == 2
    assert capsys.readouterr().err.startswith(f"fieldpost-agent: refusing {REMOTE}: plain http://")
    assert sorted(p.name for p in state_dir.iterdir()) == [
        "agent.key", "identity.json"]


def test_install_refuses_plain_http_to_another_machine_before_writing_anything(tmp_path: Path) -> None:
    with pytest.raises(InstallError, match="plain http:// to another machine"):
        asyncio.run(install(REMOTE, "t", tmp_path, "linux", say=lambda _: None))
    assert list(tmp_path.iterdir()) == []
