"""`fieldpost-agent install` and `uninstall`: configuration, enrolment and the OS service, idempotently.

Every call to a service manager (systemctl, launchctl, sc.exe) goes through one `Runner`, so tests
record them instead of touching the real one; `root` lets tests install into a temporary directory.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import sys
import sysconfig
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath, PureWindowsPath

from pydantic import TypeAdapter, ValidationError

from agent.commands import CommandResult, Runner, run_command
from agent.config import CollectorUrl, ConfigError, default_config_path, parse_config, platform_data_dir
from agent.identity import EnrolmentError, enrol, is_enrolled, write_private_file
from agent.transport import InsecureTransport, check_collector_url

SERVICE = "fieldpost-agent"
LAUNCHD_LABEL = "net.fieldpost.agent"
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
NOTHING_CHANGED = "already installed, nothing changed"
NOTHING_REMOVED = "not installed, nothing to remove"
Say = Callable[[str], None]


class InstallError(Exception):
    """Installing or uninstalling stopped; the message says what failed and what to do."""


def templates_dir() -> Path:
    """packaging/ beside the packages (a source tree), else share/fieldpost/packaging of this installation."""
    for candidate in (Path(__file__).resolve().parents[1] / "packaging",
                      Path(sysconfig.get_path("data")) / "share" / "fieldpost" / "packaging"):
        # Checked by a file of ours: in site-packages, "packaging" is usually the PyPI library of that name.
        if (candidate / "systemd" / "fieldpost-agent.service").is_file():
            return candidate
    raise InstallError("the service templates (packaging/) are missing from this installation")


def render(template: str, **values: str) -> str:
    """A template from packaging/ with each `{{name}}` filled; a missing or unused value is an error."""
    text = (templates_dir() / template).read_text(encoding="utf-8")
    wanted = set(PLACEHOLDER.findall(text))
    if wanted != set(values):
        raise ValueError(f"{template}: placeholders {sorted(wanted)}, values given {sorted(values)}")
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


def systemd_quote(arg: str) -> str:
    """One ExecStart= argument, quoted so that spaces, `$` and `%` reach the program as written."""
    escaped = arg.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def xml_text(value: str) -> str:
    """`value` escaped for an XML text node (plist strings)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def under(root: Path, path: PurePath) -> Path:
    """Where the absolute `path` of the target system lies when that system is mounted at `root`."""
    return root.joinpath(*path.parts[1:])


def script_path(name: str, system: str = sys.platform) -> str:
    """A console script of this installation (e.g. fieldpost-agent), as the service must start it."""
    return str(Path(sysconfig.get_path("scripts")) / (f"{name}.exe" if system == "win32" else name))


@dataclass(frozen=True)
class Layout:
    """Where the agent's files go on one OS (paths as that OS spells them)."""

    config: PurePath
    config_mode: int
    state_dir: PurePath
    service_file: PurePath | None
    extra_dirs: tuple[PurePath, ...]


def layout(system: str = sys.platform, env: Mapping[str, str] = os.environ) -> Layout:
    """The agent's layout on `system`; config and state paths are those agent.config uses by default."""
    pure: type[PurePath] = PureWindowsPath if system == "win32" else PurePosixPath
    config = pure(str(default_config_path(system, env)))
    state_dir = pure(str(platform_data_dir(system, env)))
    if system == "win32":
        return Layout(config, 0o600, state_dir, None, ())
    if system == "darwin":
        return Layout(config, 0o600, state_dir, pure(f"/Library/LaunchDaemons/{LAUNCHD_LABEL}.plist"),
                      (pure("/Library/Logs/fieldpost"),))
    return Layout(config, 0o640, state_dir, pure(f"/etc/systemd/system/{SERVICE}.service"),
                  (pure("/var/cache/fieldpost"),))


def call(run: Runner, argv: Sequence[str], ok: Sequence[int] = (0,)) -> CommandResult:
    """Run a service-manager command; an exit status outside `ok` is an InstallError with its output."""
    result = run(argv, timeout=120.0)
    if result.returncode not in ok:
        said = (result.stderr.strip() or result.stdout.strip())[:300]
        raise InstallError(f"`{' '.join(argv)}` failed (exit {result.returncode}): {said}")
    return result


def place(root: Path, path: PurePath, content: bytes, mode: int) -> str | None:
    """Make the file hold `content` with `mode`; what changed, or None when it already did."""
    target = under(root, path)
    if target.is_file() and target.read_bytes() == content:
        if os.name == "posix" and stat.S_IMODE(target.stat().st_mode) != mode:
            target.chmod(mode)
            return f"set mode {mode:04o} on {path}"
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    write_private_file(target, content, mode)
    target.chmod(mode)  # the umask may have narrowed what os.open created
    return f"wrote {path} ({mode:04o})"


