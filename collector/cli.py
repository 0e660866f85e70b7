"""`fieldpost-collector`: run the collector and administer it (enrolment tokens, clients, technicians)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import getpass
import importlib.util
import json
import logging
import os
import re
import signal
import ssl
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from collector import push
from collector.app import create_app, issue_technician_token
from collector.auth import token_hash
from collector.install import BackupError, InstallError, backup, install, install_commands
from collector.services.clients import Clients
from collector.services.devices import Devices, offline_after
from collector.services.errors import DomainError, Invalid
from collector.services.technicians import Technicians
from collector.services.tokens import DEFAULT_LIFETIME, DEFAULT_USES, Tokens
from collector.services.two_factor import TwoFactor
from collector.settings import Settings, SettingsError, load_settings
from collector.store import Store, is_postgresql, open_store
from collector.store.account_rows import ROLES
from shared import __version__
from shared.clock import Clock, system_clock
from shared.wire import json_schema

DURATION = re.compile(r"^(\d+)\s*([smhdw])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
# Shown in printed commands when the collector does not know its public address (the public_url setting).
PLACEHOLDER_URL = "https://COLLECTOR"
LOOPS = ("uvloop", "asyncio")
DEFAULT_LOOP = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
# The cyclic collector's thresholds while serving. At CPython's 700, the objects a few dozen requests in flight
# hold for a moment set off a young collection every few reports, and each older one walks the whole heap:
# 1.43 s of CPU in 2,608 collections over 40,000 reports (36 µs a report) under the side-by-side load.
SERVE_GC_THRESHOLDS = (20_000, 20, 20)


def parse_duration(text: str) -> timedelta:
    """`30m`, `24h`, `7d`, `2w` as a timedelta."""
    match = DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 24h, 7d or 2w")
    return timedelta(**{UNITS[match.group(2)]: int(match.group(1))})


def lifetime(text: str) -> timedelta | None:
    """A token's lifetime: a duration, or `never` (None)."""
    return None if text.strip().lower() == "never" else parse_duration(text)


def uses_count(text: str) -> int | None:
    """How many PCs a token admits: a whole number, or `unlimited` (None)."""
    return None if text.strip().lower() == "unlimited" else positive_int(text)


