"""The agent service: wires checks, scheduler, outbox and uploader together and runs until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import psutil

from agent import sdnotify, site_config
from agent.checks import Check, CheckContext
from agent.checks.registry import all_checks
from agent.config import AgentConfig
from agent.identity import Identity
from agent.outbox import OUTBOX_FILE, Outbox
from agent.scheduler import build_scheduler
from agent.transport import check_collector_url, collector_session, ssl_context
from agent.uploader import Uploader
from shared.base import Signal
from shared.clock import Clock, system_clock

log = logging.getLogger(__name__)

LINUX_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def boot_id() -> str:
    """An identifier of the current boot: the kernel's on Linux, else derived from the boot time."""
    try:
        return LINUX_BOOT_ID.read_text().strip()
    except OSError:
        # Windows derives boot time from uptime, so it wobbles by a second; ten-second steps absorb that.
        return f"boot-{round(psutil.boot_time() / 10)}"


class UnknownCheck(ValueError):
    """A check kind was asked for that this agent does not have."""


def build_checks(
    config: AgentConfig, kinds: Sequence[str] = (), root: Path = Path("/"), clock: Clock = system_clock
) -> dict[str, Check]:
    """The named checks (even if disabled), or every enabled one, each with its config settings.

    `root` is where the checks read the filesystem (a prepared tree in tests, like node_exporter's rootfs).
    """
    known = all_checks()
    for kind in kinds:
        if kind not in known:
            raise UnknownCheck(f"unknown check {kind!r} (known: {', '.join(sorted(known))})")
    selected = list(kinds) or [kind for kind in known if config.check(kind).enabled]
    state_dir = config.agent.state_dir
    return {
        kind: known[kind](
            CheckContext(settings=config.check(kind).settings, root=root, state_dir=state_dir, clock=clock)
        )
        for kind in selected
    }


async def check_once(
    config: AgentConfig, kinds: Sequence[str] = (), root: Path = Path("/"), clock: Clock = system_clock
) -> list[Signal]:
    """Run checks once, concurrently, and return their signals in check order; nothing is queued or sent."""
    checks = build_checks(config, kinds, root, clock)
    results = await asyncio.gather(*(check.run() for check in checks.values()))
    return [signal for signals in results for signal in signals]


def open_outbox(config: AgentConfig, identity: Identity, clock: Clock = system_clock) -> Outbox:
    """The outbox in the state directory, bounded as configured."""
    return Outbox(config.agent.state_dir / OUTBOX_FILE, identity.agent_id, boot_id(),
                  max_bytes=config.outbox.max_bytes, max_age=timedelta(days=config.outbox.max_age_days), clock=clock)


async def run(config: AgentConfig, identity: Identity, stop: asyncio.Event, clock: Clock = system_clock) -> None:
    """Run the agent until `stop` is set.

    1. Open the outbox and build the enabled checks and the uploader.
    2. Start the scheduler (check jobs fill the outbox) and the uploader's rounds (which drain it).
    3. On stop: start no new job, let the batch being uploaded finish, then shut down.
    Plain http:// to another machine (unless allowed) or an unreadable agent.ca_file raises
    `InsecureTransport` before anything starts.
    """
    collector_url = config.agent.collector_url or identity.collector_url
    check_collector_url(collector_url, config.agent.insecure_http)
    tls = ssl_context(config.agent.ca_file)
    outbox = open_outbox(config, identity, clock)
    uploader = Uploader(outbox, identity, collector_url, timeout=config.upload.timeout_seconds,
                        backoff_cap=config.upload.backoff_cap_seconds, clock=clock, tls=tls)
    checks = build_checks(config, root=config.agent.root, clock=clock)
    scheduler = build_scheduler(config, checks, outbox, uploader, identity.agent_id, clock=clock)
    scheduler.start()
    # The first round is immediate: envelopes left from the last run should not wait.
    uploads = asyncio.create_task(uploader.run(config.upload.interval_seconds))
    # The site document (devices without an agent to probe), kept fresh beside the checks.
    documents = collector_session(tls, config.upload.timeout_seconds)
    fresh = asyncio.create_task(site_config.keep_fresh(documents, identity, collector_url, config.agent.state_dir,
                                                        stop, clock))
    # READY=1 and watchdog pings for systemd (Type=notify); a no-op anywhere else.
    notifier = asyncio.create_task(sdnotify.supervise(stop))
    log.info("agent %s (client %s, site %s) running checks %s, reporting to %s",
             identity.agent_id, identity.client, identity.site, ", ".join(checks) or "(none)", collector_url)
    try:
        await stop.wait()
    finally:
        log.info("stopping: finishing the upload in flight")
        notifier.cancel()
        fresh.cancel()
        await documents.close()
        scheduler.pause()
        await uploader.close()
        await uploads
        # Check runs still going are cancelled; they have not queued anything, so nothing is half-written.
        scheduler.shutdown(wait=False)
        await asyncio.sleep(0)
        outbox.close()
        log.info("stopped")


async def run_until_signalled(config: AgentConfig, identity: Identity, clock: Clock = system_clock) -> None:
    """Run the agent until SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        if sys.platform == "win32":
            # The event loop cannot watch signals on Windows; a plain handler hands them over.
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
        else:
            loop.add_signal_handler(signum, stop.set)
    await run(config, identity, stop, clock)
