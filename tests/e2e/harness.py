"""Real processes on loopback for end-to-end tests: a collector, agents, and a live-feed reader."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

BIN = Path(sys.executable).parent
TECH_TOKEN = "e2e-technician"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition of another process until it holds, or fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def toml_value(value: Any) -> str:
    """A value in TOML syntax: inline tables and arrays; JSON's scalars are TOML's too."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return json.dumps(value)


@dataclass
class Collector:
    """A `fieldpost-collector serve` process with fast offline detection."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    # Serve https with this certificate and key (`serve --tls-cert/--tls-key`), trusting `ca` to check it.
    tls: tuple[Path, Path] | None = None
    ca: Path | None = None
    # More environment variables for the server process (e.g. a preloaded fault shim).
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        """The SQLite database file."""
        return self.workdir / "collector.db"

    def start(self, startup_grace_seconds: int = 0, **settings: Any) -> None:
        """Start (or restart) the collector and wait until it answers; `settings` override the fast defaults."""
        config = self.workdir / "collector.toml"
        values = {"heartbeat_interval_seconds": 1, "offline_after_missed": 3, "offline_check_seconds": 1,
                  "startup_grace_seconds": startup_grace_seconds, "agent_reconnect_seconds": 1, **settings}
        config.write_text("[collector]\n" + "".join(f"{key} = {toml_value(value)}\n" for key, value in values.items()))
        log = (self.workdir / "collector.log").open("ab")
        env = {**os.environ, "FIELDPOST_COLLECTOR_ADMIN_TOKEN": TECH_TOKEN, **self.env}
        tls = ["--tls-cert", str(self.tls[0]), "--tls-key", str(self.tls[1])] if self.tls else []
        self.process = subprocess.Popen(
            [BIN / "fieldpost-collector", "--config", config, "--db", self.db, "serve", "--listen",
             f"127.0.0.1:{self.port}", *tls],
            stdout=log, stderr=log, env=env,
        )
        wait_until(self.healthy, 20, "the collector to answer /healthz")

    def healthy(self) -> bool:
        """True when /healthz answers 200."""
        import ssl
        import urllib.request

        context = ssl.create_default_context(cafile=self.ca) if self.ca else None
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=1, context=context) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the collector (SIGTERM) and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def token(self, client: str = "Acme Tooling", site: str = "Main office") -> str:
        """An enrolment token made with the collector's own CLI."""
        return subprocess.run(
            [BIN / "fieldpost-collector", "--db", self.db, "token", "create", "--client", client, "--site", site],
            capture_output=True, text=True, check=True,
        ).stdout.strip()

    def reports(self, agent_id: str) -> list[int]:
        """Sequence numbers stored for an agent, read straight from the database."""
        with sqlite3.connect(self.db) as db:
            rows = db.execute("SELECT seq FROM reports WHERE agent_id = ? ORDER BY seq", (agent_id,))
            return [seq for (seq,) in rows]


    def alerts(self, agent_id: str, rule: str) -> list[str]:
        """The states of an agent's alerts of a rule, read straight from the database.

        Stored in the same transaction as the report that caused them, so unlike the feed this never lags.
        """
        with sqlite3.connect(self.db) as db:
            rows = db.execute("SELECT state FROM alerts WHERE agent_id = ? AND rule = ? ORDER BY id", (agent_id, rule))
            return [state for (state,) in rows]

    def observations(self, agent_id: str, kind: str) -> int:
        """How many signals of a kind are stored for an agent."""
        with sqlite3.connect(self.db) as db:
            [(count,)] = db.execute(
                "SELECT count(*) FROM observations WHERE agent_id = ? AND kind = ?", (agent_id, kind)
            )
            return count


