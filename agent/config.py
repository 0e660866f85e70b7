"""Agent configuration: a TOML file validated into typed sections, with documented defaults."""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from agent.checks.registry import all_checks
from agent.maintenance import Policy

CONFIG_ENV = "FIELDPOST_AGENT_CONFIG"
MIB = 1024 * 1024


class ConfigError(Exception):
    """The configuration cannot be used; the message is one line naming the file, the key and the problem."""


def _collector_url(value: str) -> str:
    """An http(s) URL with a host, without a trailing slash."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an http:// or https:// URL with a host, e.g. https://collector.example.net")
    return value.rstrip("/")


CollectorUrl = Annotated[str, AfterValidator(_collector_url)]


def platform_data_dir(system: str = sys.platform, env: Mapping[str, str] = os.environ) -> Path:
    """Where this platform keeps a system service's configuration and state."""
    if system == "win32":
        return Path(env.get("ProgramData", r"C:\ProgramData")) / "fieldpost"
    if system == "darwin":
        return Path("/Library/Application Support/fieldpost")
    return Path("/var/lib/fieldpost")


def default_config_path(system: str = sys.platform, env: Mapping[str, str] = os.environ) -> Path:
    """The platform's usual place for agent.toml."""
    if system in ("win32", "darwin"):
        return platform_data_dir(system, env) / "agent.toml"
    return Path("/etc/fieldpost/agent.toml")


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, so a typo is never silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentSection(Section):
    """`[agent]`: where to report and where to keep state."""

    collector_url: CollectorUrl | None = Field(
        None, description="Collector base URL; when unset, the URL given at enrolment is used")
    state_dir: Path = Field(default_factory=platform_data_dir,
                            description="Identity, private key and outbox (platform default)")
    insecure_http: bool = Field(False, description="Allow a plain http:// collector URL to another machine "
                                "(the token and reports then cross the network unprotected)")
    ca_file: Path | None = Field(None, description="PEM file of the CA that signed the collector's certificate; "
                                 "when set, only certificates it signed are trusted (pinning)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Logging to stderr")
    root: Path = Field(Path("/"), description="Read the system's files under this directory "
                                             "(e.g. /host when the agent runs in a container)")


class ScheduleSection(Section):
    """`[schedule]`: how check runs are spread in time, so that many agents do not report in lockstep."""

    splay_seconds: float = Field(30.0, ge=0, description="Random delay before the first run of each check")
    jitter_seconds: float = Field(10.0, ge=0, description="Random shift of every later run")


class CheckSection(BaseModel):
    """`[checks.<kind>]`: whether and how often a check runs; other keys are that check's own settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    enabled: bool = Field(True, description="Run this check")
    interval_seconds: float | None = Field(None, gt=0, description="Seconds between runs (check's default)")

    @property
    def settings(self) -> dict[str, Any]:
        """The check-specific keys, validated by `load_config` against the check's `settings_model`."""
        return dict(self.model_extra or {})


class OutboxSection(Section):
    """`[outbox]`: how much unsent data the agent keeps while the collector is unreachable."""

    max_bytes: int = Field(50 * MIB, gt=0,
                           description="Largest outbox size (bytes) before routine envelopes are dropped")
    max_age_days: float = Field(14.0, gt=0, description="Routine envelopes older than this are dropped")


class UploadSection(Section):
    """`[upload]`: how often queued envelopes are sent."""

    interval_seconds: float = Field(10.0, gt=0, description="Seconds between upload rounds")
    timeout_seconds: float = Field(30.0, gt=0, description="Time limit of one upload request")
    backoff_cap_seconds: float = Field(
        300.0, gt=0, description="Longest wait between tries while uploads fail (the collector's reconnection "
        "hint shortens it while the collector is unreachable)")


