"""Collector settings: defaults, overridden by a TOML file, then by FIELDPOST_COLLECTOR_* environment variables."""

from __future__ import annotations

import os
import ssl
import tomllib
from datetime import time, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from collector.alerts.dedupe import Lifecycle
from collector.rules.encryption import RULE as ENCRYPTION
from collector.rules.encryption import check_policy
from collector.rules.expectations import BusinessHours, format_days, known_zone, parse_days
from collector.store import ClientHours


class SettingsError(Exception):
    """A settings file or variable is invalid; the message names the key and the problem."""


class AlertSettings(BaseModel):
    """`[collector.alerts]`: how alerts resolve, come back and are recognised as flapping."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resolve_after_good: int = Field(2, ge=1, description="Consecutive good evaluations before an alert resolves")
    resolve_after_minutes: float = Field(10, ge=0, description="...or this long good since the first one")
    reopen_within_minutes: float = Field(60, ge=0, description="A resolved alert that comes back this soon reopens")
    flapping_threshold: int = Field(6, ge=2, description="Opens and resolves per window that make an alert flapping")
    flapping_window_minutes: float = Field(60, gt=0, description="The window for flapping")

    def lifecycle(self) -> Lifecycle:
        """The settings as the alert step uses them."""
        return Lifecycle(
            resolve_after_good=self.resolve_after_good,
            resolve_after=timedelta(minutes=self.resolve_after_minutes),
            reopen_within=timedelta(minutes=self.reopen_within_minutes),
            flapping_threshold=self.flapping_threshold,
            flapping_window=timedelta(minutes=self.flapping_window_minutes),
        )


class BusinessHoursSettings(BaseModel):
    """`[collector.business_hours]`: when workstations are expected on, for clients without hours of their own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: str = Field("mon-fri", description="Working days, e.g. mon-fri or mon-thu,sat")
    start: time = Field(time(8, 0), description="Local time business hours begin (HH:MM)")
    end: time = Field(time(18, 0), description="Local time business hours end (HH:MM)")
    timezone: str = Field("UTC", description="The collector's default time zone (IANA name, e.g. Europe/Berlin)")
    workstation_off_days: int = Field(
        3, ge=1, description="Days a workstation or laptop may stay off before it is a warning (holidays, leave)"
    )

    _days = field_validator("days")(lambda value: format_days(parse_days(value)))
    _zone = field_validator("timezone")(known_zone)

    @model_validator(mode="after")
    def _start_before_end(self) -> BusinessHoursSettings:
        if self.start >= self.end:
            raise ValueError("business hours must start before they end")
        return self

    def for_client(self, own: ClientHours) -> BusinessHours:
        """A client's business hours: its own where it has them, these defaults elsewhere."""
        return BusinessHours(parse_days(own.days or self.days), own.start or self.start, own.end or self.end,
                             own.timezone or self.timezone)