def positive_int(text: str) -> int:
    """A whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="fieldpost-collector",
        description="The fieldpost collector: receives agents' reports, raises alerts and serves the live feed.",
        epilog="Settings come from --config FILE ([collector] table), then FIELDPOST_COLLECTOR_* "
        "environment variables, then these options. Without a command, `serve` runs.",
    )
    parser.add_argument("--version", action="version", version=f"fieldpost-collector {__version__}")
    parser.add_argument("--config", type=Path, help="TOML settings file")
    parser.add_argument("--db", help="SQLite database file (default: collector.db) or a postgresql:// URL")
    commands = parser.add_subparsers(dest="command")

    serve = commands.add_parser("serve", help="run the collector (the default)")
    serve.add_argument("--listen", help="HOST:PORT to serve on (default 127.0.0.1:8470)")
    serve.add_argument("--tls-cert", type=Path, metavar="PEM", help="serve https with this certificate (chain), "
                       "for setups without a reverse proxy (setting: tls_cert; needs --tls-key)")
    serve.add_argument("--tls-key", type=Path, metavar="PEM", help="the certificate's private key (setting: tls_key)")
    serve.add_argument("--workers", type=positive_int, default=1, metavar="N", help=(
        "serve with N processes on the same port (SO_REUSEPORT, Linux): the kernel spreads new connections "
        "over them, each with its own event loop and database connections, as N collectors on one database "
        "would share the work; stopping the first stops them all. PostgreSQL only: SQLite takes one writer "
        "at a time, so more processes would only queue on its write lock, and N > 1 is refused (default 1)"))
    serve.add_argument("--loop", choices=LOOPS, default=DEFAULT_LOOP, help=(
        "event loop: uvloop (libuv; about a fifth less CPU per report) where it is installed, which is every "
        f"platform but Windows, else asyncio's own (default {DEFAULT_LOOP})"))

    commands.add_parser("schema", help="print the JSON Schema of the reports agents send")

    token = commands.add_parser("token", help="enrolment tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    create = token_commands.add_parser(
        "create", help="create an enrolment token for a client's site",
        description=f"Create an enrolment token for a client's site and print it with the agent install commands. "
        f"It is pasted into install commands, so by default it works for {DEFAULT_LIFETIME.days} days and for "
        f"{DEFAULT_USES} PCs, whichever ends first; after that an agent that tries it is told the token expired "
        "or is used up.")
    create.add_argument("--client", required=True, help='client name, e.g. "Acme Tooling" (created on first use)')
    create.add_argument("--site", required=True, help='site name, e.g. "Main office" (created on first use)')
    create.add_argument("--expires", type=lifetime, default=DEFAULT_LIFETIME, metavar="DURATION",
                        help=f"lifetime such as 24h or 30d, or 'never' (default: {DEFAULT_LIFETIME.days}d)")
    create.add_argument("--uses", type=uses_count, default=DEFAULT_USES, metavar="N",
                        help=f"how many PCs may enrol with it, or 'unlimited' (default: {DEFAULT_USES})")
    create.add_argument("--demo", action="store_true",
                        help="mark the client as a demo client (kept out of billing), as `make run` does")
    create.add_argument("--collector-url", help="https:// URL agents reach the collector at, shown in the printed "
                        f"install command (default: the public_url setting, else {PLACEHOLDER_URL})")

    revoke_token = token_commands.add_parser("revoke", help="stop a token from enrolling more PCs")
    revoke_token.add_argument("token", help="the token as printed by `token create`")

    commands.add_parser("clients", help="list clients, their sites and device counts")
    revoke = commands.add_parser(
        "revoke", help="refuse a device's reports from now on (a lost or retired PC)",
        description="Revoked agents get 401 on every request, from their next one on.",
    )
    revoke.add_argument("agent_id", help="agent id as `fieldpost devices` shows it")
    commands.add_parser("admin-token", help="issue a new technician API token (the old one stops working)")

    user = commands.add_parser("user", help="technician accounts for the web dashboard")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    for name, text in (("add", "create a technician who can log in to the dashboard"),
                       ("password", "set a technician's new password (logs out their browsers)")):
        action = user_commands.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]}; "
                                          "the password is asked for twice, or read from standard input.")
        action.add_argument("name", help='login name, e.g. "anna"')
        action.add_argument("--password-stdin", action="store_true",
                            help="read the password from standard input")
        if name == "add":
            action.add_argument("--role", choices=ROLES, help="owner (sets the collector up: accounts, tokens, "
                                "channels, billing, contracts) or technician (alerts, incidents, time); "
                                "default: the first account is the owner, later ones technicians")
    reset = user_commands.add_parser(
        "reset-2fa", help="turn a person's two-factor login off (lost phone) and log out their browsers",
        description="Turn a person's two-factor login off and log out their browsers, for a lost phone: they log "
        "in with the password and set two-factor up again (the owner's account must).")
    reset.add_argument("name", help='login name, e.g. "anna"')

    install = commands.add_parser(
        "install", help="install the collector as a systemd service with its own user",
        description="Create the `fieldpost` system user, install a hardened systemd unit with its database in "
        "/var/lib/fieldpost-collector, enable and start it. Run as root; running it again changes nothing.",
    )
    install.add_argument("--listen", help="HOST:PORT the service listens on (default 127.0.0.1:8470, "
                         "behind a reverse proxy for TLS: see packaging/README.md)")
    backup = commands.add_parser(
        "backup", help="copy the database safely while the collector runs",
        description="Copy the SQLite database with SQLite's online backup API: a consistent snapshot, taken "
        "without stopping the collector. Run it as the database's owner (e.g. sudo -u fieldpost).",
    )
    backup.add_argument("dest", type=Path, metavar="DEST",
                        help="file to write, or a directory to put collector-<UTC time>.db in")

    job = commands.add_parser("backup-job", help="backup jobs that report by calling a push URL (curl)")
    job_commands = job.add_subparsers(dest="job_command", required=True)
    job_create = job_commands.add_parser(
        "create", help="create a push job for a device and print its URL",
        description="A backup script on any machine (a NAS, a server without the agent) reports each run by "
        "calling the printed URL; the job's alerts belong to the device it protects.",
    )
    job_create.add_argument("--device", required=True, metavar="AGENT_ID",
                            help="agent id of the device the backup protects")
    job_create.add_argument("--name", required=True, help='job name, e.g. "nas-sync"')
    job_create.add_argument("--schedule", required=True,
                            help='daily, weekly or a cron expression such as "0 22 * * 0"')
    job_create.add_argument("--grace", type=parse_duration,
                            help="allowed lateness such as 6h (default: the rule's for the schedule)")
    job_create.add_argument("--timezone", default="UTC",
                            help="IANA time zone a cron schedule is read in (default UTC)")
    job_create.add_argument("--collector-url", help="https:// URL scripts reach the collector at, used in the printed "
                            f"push URL (default: the public_url setting, else {PLACEHOLDER_URL})")
    job_commands.add_parser("list", help="list push jobs and their last ping")
    return parser


async def create_backup_job(store: Store, args: argparse.Namespace, clock: Clock) -> str:
    """Create a push job; returns its URL and how to call it."""
    job, agent, token = await push.create_job(store, args.device, args.name, args.schedule, args.timezone,
                                              args.grace, clock())
    url = push.push_url(args.collector_url, token)
    heading = f"push job {job.name!r} for {agent.hostname} ({agent.site.client_name}, {agent.site.site_name}):"
    return "\n".join([heading, url, "", push.push_instructions(url)])


async def with_store(settings: Settings, work: Callable[[Store], Awaitable[Any]]) -> Any:
    """Open the database (applying migrations), do the work, close it."""
    store = open_store(settings.db)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


async def create_token(store: Store, args: argparse.Namespace, clock: Clock) -> str:
    """Create an enrolment token and return it (only its hash is stored)."""
    return await Tokens(store, clock).create(args.client, args.site, args.expires, args.uses, args.demo)


async def revoke(store: Store, args: argparse.Namespace, clock: Clock, settings: Settings) -> str:
    """Revoke an agent or an enrolment token; returns what happened, in words."""
    if args.command == "revoke":
        await Devices(store, clock, offline_after(settings)).revoke(args.agent_id)
        return f"agent {args.agent_id} revoked"
    await Tokens(store, clock).revoke(token_hash(args.token))
    return "token revoked"


async def print_clients(store: Store, clock: Clock) -> None:
    """Print clients with their sites and device counts."""
    clients = await Clients(store, clock).list()
    if not clients:
        print("no clients yet: create one with `fieldpost-collector token create --client NAME --site NAME`")
    for client in clients:
        print(client.name)
        for site, devices in client.sites:
            print(f"  {site}: {devices} device{'s' if devices != 1 else ''}")


def read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a prompt."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        raise Invalid(None, "the two passwords differ")
    return password


async def user_command(store: Store, args: argparse.Namespace, password: str, clock: Clock) -> str:
    """Create a technician, change their password or reset their two-factor login; returns what happened, in
    words."""
    technicians = Technicians(store, clock)
    if args.user_command == "reset-2fa":
        if not await TwoFactor(store, clock).reset(args.name, by="collector CLI"):
            return f"two-factor login of {args.name!r} was off already; their browsers were logged out"
        return f"two-factor login of {args.name!r} is off and their browsers were logged out: they log in with " \
               "the password and set it up again"
    if args.user_command == "add":
        added = await technicians.add(args.name, password, args.role)
        role = "the owner" if added.role == "owner" else "a technician"
        return f"technician {args.name!r} created as {role}: log in to the dashboard at the collector's address"
    await technicians.change_password(args.name, password)
    return f"password of {args.name!r} changed; their browsers were logged out"


def new_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new event loop: "uvloop" (libuv) or "asyncio" (the standard library's)."""
    if name == "uvloop":
        import uvloop  # imported only when chosen: not installed on Windows

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def tune_gc() -> None:
    """Collect cycles less often while serving, and leave what start-up made out of every collection."""
    # Frozen before any fork, too: collections in the workers then do not touch (and copy) the shared pages.
    gc.freeze()
    gc.set_threshold(*SERVE_GC_THRESHOLDS)


