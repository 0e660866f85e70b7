"""`fieldpost-collector serve --tls-cert/--tls-key` without a reverse proxy, and an agent that pins its CA:
enrolment and reports over https to a real collector process, and a collector signed by another CA refused."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import BIN, Agent, Collector, wait_until
from tests.support.tls import CertificateAuthority


@pytest.fixture
def https_collector(tmp_path: Path) -> Iterator[tuple[Collector, CertificateAuthority]]:
    ca = CertificateAuthority(tmp_path / "pki", "fieldpost-test")
    server = ca.server("127.0.0.1")
    running = Collector(tmp_path / "collector", tls=(server.cert, server.key), ca=ca.cert)
    running.workdir.mkdir()
    running.start()
    yield running, ca
    running.stop()


def test_an_agent_pinned_to_the_collectors_ca_enrols_and_reports_over_https(
    tmp_path: Path, https_collector: tuple[Collector, CertificateAuthority]
) -> None:
    collector, ca = https_collector
    assert collector.url.startswith("https://")
    agent = Agent(tmp_path / "pc", collector, ca_file=ca.cert)
    agent_id = agent.enroll()
    agent.start()
    try:
        wait_until(lambda: len(collector.reports(agent_id)) >= 2, 30, "two reports over https")
    finally:
        agent.stop()
    assert "on https://127.0.0.1:" in (collector.workdir / "collector.log").read_text()


def test_an_agent_refuses_a_collector_signed_by_another_ca(
    tmp_path: Path, https_collector: tuple[Collector, CertificateAuthority]
) -> None:
    collector, _ = https_collector
    other = CertificateAuthority(tmp_path / "other-pki", "someone-else")
    for name, ca_file in (("pinned-elsewhere", other.cert), ("system-cas", None)):
        agent = Agent(tmp_path / name, collector, ca_file=ca_file)
        agent.workdir.mkdir(parents=True)
        agent.write_config()
        done = agent.cli("enroll", "--collector", collector.url, "--token", collector.token())
        assert done.returncode == 1, done.stdout
        assert f"the collector at {collector.url}/api/v1/enrol is not who it should be" in done.stderr
        assert "certificate verify failed" in done.stderr and "agent.ca_file" in done.stderr
        assert not (agent.state_dir / "identity.json").exists()


def test_serve_refuses_a_certificate_without_its_key(tmp_path: Path) -> None:
    ca = CertificateAuthority(tmp_path, "fieldpost-test")
    done = subprocess.run([BIN / "fieldpost-collector", "--db", tmp_path / "c.db", "serve", "--tls-cert",
                           ca.server().cert], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "tls_cert and tls_key: give both (https) or neither" in done.stderr
    wrong = subprocess.run([BIN / "fieldpost-collector", "--db", tmp_path / "c.db", "serve", "--tls-cert",
                            ca.cert, "--tls-key", ca.cert], capture_output=True, text=True, timeout=60, check=False)
    assert wrong.returncode == 2 and "cannot load the certificate and its key" in wrong.stderr