@dataclass
class Agent:
    """A `fieldpost-agent` with its own config and state directory."""

    workdir: Path
    collector: Collector
    checks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    root: Path | None = None
    # Where it sends its reports, when not straight to the collector (a proxy in between).
    url: str | None = None
    # More `[upload]` settings.
    upload: Mapping[str, Any] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    ca_file: Path | None = None

    @property
    def config(self) -> Path:
        """The agent's config file."""
        return self.workdir / "agent.toml"

    @property
    def state_dir(self) -> Path:
        """The agent's state directory."""
        return self.workdir / "state"

    def write_config(self) -> None:
        """Fast intervals so a test sees several rounds in seconds."""
        lines = [
            "[agent]", f'collector_url = "{self.url or self.collector.url}"', f'state_dir = "{self.state_dir}"',
            *([f'root = "{self.root}"'] if self.root else []),
            *([f'ca_file = "{self.ca_file}"'] if self.ca_file else []),
            "[schedule]", "splay_seconds = 0", "jitter_seconds = 0",
            "[upload]", "interval_seconds = 0.5", "timeout_seconds = 5",
            *(f"{key} = {toml_value(value)}" for key, value in self.upload.items()),
            "[checks.heartbeat]", "interval_seconds = 1",
        ]
        from agent.checks.registry import all_checks

        # Only the heartbeat and the checks a test asks for run, so each test sees just its own signals.
        for kind in all_checks():
            if kind != "heartbeat" and kind not in self.checks:
                lines.extend([f"[checks.{kind}]", "enabled = false"])
        for kind, settings in self.checks.items():
            lines.append(f"[checks.{kind}]")
            lines.extend(f"{key} = {toml_value(value)}" for key, value in settings.items())
        self.config.write_text("\n".join(lines) + "\n")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `fieldpost-agent` command with this agent's config."""
        return subprocess.run(
            [BIN / "fieldpost-agent", "--config", self.config, *args],
            capture_output=True, text=True, env={**os.environ, **self.env}, check=False,
        )

    def enroll(self) -> str:
        """Enrol with a fresh token; returns the agent id."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.write_config()
        done = self.cli("enroll", "--collector", self.collector.url, "--token", self.collector.token())
        assert done.returncode == 0, done.stderr
        return self.agent_id

    @property
    def agent_id(self) -> str:
        """The id issued at enrolment."""
        return json.loads((self.state_dir / "identity.json").read_text())["agent_id"]

    def start(self) -> None:
        """Run the agent service in the background."""
        log = (self.workdir / "agent.log").open("ab")
        self.process = subprocess.Popen(
            [BIN / "fieldpost-agent", "--config", self.config, "run"],
            stdout=log, stderr=log, env={**os.environ, **self.env},
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the agent with a signal (SIGKILL to simulate a crash) and wait for it."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(15)

    def outbox(self) -> Any:
        """The outbox's statistics as `fieldpost-agent status` reads them."""
        from agent.outbox import OUTBOX_FILE, read_stats

        return read_stats(self.state_dir / OUTBOX_FILE)


class FeedReader:
    """Reads the live feed (SSE) in the background and keeps every event."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> FeedReader:
        ready = asyncio.Event()
        self._task = asyncio.create_task(self._read(ready))
        await asyncio.wait_for(ready.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    async def _read(self, ready: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {TECH_TOKEN}", "Last-Event-ID": "0"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session, session.get(
            self.collector.url + "/api/v1/feed", headers=headers
        ) as response:
            ready.set()
            event_type = "message"
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event_type = line[7:]
                elif line.startswith("data: "):
                    self.events.append((event_type, json.loads(line[6:])))
                    self._changed.set()

    async def wait_for(self, event_type: str, within: float = 20, **match: Any) -> dict[str, Any]:
        """The first event of a type whose data has all the given values; fails after `within` seconds."""

        def found() -> dict[str, Any] | None:
            for kind, data in self.events:
                if kind == event_type and all(data.get(k) == v for k, v in match.items()):
                    return data
            return None

        async def wait() -> dict[str, Any]:
            while (hit := found()) is None:
                self._changed.clear()
                await self._changed.wait()
            return hit

        try:
            return await asyncio.wait_for(wait(), within)
        except TimeoutError:
            seen = [(kind, data.get("summary") or data.get("hostname")) for kind, data in self.events]
            raise AssertionError(f"no {event_type} {match} within {within} s; feed had {seen}") from None

    def count(self, event_type: str, **match: Any) -> int:
        """How many events of a type with the given values arrived so far."""
        return sum(1 for kind, data in self.events
                   if kind == event_type and all(data.get(k) == v for k, v in match.items()))