def remove(root: Path, path: PurePath) -> str | None:
    """Delete a file or directory tree; what was removed, or None when it was not there."""
    target = under(root, path)
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()
    else:
        return None
    return f"removed {path}"


def config_text(collector_url: str, state_dir: PurePath, insecure_http: bool = False,
                ca_file: Path | None = None) -> str:
    """The agent.toml that install writes (JSON strings are valid TOML basic strings)."""
    return ("# fieldpost agent, written by `fieldpost-agent install`; every key: README, \"Agent configuration\".\n"
            "[agent]\n"
            f"collector_url = {json.dumps(collector_url)}\n"
            f"state_dir = {json.dumps(str(state_dir))}\n"
            + ("insecure_http = true\n" if insecure_http else "")
            + (f"ca_file = {json.dumps(str(ca_file))}\n" if ca_file else ""))


def systemd_install(run: Runner, unit: str, reload: bool, restart: bool) -> list[str]:
    """Enable and start a unit; `reload` after its file changed, `restart` when it runs on old settings."""
    done = []

    def do(*argv: str) -> None:
        call(run, argv)
        done.append(f"ran {' '.join(argv)}")

    if reload:
        do("systemctl", "daemon-reload")
    if run(["systemctl", "is-enabled", "--quiet", unit]).returncode != 0:
        do("systemctl", "enable", unit)
    if run(["systemctl", "is-active", "--quiet", unit]).returncode != 0:
        do("systemctl", "start", unit)
    elif restart:
        do("systemctl", "restart", unit)
    return done


def systemd_uninstall(run: Runner, unit: str) -> list[str]:
    """Stop and disable a unit whose file is still there (its removal and daemon-reload come after)."""
    call(run, ["systemctl", "disable", "--now", unit])
    return [f"ran systemctl disable --now {unit}"]


class ServiceManager:
    """How one OS installs, starts and removes the agent's service."""

    def service_file(self, lay: Layout, program: str) -> bytes | None:
        """The unit or plist the service manager reads, or None when it keeps the definition itself."""
        return None

    def secure_state_dir(self, run: Runner, root: Path, state_dir: PurePath) -> list[str]:
        """Make the state directory (which will hold the private key) readable by the service only."""
        target = under(root, state_dir)
        target.mkdir(parents=True, exist_ok=True, mode=0o700)
        if stat.S_IMODE(target.stat().st_mode) == 0o700:
            return []
        target.chmod(0o700)
        return [f"set mode 0700 on {state_dir}"]

    def start(self, run: Runner, lay: Layout, program: str, changed: bool) -> list[str]:
        """Register, enable and start the service; restart it when `changed` (its files changed)."""
        raise NotImplementedError

    def stop(self, run: Runner, root: Path, lay: Layout) -> list[str]:
        """Stop and unregister the service, if it is registered."""
        raise NotImplementedError


class Systemd(ServiceManager):
    """Linux: a hardened systemd unit, Type=notify with a watchdog, logging to the journal."""

    unit = f"{SERVICE}.service"

    def service_file(self, lay: Layout, program: str) -> bytes | None:
        """The rendered fieldpost-agent.service."""
        exec_start = " ".join([systemd_quote(program), "--config", systemd_quote(str(lay.config)), "run"])
        return render("systemd/fieldpost-agent.service", exec_start=exec_start,
                      state_directory=lay.state_dir.name).encode()

    def start(self, run: Runner, lay: Layout, program: str, changed: bool) -> list[str]:
        """daemon-reload when the unit changed, enable, start (or restart after a change)."""
        return systemd_install(run, self.unit, reload=changed, restart=changed)

    def stop(self, run: Runner, root: Path, lay: Layout) -> list[str]:
        """disable --now, when the unit file is still installed."""
        assert lay.service_file is not None
        return systemd_uninstall(run, self.unit) if under(root, lay.service_file).exists() else []


