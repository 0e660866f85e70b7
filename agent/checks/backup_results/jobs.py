"""Backup jobs as declared in the agent config (`[[backup.jobs]]`), validated with one clear error per job."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from shared.backup_results import check_schedule

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Print a secret from an environment variable or a file: it never appears in an argument list or a report.
PRINT_ENV = "import os,sys;sys.stdout.write(os.environ[sys.argv[1]])"
PRINT_FILE = "import sys;sys.stdout.write(open(sys.argv[1],encoding='utf-8').read())"


class JobBase(BaseModel):
    """What every job has: a unique name, its expected schedule and optional grace."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100, description="Job name, unique on this device")
    schedule: str = Field("daily", description="daily, weekly or a five-field cron expression (device time)")
    grace_hours: float | None = Field(None, ge=0, description="Allowed lateness (collector default if unset)")

    @field_validator("schedule")
    @classmethod
    def _known_schedule(cls, value: str) -> str:
        """A schedule the collector understands."""
        return check_schedule(value)


def _env_name(value: str) -> str:
    """An environment variable name."""
    if not ENV_NAME.match(value):
        raise ValueError("must be an environment variable name (letters, digits, underscore)")
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


def print_env_command(name: str) -> list[str]:
    """A command printing environment variable `name`, for tools that take a password command."""
    return [sys.executable, "-c", PRINT_ENV, name]


def print_file_command(path: Path) -> list[str]:
    """A command printing the file at `path`, for tools that take a password command."""
    return [sys.executable, "-c", PRINT_FILE, str(path)]


class RepositoryJob(JobBase):
    """A job backing up into a repository whose integrity the agent checks now and then."""

    check_days: int = Field(
        7, ge=0, description="Check the repository's integrity (restic check / borg check --repository-only) "
        "every this many days; 0: never"
    )


class ResticJob(RepositoryJob):
    """A restic repository; the newest snapshot matching host/paths/tags is this job's last backup."""

    tool: Literal["restic"]
    repository: str = Field(min_length=1, description="Repository location, as for restic -r")
    password_file: Path | None = Field(None, description="File holding the repository password")
    password_env: EnvName | None = Field(None, description="Environment variable holding the password")
    host: str | None = Field(
        None, description="Only snapshots of this host (default: this device's host name, as restic records it; "
        "\"*\": any host, for a repository only this device writes to under several names)"
    )
    paths: list[str] = Field(default_factory=list, description="Only snapshots of these paths")
    tags: list[str] = Field(default_factory=list, description="Only snapshots with these tags")
    log_file: Path | None = Field(None, description="Output of the last `restic backup --json` run")
    binary: str = Field("restic", description="restic program name or path")

    @model_validator(mode="after")
    def _one_password(self) -> ResticJob:
        """Exactly one password source."""
        if (self.password_file is None) == (self.password_env is None):
            raise ValueError("set exactly one of password_file and password_env")
        return self


class BorgJob(RepositoryJob):
    """A borg repository; its newest archive is this job's last backup."""

    tool: Literal["borg"]
    repository: str = Field(min_length=1, description="Repository location, as for borg")
    passphrase_file: Path | None = Field(
        None, description="File holding the passphrase (encrypted repositories)"
    )
    passphrase_env: EnvName | None = Field(None, description="Environment variable holding the passphrase")
    prefix: str | None = Field(None, description="Only archives whose name starts with this")
    binary: str = Field("borg", description="borg program name or path")

    @model_validator(mode="after")
    def _at_most_one_passphrase(self) -> BorgJob:
        """At most one passphrase source."""
        if self.passphrase_file is not None and self.passphrase_env is not None:
            raise ValueError("set at most one of passphrase_file and passphrase_env")
        return self


class WsbJob(JobBase):
    """Windows Server Backup, read from the Microsoft-Windows-Backup event log."""

    tool: Literal["wsb"]


class VeeamJob(JobBase):
    """Veeam Agent for Windows, read from the `Veeam Agent` event log."""

    tool: Literal["veeam"]
    job_name: str | None = Field(None, description="Only events naming this Veeam job")


