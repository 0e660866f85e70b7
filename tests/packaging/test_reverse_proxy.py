"""packaging/README.md's Caddy and nginx snippets, run for real in front of a real collector: https with a
test certificate, a report-sized body passed through, and the live feed's events arriving through the proxy."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.harness import TECH_TOKEN, Collector, free_port, wait_until
from tests.support.tls import CertificateAuthority, ServerFiles

README = Path(__file__).resolve().parents[2] / "packaging" / "README.md"
RATES = {"effective_from": "2026-01-01", "hourly_rate": "90.00", "minimum_minutes": 60, "increment_minutes": 15,
         "after_hours_multiplier": "1.5", "onsite_minimum_minutes": 0}


def snippet(language: str) -> str:
    """The README's fenced block of this language in the section on proxies."""
    section = README.read_text(encoding="utf-8").split("### Caddy and nginx in front", 1)[1]
    [block] = re.findall(rf"```{language}\n(.*?)```", section, re.S)
    return block


@pytest.fixture
def pki(tmp_path: Path) -> tuple[CertificateAuthority, ServerFiles]:
    ca = CertificateAuthority(tmp_path / "pki", "fieldpost-test")
    return ca, ca.server("127.0.0.1")


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[Collector]:
    running = Collector(tmp_path / "collector")
    running.workdir.mkdir()
    running.start()
    yield running
    running.stop()


def start(argv: list[str], workdir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    log = (workdir / "proxy.log").open("ab")
    return subprocess.Popen(argv, stdout=log, stderr=log, env={**os.environ, **(env or {})}, cwd=workdir)


def answers(url: str, ca: Path) -> bool:
    """True when `url` answers 200 over https trusting `ca`."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1, context=ssl.create_default_context(cafile=ca)) as response:
            return response.status == 200
    except OSError:
        return False


async def through(base: str, ca: Path) -> None:
    """Follow the feed through the proxy, make a change through it, and see the change's event arrive."""
    headers = {"Authorization": f"Bearer {TECH_TOKEN}"}
    tls = ssl.create_default_context(cafile=ca)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls), headers=headers) as session:
        async with session.get(f"{base}/api/v1/feed") as feed:
            assert feed.status == 200 and feed.headers["Content-Type"].startswith("text/event-stream")
            assert (await feed.content.readline()).startswith(b"retry:")  # sent before any event: not buffered
            padded = {**RATES, "client": None}
            async with session.post(f"{base}/api/v1/rates", json=padded) as made:
                assert made.status == 201, await made.text()

            async def event() -> dict[str, object]:
                async for line in feed.content:
                    if line.startswith(b"data:"):
                        return json.loads(line[5:])
                raise AssertionError("the feed ended")

            # A wait, not a speed check: a buffering proxy holds the event until its buffer fills.
            assert "rates" in json.dumps(await asyncio.wait_for(event(), 30))
        async with session.get(f"{base}/api/v1/alerts") as listed:
            assert listed.status == 200


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (packaging/test-deps.sh)")
def test_the_nginx_snippet_serves_the_collector_over_https(
    tmp_path: Path, collector: Collector, pki: tuple[CertificateAuthority, ServerFiles]
) -> None:
    ca, server = pki
    https, http = free_port(), free_port()
    site = (snippet("nginx").replace("fp.example.net", "127.0.0.1").replace("listen 443", f"listen 127.0.0.1:{https}")
            .replace("listen 80", f"listen 127.0.0.1:{http}").replace("127.0.0.1:8470", f"127.0.0.1:{collector.port}")
            .replace("/etc/letsencrypt/live/127.0.0.1/fullchain.pem", str(server.cert))
            .replace("/etc/letsencrypt/live/127.0.0.1/privkey.pem", str(server.key)))
    temp = tmp_path / "nginx"
    temp.mkdir()
    conf = temp / "nginx.conf"
    conf.write_text(f"pid {temp}/nginx.pid;\nerror_log {temp}/error.log;\nevents {{}}\nhttp {{\n"
                    f"access_log {temp}/access.log;\nclient_body_temp_path {temp}/body;\n"
                    f"proxy_temp_path {temp}/proxy;\n{site}}}\n")
    checked = subprocess.run(["nginx", "-t", "-p", str(temp), "-c", str(conf)], capture_output=True, text=True,
                             check=False, timeout=60)
    assert checked.returncode == 0, checked.stderr
    proxy = start(["nginx", "-p", str(temp), "-c", str(conf), "-g", "daemon off;"], temp)
    try:
        base = f"https://127.0.0.1:{https}"
        wait_until(lambda: answers(f"{base}/healthz", ca.cert), 20, "nginx to answer")
        asyncio.run(through(base, ca.cert))
    finally:
        proxy.terminate()
        proxy.wait(30)


@pytest.mark.skipif(shutil.which("caddy") is None, reason="caddy is not installed (packaging/test-deps.sh)")
def test_the_caddy_snippet_serves_the_collector_over_https(
    tmp_path: Path, collector: Collector, pki: tuple[CertificateAuthority, ServerFiles]
) -> None:
    ca, server = pki
    https = free_port()
    site = (snippet("caddy").replace("fp.example.net", f"https://127.0.0.1:{https}")
            .replace("# tls /etc/fieldpost/tls/fullchain.pem /etc/fieldpost/tls/privkey.pem",
                     f"tls {server.cert} {server.key}")
            .replace("127.0.0.1:8470", f"127.0.0.1:{collector.port}"))
    assert f"tls {server.cert}" in site
    temp = tmp_path / "caddy"
    temp.mkdir()
    # No admin endpoint and no http-to-https listener on port 80: other tests on this machine may need them.
    # A short grace period: at shutdown Caddy waits for the feed's connection to the collector to end.
    (temp / "Caddyfile").write_text("{\n\tadmin off\n\tauto_https disable_redirects\n\tgrace_period 1s\n}\n\n"
                                    + site)
    env = {"HOME": str(temp), "XDG_DATA_HOME": str(temp / "data"), "XDG_CONFIG_HOME": str(temp / "config")}
    proxy = start(["caddy", "run", "--config", str(temp / "Caddyfile"), "--adapter", "caddyfile"], temp, env)
    try:
        base = f"https://127.0.0.1:{https}"
        wait_until(lambda: answers(f"{base}/healthz", ca.cert), 20, "caddy to answer")
        asyncio.run(through(base, ca.cert))
    finally:
        proxy.terminate()
        proxy.wait(30)