def serve(settings: Settings, clock: Clock = system_clock, tls: ssl.SSLContext | None = None, workers: int = 1,
          loop: str = DEFAULT_LOOP) -> None:
    """Run the collector until interrupted; over https when given a TLS context; in `workers` processes
    sharing the port (forked before any event loop or thread exists; the first stops the others when it stops);
    on the `loop` named."""
    host, port = settings.host_port
    scheme = "https" if tls else "http"
    print(f"fieldpost-collector {__version__} on {scheme}://{host}:{port} (database {settings.db}"
          f"{f', {workers} processes' if workers > 1 else ''})", flush=True)
    tune_gc()
    others: list[int] = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            others = []
            break
        others.append(pid)
    access_log = logging.getLogger("aiohttp.access") if settings.access_log else None
    try:
        web.run_app(create_app(settings, clock=clock), host=host, port=port, print=None, shutdown_timeout=5,
                    access_log=access_log, ssl_context=tls, reuse_port=workers > 1 or None, loop=new_loop(loop))
    finally:
        for pid in others:
            os.kill(pid, signal.SIGTERM)
        for pid in others:
            os.waitpid(pid, 0)


def main(argv: list[str] | None = None, clock: Clock = system_clock) -> int:
    """Entry point of `fieldpost-collector`; `clock` is the time every command that writes records."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(args.config, db=args.db, listen=getattr(args, "listen", None),
                                 tls_cert=getattr(args, "tls_cert", None), tls_key=getattr(args, "tls_key", None))
        tls = settings.server_tls() if args.command in (None, "serve") else None
    except SettingsError as exc:
        print(f"fieldpost-collector: {exc}", file=sys.stderr)
        return 2
    if getattr(args, "collector_url", "") is None:
        args.collector_url = settings.public_url or PLACEHOLDER_URL
    workers = getattr(args, "workers", 1)
    if workers > 1 and not is_postgresql(settings.db):
        print("fieldpost-collector serve: --workers above 1 needs PostgreSQL: SQLite takes one writer at a time, "
              "so more processes would only queue on its write lock (one process already commits reports in "
              "groups); run one worker on SQLite, or move to a postgresql:// database", file=sys.stderr)
        return 2
    if args.command == "schema":
        print(json.dumps(json_schema(), indent=2))
    elif args.command == "revoke" or (args.command == "token" and args.token_command == "revoke"):
        try:
            print(asyncio.run(with_store(settings, lambda store: revoke(store, args, clock, settings))))
        except DomainError as exc:
            print(f"fieldpost-collector {args.command}: {exc.reason}", file=sys.stderr)
            return 1
    elif args.command == "token":
        try:
            token = asyncio.run(with_store(settings, lambda store: create_token(store, args, clock)))
        except DomainError as exc:
            print(f"fieldpost-collector token create: {exc.reason}", file=sys.stderr)
            return 1
        print(token)
        until = f"until {clock() + args.expires:%Y-%m-%d %H:%M %Z}" if args.expires else "without expiry"
        uses = f"for {args.uses} PC{'s' if args.uses != 1 else ''}" if args.uses else "for any number of PCs"
        print(f"\nThe token works {until}, {uses}.", file=sys.stderr)
        commands = install_commands(args.collector_url, token)
        lines = [f"  {system}:\n    {command}" for system, command in commands.items()]
        print("\nInstall the agent on the client's PC with one line (as root / Administrator):", *lines,
              sep="\n", file=sys.stderr)
    elif args.command == "clients":
        asyncio.run(with_store(settings, lambda store: print_clients(store, clock)))
    elif args.command == "install":
        try:
            install(listen=settings.listen)
        except InstallError as exc:
            print(f"fieldpost-collector install: {exc}", file=sys.stderr)
            return 1
    elif args.command == "backup":
        if "://" in settings.db:
            print("fieldpost-collector backup: copies a SQLite database; back up PostgreSQL with pg_dump",
                  file=sys.stderr)
            return 2
        try:
            print(f"backed up {settings.db} to {backup(Path(settings.db), args.dest, clock())}")
        except (BackupError, OSError) as exc:
            print(f"fieldpost-collector backup: {exc}", file=sys.stderr)
            return 1
    elif args.command == "backup-job":
        try:
            if args.job_command == "create":
                print(asyncio.run(with_store(settings, lambda store: create_backup_job(store, args, clock))))
            else:
                lines = asyncio.run(with_store(settings, push.job_lines))
                print("\n".join(lines) or "no push jobs yet (`backup-job create` makes one)")
        except push.PushJobRefused as exc:
            print(f"fieldpost-collector backup-job: {exc}", file=sys.stderr)
            return 1
    elif args.command == "user":
        try:
            password = "" if args.user_command == "reset-2fa" else read_password(args.password_stdin)
            print(asyncio.run(with_store(settings, lambda store: user_command(store, args, password, clock))))
        except DomainError as exc:
            print(f"fieldpost-collector user: {exc.reason}", file=sys.stderr)
            return 1
    elif args.command == "admin-token":
        if settings.admin_token:
            print("fieldpost-collector admin-token: the technician token is set in the settings "
                  "(admin_token); change it there and restart the collector", file=sys.stderr)
            return 1
        print(asyncio.run(with_store(settings, lambda store: issue_technician_token(store, settings))))
    else:
        serve(settings, clock, tls, workers, getattr(args, "loop", DEFAULT_LOOP))
    return 0


if __name__ == "__main__":
    sys.exit(main())
