"""Agent footprint benchmark: a real `fieldpost-agent run` with the default checks, reporting to a real collector.

Prints the agent's resident memory (RSS) after start (every enabled check has run once and its report is
stored) and after an hour's worth of scheduled runs, and its CPU seconds per hour (its own, and its
commands'). The hour is time-compressed: every check interval, the jitter and the upload interval are
divided by --speedup and the agent runs for 3600 / speedup seconds, so each job runs as many times as in an
hour (heartbeat 60, backup_results and printer_ip_conflict 4, ...), driven by the agent's real scheduler
and uploader. The nightly maintenance job (once a day) is not in that hour. Figures are medians of
--rounds rounds. With --baseline DIR the agent of another checkout (e.g. `git worktree add /tmp/before
HEAD~3`) runs in the same rounds, interleaved, against the same collector.

    python -m bench.agent_footprint [--rounds 3] [--speedup 60] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil

from agent.checks.registry import all_checks
from agent.config import AgentConfig
from bench.ingest import enrol_tokens, free_port, start

TECH_TOKEN = "bench-technician"
HOUR = 3600.0
MIB = 1024 * 1024
# `fieldpost-agent` run from the working directory's checkout (its module has no `__main__` block).
AGENT_MAIN = "import sys; from agent.cli import main; sys.exit(main())"


@dataclass(frozen=True)
class Round:
    """One agent's figures: RSS after start and after the hour (MiB), CPU seconds in the hour."""

    rss_start: float
    rss_hour: float
    cpu_own: float
    cpu_commands: float


def wait_for(predicate: object, timeout: float, what: str) -> None:
    """Poll until `predicate()` holds; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def healthy(url: str) -> bool:
    """True when the collector answers /healthz."""
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def stored_reports(db: Path, agent_id: str) -> int:
    """How many reports of an agent the collector has stored."""
    with sqlite3.connect(db) as conn:
        [(count,)] = conn.execute("SELECT count(*) FROM reports WHERE agent_id = ?", (agent_id,))
        return count


def agent_config(workdir: Path, collector_url: str, speedup: float) -> Path:
    """The default configuration, its intervals divided by `speedup`; the first runs start at once (no splay)."""
    defaults = AgentConfig()
    lines = [
        "[agent]", f'collector_url = "{collector_url}"', f'state_dir = "{workdir / "state"}"',
        "[schedule]", "splay_seconds = 0", f"jitter_seconds = {defaults.schedule.jitter_seconds / speedup}",
        "[upload]", f"interval_seconds = {defaults.upload.interval_seconds / speedup}",
    ]
    for kind, check in all_checks().items():
        interval = defaults.check(kind).interval_seconds or check.default_interval
        lines += [f"[checks.{kind}]", f"interval_seconds = {interval / speedup}"]
    config = workdir / "agent.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def enabled_checks() -> int:
    """How many checks the default configuration runs."""
    defaults = AgentConfig()
    return sum(1 for kind in all_checks() if defaults.check(kind).enabled)


def agent_round(workdir: Path, collector_url: str, db: Path, args: argparse.Namespace,
                source: Path | None) -> Round:
    """Enrol a fresh agent from `source` (None: this checkout), run it for a compressed hour, measure it."""
    workdir.mkdir(parents=True)
    config = agent_config(workdir, collector_url, args.speedup)
    agent = [sys.executable, "-c", AGENT_MAIN, "--config", str(config)]
    token = enrol_tokens(str(db), 1, source)
    subprocess.run([*agent, "enroll", "--collector", collector_url, "--token", token],
                   check=True, capture_output=True, cwd=source)
    agent_id = (workdir / "state" / "identity.json").read_text().split('"agent_id": "')[1].split('"')[0]
    log = (workdir / "agent.log").open("ab")
    process = subprocess.Popen([*agent, "run"], stdout=log, stderr=log, cwd=source)
    try:
        proc = psutil.Process(process.pid)
        wait_for(lambda: stored_reports(db, agent_id) >= args.checks, 120,
                 f"the first report of each of the {args.checks} checks (see {workdir / 'agent.log'})")
        rss_start = proc.memory_info().rss / MIB
        before = proc.cpu_times()
        time.sleep(HOUR / args.speedup)
        after = proc.cpu_times()
        rss_hour = proc.memory_info().rss / MIB
        if process.poll() is not None:
            raise RuntimeError(f"the agent stopped (see {workdir / 'agent.log'})")
    finally:
        process.terminate()
        process.wait(30)
    own = (after.user + after.system) - (before.user + before.system)
    commands = (after.children_user + after.children_system) - (before.children_user + before.children_system)
    return Round(rss_start, rss_hour, own, commands)


def summary(name: str, rounds: list[Round]) -> str:
    """One line of medians."""
    def med(field: str) -> float:
        return statistics.median(getattr(r, field) for r in rounds)
    return (f"  {name:28}{med('rss_start'):7.1f} MiB after start {med('rss_hour'):7.1f} MiB after the hour "
            f"{med('cpu_own'):7.2f} CPU s/h (+{med('cpu_commands'):.2f} in its commands)")


def main(args: argparse.Namespace) -> None:
    """Start a collector, run the agents' rounds interleaved, print the medians."""
    args.checks = enabled_checks()
    with tempfile.TemporaryDirectory(prefix="fieldpost-footprint-") as tmp:
        work = Path(tmp)
        db = work / "collector.db"
        collector_config = work / "collector.toml"
        collector_config.write_text("[collector]\nstartup_grace_seconds = 0\n")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "FIELDPOST_COLLECTOR_ADMIN_TOKEN": TECH_TOKEN}
        server = start([sys.executable, "-m", "collector.cli", "--config", str(collector_config), "--db", str(db),
                        "serve", "--listen", f"127.0.0.1:{port}"], env=env)
        try:
            wait_for(lambda: healthy(url), 30, "the collector to answer /healthz")
            current: list[Round] = []
            baseline: list[Round] = []
            for n in range(args.rounds):
                if args.baseline:
                    baseline.append(agent_round(work / f"baseline{n}", url, db, args, args.baseline))
                current.append(agent_round(work / f"agent{n}", url, db, args, None))
                print(f"round {n + 1}/{args.rounds} done", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(30)
    print(f"agent footprint: default checks ({args.checks}), an hour of scheduled runs compressed "
          f"{args.speedup:g}x into {HOUR / args.speedup:.0f} s, median of {args.rounds} rounds")
    if args.baseline:
        print(summary(f"baseline ({args.baseline.name})", baseline))
    print(summary("agent", current))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="python -m bench.agent_footprint", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported (default 3)")
    parser.add_argument("--speedup", type=float, default=60.0,
                        help="time compression of the hour (default 60: the hour takes a minute)")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="also measure the agent of the checkout in DIR, in the same rounds")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