class Launchd(ServiceManager):
    """macOS: a LaunchDaemon in the system domain, kept alive after failures, logging to /Library/Logs."""

    target = f"system/{LAUNCHD_LABEL}"

    def service_file(self, lay: Layout, program: str) -> bytes | None:
        """The rendered net.fieldpost.agent.plist."""
        log = lay.extra_dirs[0] / "agent.log"
        return render("launchd/net.fieldpost.agent.plist", label=LAUNCHD_LABEL, executable=xml_text(program),
                      config=xml_text(str(lay.config)), log=xml_text(str(log))).encode()

    def start(self, run: Runner, lay: Layout, program: str, changed: bool) -> list[str]:
        """bootstrap the daemon; after a change, bootout first so that launchd reads the new plist."""
        loaded = run(["launchctl", "print", self.target]).returncode == 0
        if loaded and not changed:
            return []
        done = []
        if loaded:
            call(run, ["launchctl", "bootout", self.target])
            done.append(f"ran launchctl bootout {self.target}")
        call(run, ["launchctl", "bootstrap", "system", str(lay.service_file)])
        return [*done, f"ran launchctl bootstrap system {lay.service_file}"]

    def stop(self, run: Runner, root: Path, lay: Layout) -> list[str]:
        """bootout, when launchd has the daemon loaded."""
        if run(["launchctl", "print", self.target]).returncode != 0:
            return []
        call(run, ["launchctl", "bootout", self.target])
        return [f"ran launchctl bootout {self.target}"]


ERROR_SERVICE_ALREADY_RUNNING = 1056
ERROR_SERVICE_DOES_NOT_EXIST = 1060
ERROR_SERVICE_NOT_ACTIVE = 1062
# SIDs rather than names, which Windows translates: LocalSystem and the Administrators group.
STATE_DIR_ACL = ("*S-1-5-18:(OI)(CI)F", "*S-1-5-32-544:(OI)(CI)F")
# Restart after 10 s, 10 s, then every minute; the failure count resets after a day without one.
RECOVERY = ("reset=", "86400", "actions=", "restart/10000/restart/10000/restart/60000")


class WindowsService(ServiceManager):
    """Windows: agent.winservice hosted by python.exe, auto-start, recovery actions restart it."""

    def secure_state_dir(self, run: Runner, root: Path, state_dir: PurePath) -> list[str]:
        """Replace the inherited ACL (ProgramData lets every user read) with SYSTEM and Administrators."""
        target = under(root, state_dir)
        if target.is_dir():
            return []
        target.mkdir(parents=True)
        argv = ["icacls", str(state_dir), "/inheritance:r"]
        for grant in STATE_DIR_ACL:
            argv += ["/grant:r", grant]
        call(run, argv)
        return [f"created {state_dir}, readable by SYSTEM and Administrators only"]

    def start(self, run: Runner, lay: Layout, program: str, changed: bool) -> list[str]:
        """Create the service with its recovery actions (first time), then start it unless it runs."""
        done = []
        query = call(run, ["sc.exe", "query", SERVICE], ok=(0, ERROR_SERVICE_DOES_NOT_EXIST))
        if query.returncode == ERROR_SERVICE_DOES_NOT_EXIST:
            bin_path = f'"{program}" -m agent.winservice'
            for argv in (
                ["sc.exe", "create", SERVICE, "binPath=", bin_path, "start=", "delayed-auto",
                 "DisplayName=", "fieldpost agent"],
                ["sc.exe", "description", SERVICE, "Reports this PC's health to the technician's collector"],
                ["sc.exe", "failure", SERVICE, *RECOVERY],
                # Recovery also when the service stops itself with an error, not only when it crashes.
                ["sc.exe", "failureflag", SERVICE, "1"],
            ):
                call(run, argv)
                done.append(f"ran {' '.join(argv)}")
        started = call(run, ["sc.exe", "start", SERVICE], ok=(0, ERROR_SERVICE_ALREADY_RUNNING))
        if started.returncode == 0:
            done.append(f"ran sc.exe start {SERVICE}")
        return done

    def stop(self, run: Runner, root: Path, lay: Layout) -> list[str]:
        """Stop and delete the service, if it exists."""
        stopped = call(run, ["sc.exe", "stop", SERVICE],
                       ok=(0, ERROR_SERVICE_NOT_ACTIVE, ERROR_SERVICE_DOES_NOT_EXIST))
        if stopped.returncode == ERROR_SERVICE_DOES_NOT_EXIST:
            return []
        call(run, ["sc.exe", "delete", SERVICE])
        return [f"ran sc.exe stop {SERVICE}", f"ran sc.exe delete {SERVICE}"]


def service_manager(system: str) -> ServiceManager:
    """The service manager of `system` (sys.platform spelling)."""
    if system == "win32":
        return WindowsService()
    if system == "darwin":
        return Launchd()
    if system.startswith("linux"):
        return Systemd()
    raise InstallError(f"no service installer for {system}: run `fieldpost-agent run` under your own supervisor")


def _check_privileges(root: Path) -> None:
    """Installing into the real system needs root on Linux and macOS (Windows refuses by itself)."""
    if root == Path("/") and hasattr(os, "geteuid") and os.geteuid() != 0:
        raise InstallError("run as root (sudo fieldpost-agent install ...)")