class MaintenanceSection(Section):
    """`[maintenance]`: the nightly window in which updates are checked and a pending reboot may happen."""

    window_start: time = Field(time(2, 0), description="Start of the nightly window, local time")
    window_end: time = Field(time(4, 0), description="End of the nightly window, local time")
    reboot_policy: Policy = Field("never", description="never | when-required-and-idle | when-required")
    warn_minutes: int = Field(15, ge=0, description="when-required: minutes between the warning and the reboot")
    idle_minutes: int = Field(60, gt=0, description="A session without input this long counts as left open "
                              "(a locked or disconnected one too, sooner when its idle time is unknown)")
    max_deferrals: int = Field(3, ge=0, description="when-required-and-idle: nights the reboot may be put off "
                               "because someone uses the PC; then users are warned and it restarts")
    deadline_days: int = Field(7, gt=0, description="when-required-and-idle: days a reboot may stay pending "
                               "before users are warned and the PC restarts even while in use")


class AgentConfig(Section):
    """The whole agent configuration; every section has defaults, so an empty file is valid."""

    agent: AgentSection = Field(default_factory=AgentSection)
    schedule: ScheduleSection = Field(default_factory=ScheduleSection)
    checks: dict[str, CheckSection] = Field(default_factory=dict)
    outbox: OutboxSection = Field(default_factory=OutboxSection)
    upload: UploadSection = Field(default_factory=UploadSection)
    maintenance: MaintenanceSection = Field(default_factory=MaintenanceSection)

    def check(self, kind: str) -> CheckSection:
        """The section of one check, or its defaults when the file has none."""
        return self.checks.get(kind) or CheckSection()


class _NoSettings(Section):
    """The settings of a check that takes none: any extra key is a typo."""


def _first_problem(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> str:
    """`key.path: message` for the first error, noting how many more there are."""
    errors = exc.errors()
    key = ".".join(str(p) for p in (*prefix, *errors[0]["loc"]))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{key}: {errors[0]['msg']}{more}"


def _validate_check_settings(config: AgentConfig) -> AgentConfig:
    """Reject unknown check kinds and validate each check's own keys against its `settings_model`."""
    known = all_checks()
    sections = {}
    for kind, section in config.checks.items():
        if kind not in known:
            raise ValueError(f"checks.{kind}: unknown check (known: {', '.join(sorted(known))})")
        # A check that takes settings declares a pydantic model for them; the rest take none.
        model: type[BaseModel] = getattr(known[kind], "settings_model", _NoSettings)
        try:
            settings = model.model_validate(section.settings).model_dump()
        except ValidationError as exc:
            raise ValueError(_first_problem(exc, ("checks", kind))) from exc
        sections[kind] = CheckSection(enabled=section.enabled, interval_seconds=section.interval_seconds,
                                      **settings)
    return config.model_copy(update={"checks": sections})


def parse_config(text: str, source: str) -> AgentConfig:
    """Validate TOML text; `source` names the file in the error message."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    backup = raw.pop("backup", None)
    if backup is not None:
        # `[[backup.jobs]]` is how users declare backup jobs; they are the backup_results check's settings.
        section = raw.setdefault("checks", {}).setdefault("backup_results", {})
        if not isinstance(backup, dict) or set(backup) - {"jobs"}:
            raise ConfigError(f"{source}: backup: only [[backup.jobs]] tables belong here")
        if "jobs" in section:
            raise ConfigError(f"{source}: backup.jobs and checks.backup_results.jobs: declare jobs in one place")
        section["jobs"] = backup.get("jobs", [])
    try:
        return _validate_check_settings(AgentConfig.model_validate(raw))
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_problem(exc)}") from exc
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def load_config(path: Path | None = None, env: Mapping[str, str] = os.environ) -> AgentConfig:
    """The configuration from `path`, else $FIELDPOST_AGENT_CONFIG, else the platform default file.

    A file that was asked for (argument or environment) must exist; a missing default file means defaults.
    """
    explicit = path if path is not None else (Path(env[CONFIG_ENV]) if env.get(CONFIG_ENV) else None)
    target = explicit or default_config_path(env=env)
    try:
        text = target.read_bytes().decode("utf-8")
    except FileNotFoundError as exc:
        if explicit is None:
            return AgentConfig()
        raise ConfigError(f"{target}: no such file") from exc
    except OSError as exc:
        raise ConfigError(f"{target}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{target}: not UTF-8 text (byte {exc.start})") from exc
    return parse_config(text, str(target))
