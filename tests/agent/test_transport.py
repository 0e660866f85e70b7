"""How the agent reaches its collector: plain http:// only to this machine unless allowed, and saying why."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port

from agent.cli import main
from agent.identity import save_identity
from agent.install import InstallError, install
from agent.outbox import OUTBOX_FILE, Outbox, read_stats
from agent.transport import InsecureTransport, check_collector_url, ssl_context
from agent.uploader import Uploader
from shared.loopback import is_loopback
from tests.agent.support import T0, heartbeat, make_identity
from tests.support.tls import CertificateAuthority

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


async def test_the_uploader_keeps_reports_and_says_so_when_the_collector_is_signed_by_another_ca(
    tmp_path: Path,
) -> None:
    trusted, other = CertificateAuthority(tmp_path / "a", "ours"), CertificateAuthority(tmp_path / "b", "theirs")
    served = other.server("127.0.0.1")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(served.cert, served.key)
    async def accept(request: web.Request) -> web.Response:
        return web.json_response({"accepted": [1], "duplicates": []})

    app = web.Application()
    app.router.add_post("/api/v1/reports", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    identity = make_identity(f"https://127.0.0.1:{port}")
    outbox = Outbox(tmp_path / OUTBOX_FILE, identity.agent_id, "boot-1")
    uploader = Uploader(outbox, identity, identity.collector_url, tls=ssl_context(trusted.cert), rand=lambda: 1.0)
    try:
        outbox.put([heartbeat()], now=T0)
        await uploader.upload_once()
        stats = read_stats(tmp_path / OUTBOX_FILE)
        assert stats is not None and stats.pending == 1, "nothing is lost"
        assert "the collector's certificate is not trusted" in (stats.last_upload_result or "")
        assert "agent.ca_file" in (stats.last_upload_result or "")
    finally:
        await uploader.close()
        outbox.close()
        await runner.cleanup()


def test_an_unreadable_ca_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(InsecureTransport, match=r"agent.ca_file .*ca.pem: cannot load a CA certificate"):
        ssl_context(tmp_path / "ca.pem")