async def install(
    collector_url: str, token: str, root: Path = Path("/"), system: str = sys.platform, *,
    run: Runner = run_command, program: str | None = None, env: Mapping[str, str] = os.environ,
    hostname: str | None = None, say: Say = print, insecure_http: bool = False, ca_file: Path | None = None,
) -> list[str]:
    """Write the configuration, enrol, install and start the service; returns (and says) what changed.

    1. Secure the state directory; write agent.toml unless it exists (an existing one must name the
       same collector, and is kept).
    2. Enrol with `token`, unless already enrolled.
    3. Write the unit or plist, then register, enable and start the service (restart after a change).
    A second run finds everything in place and says so. `program` is what the service starts:
    this installation's fieldpost-agent, or on Windows its python.exe. `insecure_http` and `ca_file`
    (an absolute path) go into agent.toml for the service too.
    """
    try:
        url = TypeAdapter(CollectorUrl).validate_python(collector_url)
        check_collector_url(url, insecure_http)
    except ValidationError as exc:
        raise InstallError(f"--collector {collector_url!r}: {exc.errors()[0]['msg']}") from exc
    except InsecureTransport as exc:
        raise InstallError(str(exc)) from exc
    _check_privileges(root)
    manager = service_manager(system)
    lay = layout(system, env)
    program = program or (sys.executable if system == "win32" else script_path(SERVICE, system))
    done: list[str] = []

    def note(lines: Sequence[str | None]) -> None:
        for line in filter(None, lines):
            done.append(line)
            say(line)

    config = under(root, lay.config)
    if config.exists():
        try:
            existing = parse_config(config.read_text(encoding="utf-8"), str(lay.config)).agent.collector_url
        except ConfigError as exc:
            raise InstallError(f"{exc}; fix or remove it, then install again") from exc
        if existing not in (None, url):
            raise InstallError(f"{lay.config} reports to {existing}, not {url}: "
                               "run `fieldpost-agent uninstall --purge` first to move this PC")
    # Before anything is written into it: on Windows and macOS the configuration lives in the state directory.
    note(manager.secure_state_dir(run, root, lay.state_dir))
    config_changed = not config.exists()
    if config_changed:
        text = config_text(url, lay.state_dir, insecure_http, ca_file)
        note([place(root, lay.config, text.encode(), lay.config_mode)])

    state_dir = under(root, lay.state_dir)
    if not is_enrolled(state_dir):
        try:
            identity = await enrol(state_dir, url, token, hostname=hostname, insecure_http=insecure_http,
                                   ca_file=ca_file)
        except EnrolmentError as exc:
            raise InstallError(str(exc)) from exc
        note([f"enrolled as {identity.agent_id} for client {identity.client!r}, site {identity.site!r}"])

    for directory in lay.extra_dirs if system == "darwin" else ():
        if not under(root, directory).is_dir():
            under(root, directory).mkdir(parents=True, mode=0o755)
            note([f"created {directory}"])
    unit = manager.service_file(lay, program)
    unit_changed = False
    if unit is not None and lay.service_file is not None:
        changed = place(root, lay.service_file, unit, 0o644)
        unit_changed = changed is not None
        note([changed])
    note(manager.start(run, lay, program, config_changed or unit_changed))
    if not done:
        say(NOTHING_CHANGED)
    return done


def uninstall(
    keep_state: bool, root: Path = Path("/"), system: str = sys.platform, *,
    run: Runner = run_command, env: Mapping[str, str] = os.environ, say: Say = print,
) -> list[str]:
    """Stop and remove the service and the configuration; the state directory too unless `keep_state`.

    Keeping the state keeps the identity: installing again later reuses it without a new token.
    """
    _check_privileges(root)
    manager = service_manager(system)
    lay = layout(system, env)
    done = list(manager.stop(run, root, lay))
    if lay.service_file is not None and (line := remove(root, lay.service_file)):
        done.append(line)
        if isinstance(manager, Systemd):
            call(run, ["systemctl", "daemon-reload"])
            done.append("ran systemctl daemon-reload")
    if line := remove(root, lay.config):
        done.append(line)
    config_dir = under(root, lay.config.parent)
    if lay.config.parent != lay.state_dir and config_dir.is_dir() and not any(config_dir.iterdir()):
        config_dir.rmdir()
        done.append(f"removed {lay.config.parent}")
    if not keep_state:
        done += filter(None, (remove(root, path) for path in (lay.state_dir, *lay.extra_dirs)))
    for line in done or [NOTHING_REMOVED]:
        say(line)
    if keep_state and under(root, lay.state_dir).exists():
        say(f"kept {lay.state_dir} (identity and unsent reports); --purge removes it")
    return done