class MacriumJob(JobBase):
    """Macrium Reflect: its log files (with the texts to look for) or event ids configured in Reflect."""

    tool: Literal["macrium"]
    log_dir: Path | None = Field(None, description="Folder of Reflect's log files")
    log_glob: str = Field("*.html", description="Log file name pattern")
    success_text: str | None = Field(None, description="Text in a log file of a successful run")
    warning_text: str | None = Field(None, description="Text in a log file of a run with warnings")
    failure_text: str | None = Field(None, description="Text in a log file of a failed run")
    event_log: str = Field("Application", description="Event log Reflect writes to")
    event_source: str | None = Field(None, description="Event provider name, when filtering by it")
    success_event_ids: list[int] = Field(default_factory=list, description="Event ids of successful runs")
    warning_event_ids: list[int] = Field(default_factory=list, description="Event ids of runs with warnings")
    failure_event_ids: list[int] = Field(default_factory=list, description="Event ids of failed runs")

    @model_validator(mode="after")
    def _one_source(self) -> MacriumJob:
        """Either log files with the success text, or success and failure event ids."""
        by_log = self.log_dir is not None
        by_events = bool(self.success_event_ids or self.failure_event_ids)
        if by_log == by_events:
            raise ValueError(
                "set either log_dir (with success_text) or success_event_ids and failure_event_ids"
            )
        if by_log and not self.success_text:
            raise ValueError("log_dir needs success_text: the text a log of a good run contains")
        if by_events and not (self.success_event_ids and self.failure_event_ids):
            raise ValueError("set both success_event_ids and failure_event_ids")
        return self


class TimeMachineJob(JobBase):
    """macOS Time Machine, through tmutil."""

    tool: Literal["timemachine"]


class ImageFilesJob(JobBase):
    """Image files on a share: the newest file matching `glob` under `path` is the last backup."""

    tool: Literal["imagefiles"]
    path: Path = Field(description="Folder the images are written to")
    glob: str = Field("*", description="File name pattern, may use ** to look in subfolders")


class ScriptJob(JobBase):
    """A backup script on this PC that reports each run with `fieldpost-agent backup-report --job NAME`."""

    tool: Literal["script"]


Job = Annotated[
    ResticJob | BorgJob | WsbJob | VeeamJob | MacriumJob | TimeMachineJob | ImageFilesJob | ScriptJob,
    Field(discriminator="tool"),
]
JOB_ADAPTER: TypeAdapter[Job] = TypeAdapter(Job)


def _problem(exc: ValidationError) -> str:
    """`key: message` of the first error (just the message for a rule across keys), without union branches."""
    error = exc.errors()[0]
    message = error["msg"].removeprefix("Value error, ")
    # The first location item is the tool's branch of the union; an unknown tool has none.
    keys = [str(part) for part in error["loc"][1:]] or (["tool"] if not error["loc"] else [])
    return f"{'.'.join(keys)}: {message}" if keys else message


def parse_jobs(raw: Sequence[Mapping[str, Any]]) -> list[Job]:
    """Validate the configured jobs; ValueError names the job and the key of the first problem."""
    jobs: list[Job] = []
    for number, entry in enumerate(raw, 1):
        name = entry.get("name") if isinstance(entry, Mapping) else None
        label = f"backup job {name!r}" if name else f"backup job #{number}"
        try:
            job = JOB_ADAPTER.validate_python(entry)
        except ValidationError as exc:
            raise ValueError(f"{label}: {_problem(exc)}") from exc
        if any(known.name == job.name for known in jobs):
            raise ValueError(f"{label}: name: used by another job")
        jobs.append(job)
    return jobs


class BackupSettings(BaseModel):
    """The check's settings: the list of jobs."""

    model_config = ConfigDict(extra="forbid")

    jobs: list[Job] = Field(default_factory=list, description="Backup jobs to report on")

    @field_validator("jobs", mode="before")
    @classmethod
    def _jobs(cls, value: Any) -> Any:
        """Validate job by job so the error names the job."""
        return parse_jobs(value) if isinstance(value, list) else value