class Settings(BaseModel):
    """Everything the collector can be configured with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = Field("127.0.0.1:8470", description="Address and port to serve on (HOST:PORT)")
    public_url: str | None = Field(
        None, pattern=r"^https?://[^/\s]+", description="The collector's address as agents, backup scripts and "
        "browsers reach it, e.g. https://fp.example.net: used in install commands, push URLs and links in "
        "messages (https: HSTS on)"
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate (chain) to serve https with, without a reverse proxy (with tls_key)"
    )
    tls_key: Path | None = Field(None, description="PEM private key of tls_cert")
    db: str = Field("collector.db", description="SQLite database file (created on first start)")
    admin_token: str | None = Field(
        None, description="Technician API token; when unset, one is generated and written next to the database"
    )
    escrow_key_file: Path | None = Field(
        None, description="Owner-only file holding the collector's recovery-key escrow key (created when escrow is "
        "first turned on); default: escrow-key next to the SQLite database. With PostgreSQL, set it to the same "
        "file on every collector. Back it up apart from the database: escrowed keys open only with it"
    )
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="Largest accepted request body (bytes)")
    agent_uploads_per_minute: float = Field(
        120, ge=0, description="Uploads one device may make a minute once its burst is spent (0: no limit); "
        "more get 429 with Retry-After, so one PC cannot slow other clients' ingest"
    )
    agent_upload_burst: int = Field(60, ge=1, description="Uploads one device may make back to back (outbox catch-up)")
    ingest_gather_ms: float = Field(
        5, ge=0, le=1000, description="Under load (500 reports a second or more), how long the collector gathers "
        "reports before committing them in one transaction: fewer, larger commits cost less CPU a report; a "
        "report on a quiet collector is committed at once (0: never wait)"
    )
    clock_skew_seconds: int = Field(300, gt=0, description="Largest accepted difference of agent and collector clocks")
    heartbeat_interval_seconds: int = Field(60, gt=0, description="How often agents send a heartbeat")
    offline_after_missed: int = Field(3, gt=0, description="Missed heartbeats before a device is offline")
    offline_check_seconds: int = Field(15, gt=0, description="How often the collector looks for silent devices")
    silent_check_seconds: int = Field(
        300, gt=0, description="How often the collector looks for checks with no usable result for 3 runs"
    )
    notify_interval_seconds: float = Field(
        10, ge=0, description="How often queued notifications are delivered (0: never, for tests that drive it)"
    )
    report_mail_check_seconds: float = Field(
        300, ge=0, description="How often the collector looks for value reports due by e-mail (0: never, for tests)"
    )
    login_concurrent_checks: int = Field(
        2, ge=1, description="Password checks run at once (argon2 takes 64 MiB each); more logins get 503 at once"
    )
    owner_two_factor_optional: bool = Field(
        False, description="Let the owner use the dashboard without two-factor login (by default the owner must set "
        "it up at the first login)"
    )
    access_log: bool = Field(False, description="Log every HTTP request (noisy: agents report every minute)")
    startup_grace_seconds: int = Field(
        120, ge=0, description="After the collector starts (or its database recovers), wait this long before "
        "declaring anyone offline; at least agent_reconnect_seconds (0: no grace)"
    )
    agent_reconnect_seconds: int = Field(
        30, ge=1, le=300, description="Longest wait between an agent's tries while the collector is unreachable "
        "(told to agents with every answer): how soon after an outage every agent is back"
    )

    alerts: AlertSettings = Field(default_factory=AlertSettings, description="Alert lifecycle ([collector.alerts])")
    business_hours: BusinessHoursSettings = Field(
        default_factory=BusinessHoursSettings, description="Default business hours ([collector.business_hours])"
    )
    rules: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Rule thresholds by signal kind, e.g. [rules.disk_health]"
    )
    client_rules: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict,
        description='Per-client overrides, e.g. [client_rules."Acme Tooling".disk_health]',
    )

    @model_validator(mode="after")
    def _grace_covers_reconnection(self) -> Settings:
        """A grace shorter than the agents' reconnection would declare devices offline for the collector's outage."""
        if 0 < self.startup_grace_seconds < self.agent_reconnect_seconds:
            raise ValueError(f"startup_grace_seconds ({self.startup_grace_seconds}) must be at least "
                             f"agent_reconnect_seconds ({self.agent_reconnect_seconds}), or 0")
        return self

    @model_validator(mode="after")
    def _encryption_policy_known(self) -> Settings:
        """An encryption policy with a misspelt class or verdict would silently fall back to the default."""
        check_policy(self.rules.get(ENCRYPTION, {}), f"rules.{ENCRYPTION}")
        for client, kinds in self.client_rules.items():
            check_policy(kinds.get(ENCRYPTION, {}), f"client_rules.{client!r}.{ENCRYPTION}")
        return self

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        """A certificate without its key (or the reverse) is a mistake, not plain http."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: give both (https) or neither (http behind a reverse proxy)")
        return self

    def server_tls(self) -> ssl.SSLContext | None:
        """The TLS context to serve https with, or None for plain http; `SettingsError` if it cannot load."""
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise SettingsError(f"collector.tls_cert/tls_key ({self.tls_cert}, {self.tls_key}): cannot load the "
                                f"certificate and its key: {exc}") from exc
        return context

    def rule_settings(self, client: str) -> dict[str, dict[str, Any]]:
        """Thresholds by signal kind for one client: the client's overrides on top of the defaults."""
        merged = {kind: dict(values) for kind, values in self.rules.items()}
        for kind, values in self.client_rules.get(client, {}).items():
            merged.setdefault(kind, {}).update(values)
        return merged

    @property
    def host_port(self) -> tuple[str, int]:
        """`listen` split into host and port."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]") or "0.0.0.0", int(port)


ENV_PREFIX = "FIELDPOST_COLLECTOR_"


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Settings from the file (if given), the environment, then explicit overrides (command-line options)."""
    values: dict[str, Any] = {}
    if path is not None:
        try:
            values.update(tomllib.loads(path.read_text()).get("collector", {}))
        except OSError as exc:
            raise SettingsError(f"{path}: cannot read: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    for name in Settings.model_fields:
        env = os.environ.get(ENV_PREFIX + name.upper())
        if env is not None:
            values[name] = env
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        where = f"{path}: " if path else ""
        raise SettingsError(f"{where}collector.{key}: {first['msg']}") from exc
