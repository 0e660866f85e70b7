"""`fieldpost-agent`: run the agent service, enrol it, run checks by hand, show its status, install it,
report a backup script's result or run a restic/borg backup and report it."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

import shared
from agent.checks import CheckContext
from agent.checks.backup_results import BackupResultsCheck, job_report, local_zone_name
from agent.checks.backup_results.jobs import BorgJob, Job, ResticJob, ScriptJob, parse_jobs
from agent.commands import CommandNotFound
from agent.config import CONFIG_ENV, AgentConfig, CollectorUrl, ConfigError, default_config_path, load_config
from agent.identity import EnrolmentError, IdentityError, enrol, load_identity
from agent.outbox import OUTBOX_FILE, read_stats
from agent.service import UnknownCheck, check_once, open_outbox, run_until_signalled
from agent.transport import InsecureTransport
from shared.backup_results import BackupResults
from shared.base import Signal
from shared.clock import Clock, system_clock
from shared.wire import Unknown

EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser; `--config` is accepted before and after the subcommand."""
    config_help = (f"agent configuration file (default: ${CONFIG_ENV}, else {default_config_path()}; "
                   "a missing default file means built-in defaults)")
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: when not given after the subcommand, the value given before it (or None) is kept.
    common.add_argument("--config", type=Path, metavar="FILE", default=argparse.SUPPRESS, help=config_help)
    parser = argparse.ArgumentParser(
        prog="fieldpost-agent",
        description="The fieldpost agent: runs checks on this PC on a schedule and reports them "
                    "to the collector.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", default=None, help=config_help)
    parser.add_argument("--version", action="version", version=f"fieldpost-agent {shared.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Plain HTTP to another machine is refused unless allowed, by `run`, `enroll` and `install` alike.
    plain = argparse.ArgumentParser(add_help=False)
    plain.add_argument("--insecure-http", action="store_true", default=argparse.SUPPRESS,
                       help="allow a plain http:// collector URL to another machine (the token and reports then "
                            "cross the network unprotected; configuration: agent.insecure_http)")
    commands.add_parser("run", parents=[common, plain], help="run the agent service until SIGINT/SIGTERM",
                        description="Run the checks on their schedule and upload the results; "
                                    "stops cleanly on Ctrl-C or SIGTERM. Needs an enrolled agent.")

    # What enrolment needs, shared by `enroll` and `install`.
    enrolment = argparse.ArgumentParser(add_help=False, parents=[plain])
    enrolment.add_argument("--collector", required=True, metavar="URL",
                           help="collector base URL, e.g. https://fp.example.net (http:// only to this "
                                "machine, unless --insecure-http)")
    enrolment.add_argument("--ca-file", type=Path, metavar="PEM", default=argparse.SUPPRESS,
                           help="trust only this CA for the collector's certificate (a private CA; "
                                "configuration: agent.ca_file)")
    enrolment.add_argument("--token", required=True, help="enrolment token (from `fieldpost-collector token create`)")
    enroll = commands.add_parser(
        "enroll", parents=[common, enrolment], help="register this PC with a collector",
        description="Create this agent's key pair, register it with the collector using an enrolment token "
                    "(from `fieldpost-collector token create`), and keep the issued agent id in the state "
                    "directory.")
    enroll.add_argument("--force", action="store_true",
                        help="enrol again even if already enrolled (new key and agent id)")

    check = commands.add_parser(
        "check", parents=[common], help="run checks once and print what they found (sends nothing)",
        description="Run checks once and print their signals; nothing is queued or sent. Works before "
                    "enrolment and without a configuration file. Exits 1 when a check could not look.")
    check.add_argument("kinds", nargs="*", metavar="KIND",
                       help="checks to run, even disabled ones (default: every enabled check)")
    check.add_argument("--json", action="store_true", help="print a JSON array of signals instead of text")
    check.add_argument("--root", type=Path, metavar="DIR",
                       help="read files under DIR instead of agent.root (default /), e.g. a prepared tree")

    commands.add_parser("status", parents=[common], help="show identity, outbox and last upload",
                        description="Show who this agent is, how much is waiting in its outbox, "
                                    "and how the last upload went.")

    report = commands.add_parser(
        "backup-report", parents=[common], help="report the result of a backup script's run",
        description="For a backup script on this PC, declared in the configuration as a "
                    "[[backup.jobs]] table with tool = \"script\": record the run's result and queue it "
                    "for the collector. The running service sends it, and the backup_results check keeps "
                    "reporting it on the job's schedule. Needs an enrolled agent and write access to its "
                    "state directory.")
    report.add_argument("--job", required=True, metavar="NAME", help="the job's name in [[backup.jobs]]")
    report.add_argument("--status", required=True, choices=["success", "warning", "failed"],
                        help="how the run ended")
    report.add_argument("--bytes", type=whole_number, metavar="N", help="size of the backup, in bytes")
    report.add_argument("--message", metavar="TEXT",
                        help="what happened (for a failure: why; the end of the log says most)")

    wrapped = commands.add_parser(
        "backup-run", parents=[common], help="run a restic or borg backup and report how it ended",
        description="For a restic or borg job in [[backup.jobs]] run by this PC's own scheduler (cron, a "
                    "systemd timer, Task Scheduler): run the backup command given after `--`, pass its "
                    "output through, record its exit status and the files it could not read, and queue "
                    "the job's report. A run that skipped files (restic exit 3, borg exit 1) is then a "
                    "warning, a failed run a failure, though the repository still shows the last backup. "
                    "Exits with the backup command's own status.")
    wrapped.add_argument("--job", required=True, metavar="NAME", help="the job's name in [[backup.jobs]]")
    wrapped.add_argument("backup_command", nargs=argparse.REMAINDER, metavar="-- COMMAND ...",
                         help="the backup command, e.g. -- restic backup --json /srv/data")

    commands.add_parser(
        "install", parents=[enrolment], help="install this PC's agent as a service: config, enrolment, start",
        description="Write the configuration (platform default place), enrol with the token, install the "
                    "service (systemd, launchd or a Windows service) and start it. Run as root/Administrator. "
                    "Running it again changes nothing.")
    uninstall = commands.add_parser(
        "uninstall", help="stop and remove the service and its configuration",
        description="Stop and remove the service and the configuration. By default the state directory "
                    "(identity and unsent reports) is kept, so a later install needs no new token.")
    keep = uninstall.add_mutually_exclusive_group()
    keep.add_argument("--keep-state", dest="keep_state", action="store_true", default=True,
                      help="keep the identity and unsent reports (the default)")
    keep.add_argument("--purge", dest="keep_state", action="store_false",
                      help="remove the state directory too; the collector's record of this PC stays")
    return parser


def whole_number(text: str) -> int:
    """A whole number of at least 0."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes")
    return int(text)


def _render(value: Any, indent: str) -> list[str]:
    """Readable lines for a JSON-like value: mappings as `key: value`, lists as `- item`."""
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                lines += [f"{indent}{key}:", *_render(item, indent + "  ")]
            else:
                lines.append(f"{indent}{key}: {'-' if item in (None, [], {}) else item}")
        return lines
    if isinstance(value, list):
        lines = []
        for item in value:
            if isinstance(item, dict):
                first, *rest = _render(item, indent + "  ")
                lines += [f"{indent}- {first.lstrip()}", *rest]
            else:
                lines.append(f"{indent}- {item}")
        return lines
    return [f"{indent}{value}"]


def format_signal(signal: Signal) -> str:
    """A signal as readable text for a technician at the PC."""
    when = f"{signal.collected_at:%Y-%m-%d %H:%M:%S %Z}"
    if isinstance(signal, Unknown):
        return f"{signal.check}: COULD NOT LOOK ({when})\n  {signal.error}"
    facts = signal.model_dump(mode="json", exclude={"kind", "collected_at"})
    return "\n".join([f"{signal.kind} ({when})", *_render(facts, "  ")])


def _check(config: AgentConfig, kinds: Sequence[str], as_json: bool, root: Path, clock: Clock) -> int:
    """`check`: run checks once and print the signals."""
    try:
        signals = asyncio.run(check_once(config, kinds, root, clock))
    except UnknownCheck as exc:
        print(f"fieldpost-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if as_json:
        print(json.dumps([s.model_dump(mode="json") for s in signals], indent=2))
    else:
        print("\n\n".join(format_signal(s) for s in signals))
    return EXIT_FAILED if any(isinstance(s, Unknown) for s in signals) else 0


def _enroll(config: AgentConfig, collector: str, token: str, force: bool, clock: Clock) -> int:
    """`enroll`: register with the collector and keep the identity."""
    try:
        url = _validate_url(collector)
        identity = asyncio.run(enrol(config.agent.state_dir, url, token, force=force, clock=clock,
                                     insecure_http=config.agent.insecure_http, ca_file=config.agent.ca_file))
    except EnrolmentError as exc:
        print(f"fieldpost-agent: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"enrolled as {identity.agent_id} for client {identity.client!r}, site {identity.site!r}; "
          f"identity kept in {config.agent.state_dir}")
    return 0


def _validate_url(url: str) -> str:
    """The collector URL, normalised, or `EnrolmentError` saying what is wrong with it."""
    try:
        return TypeAdapter(CollectorUrl).validate_python(url)
    except ValidationError as exc:
        raise EnrolmentError(f"--collector {url!r}: {exc.errors()[0]['msg']}") from exc


def _status(config: AgentConfig) -> int:
    """`status`: identity, outbox depth and the last upload."""
    state_dir = config.agent.state_dir
    try:
        identity = load_identity(state_dir)
    except IdentityError as exc:
        print(exc)
        return EXIT_FAILED
    print(f"agent:      {identity.agent_id} (client {identity.client!r}, site {identity.site!r})")
    print(f"collector:  {config.agent.collector_url or identity.collector_url}")
    print(f"enrolled:   {identity.enrolled_at:%Y-%m-%d %H:%M:%S %Z}")
    stats = read_stats(state_dir / OUTBOX_FILE)
    if stats is None:
        print("outbox:     none yet (the service has not run)")
        return 0
    oldest = ""
    if stats.oldest_pending_at:
        oldest = f", oldest queued {stats.oldest_pending_at:%Y-%m-%d %H:%M:%S %Z}"
    print(f"outbox:     {stats.pending} envelopes waiting ({stats.pending_bytes} bytes{oldest}), "
          f"{stats.rejected} rejected kept for inspection, next seq {stats.next_seq}")
    if stats.warning:
        when = f" ({stats.warning_at:%Y-%m-%d %H:%M:%S %Z})" if stats.warning_at else ""
        print(f"warning:    {stats.warning}{when}")
    if stats.last_upload_at is None:
        print("last upload: none yet")
    else:
        print(f"last upload: {stats.last_upload_at:%Y-%m-%d %H:%M:%S %Z}: {stats.last_upload_result}")
    return 0


def _configured_job(config: AgentConfig, name: str, kinds: tuple[type, ...], example: str) -> Job | None:
    """The backup job `name` when it is of one of `kinds`; else None after telling how to declare it."""
    jobs = parse_jobs(config.check(BackupResultsCheck.kind).settings.get("jobs") or [])
    job = next((job for job in jobs if job.name == name), None)
    if isinstance(job, kinds):
        return job
    what = f"is a {job.tool} job" if job else "is not in the configuration"
    print(f"fieldpost-agent: backup job {name!r} {what}; declare it as\n"
          f'  [[backup.jobs]]\n  name = "{name}"\n  {example}\n  schedule = "daily"', file=sys.stderr)
    return None


def _queue_job(config: AgentConfig, signal: BackupResults, clock: Clock) -> int | str:
    """Queue one job's report; returns the envelope number, or why it could not be queued."""
    state_dir = config.agent.state_dir
    try:
        identity = load_identity(state_dir)
    except IdentityError as exc:
        return str(exc)
    try:
        outbox = open_outbox(config, identity, clock)
        try:
            return outbox.put([signal])
        finally:
            outbox.close()
    except (OSError, sqlite3.Error) as exc:
        return f"cannot write to {state_dir} ({exc}): run this as the agent service's user"


def _backup_report(config: AgentConfig, args: argparse.Namespace, clock: Clock) -> int:
    """`backup-report`: record a script job's result and queue it for the collector."""
    # Imported here, like `backup-run`'s and `install`'s parts: the service (`run`) needs none of them.
    from agent.checks.backup_results.script import record_result

    job = _configured_job(config, args.job, (ScriptJob,), 'tool = "script"')
    if job is None:
        return EXIT_USAGE
    state_dir = config.agent.state_dir
    try:
        load_identity(state_dir)
    except IdentityError as exc:
        print(f"fieldpost-agent: cannot report backup results: {exc}", file=sys.stderr)
        return EXIT_FAILED
    now = clock()
    try:
        facts = record_result(state_dir, job.name, args.status, now, args.bytes, args.message)
    except OSError as exc:
        print(f"fieldpost-agent: cannot write to {state_dir} ({exc}): run this as the agent service's user",
              file=sys.stderr)
        return EXIT_FAILED
    seq = _queue_job(config, BackupResults(collected_at=now, jobs=[job_report(job, local_zone_name(), facts)]),
                     clock)
    if isinstance(seq, str):
        print(f"fieldpost-agent: cannot report backup results: {seq}", file=sys.stderr)
        return EXIT_FAILED
    print(f"backup job {job.name!r}: {args.status} recorded and queued (envelope {seq}); "
          "the agent service sends it to the collector")
    return 0


def _backup_run(config: AgentConfig, args: argparse.Namespace, clock: Clock) -> int:
    """`backup-run`: run a restic/borg backup, record how it ended and queue the job's report."""
    from agent.checks.backup_results import borg, restic
    from agent.checks.backup_results.runs import record_run, run_tool, verdict

    argv = args.backup_command[1:] if args.backup_command[:1] == ["--"] else args.backup_command
    if not argv:
        print("fieldpost-agent: backup-run needs the backup command after `--`, e.g.\n"
              "  fieldpost-agent backup-run --job NAME -- restic backup --json /srv/data", file=sys.stderr)
        return EXIT_USAGE
    job = _configured_job(config, args.job, (ResticJob, BorgJob), 'tool = "restic"  # or "borg"')
    if job is None:
        return EXIT_USAGE
    started = clock()
    try:
        returncode, stdout, stderr = run_tool(argv)
        errors, fatal = (restic if job.tool == "restic" else borg).run_problems(stdout, stderr)
    except CommandNotFound as exc:
        returncode, errors, fatal = 127, [], str(exc)  # the status a shell gives a missing program
    state_dir = config.agent.state_dir
    try:
        record = record_run(state_dir, job.name, job.tool, returncode, started, clock(), errors, fatal)
    except OSError as exc:
        print(f"fieldpost-agent: cannot record the run in {state_dir} ({exc})", file=sys.stderr)
        return returncode or EXIT_FAILED
    check = BackupResultsCheck(CheckContext(settings={"jobs": []}, state_dir=state_dir, clock=clock))
    now = clock()
    signal = BackupResults(collected_at=now, jobs=[check.report(job, now, local_zone_name())])
    seq = _queue_job(config, signal, clock)
    outcome = f"{verdict(record)} (exit status {returncode})"
    if isinstance(seq, str):
        print(f"fieldpost-agent: backup job {job.name!r}: {outcome} recorded, not queued: {seq}", file=sys.stderr)
    else:
        print(f"fieldpost-agent: backup job {job.name!r}: {outcome} recorded and queued (envelope {seq})",
              file=sys.stderr)
    # A tool killed by a signal exits as a shell would report it.
    return returncode if returncode >= 0 else 128 - returncode


def _install(args: argparse.Namespace) -> int:
    """`install` / `uninstall`: the service, its configuration and (install) the enrolment."""
    from agent.install import InstallError, install, uninstall

    try:
        if args.command == "install":
            asyncio.run(install(args.collector, args.token, insecure_http=getattr(args, "insecure_http", False),
                                ca_file=args.ca_file.absolute() if getattr(args, "ca_file", None) else None))
        else:
            uninstall(args.keep_state)
    except (InstallError, OSError) as exc:
        print(f"fieldpost-agent {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return 0


def main(argv: Sequence[str] | None = None, clock: Clock = system_clock) -> int:
    """Entry point of `fieldpost-agent`; returns the exit status. `clock` is the agent's one clock."""
    args = build_parser().parse_args(argv)
    if args.command in ("install", "uninstall"):
        return _install(args)
    try:
        config = with_transport_options(load_config(args.config), args)
    except ConfigError as exc:
        print(f"fieldpost-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(stream=sys.stderr, level=config.agent.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if config.agent.log_level != "DEBUG":
        # APScheduler logs two INFO lines per job run: noise in a service log.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    if args.command == "check":
        return _check(config, args.kinds, args.json, args.root or config.agent.root, clock)
    if args.command == "enroll":
        return _enroll(config, args.collector, args.token, args.force, clock)
    if args.command == "status":
        return _status(config)
    if args.command == "backup-report":
        return _backup_report(config, args, clock)
    if args.command == "backup-run":
        return _backup_run(config, args, clock)
    try:
        identity = load_identity(config.agent.state_dir)
    except IdentityError as exc:
        print(f"fieldpost-agent: {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        asyncio.run(run_until_signalled(config, identity, clock))
    except InsecureTransport as exc:
        print(f"fieldpost-agent: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


def with_transport_options(config: AgentConfig, args: argparse.Namespace) -> AgentConfig:
    """The configuration with `--insecure-http` and `--ca-file` from the command line taking precedence."""
    given = {key: getattr(args, key) for key in ("insecure_http", "ca_file") if hasattr(args, key)}
    return config.model_copy(update={"agent": config.agent.model_copy(update=given)}) if given else config
