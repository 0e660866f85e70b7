"""Agent configuration: documented defaults, platform paths, and one clear line for every bad file."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import BaseModel, ConfigDict, Field

import agent.config
from agent.checks import Check
from agent.checks.heartbeat import HeartbeatCheck
from agent.checks.registry import all_checks
from agent.config import (
    CONFIG_ENV,
    AgentConfig,
    ConfigError,
    default_config_path,
    load_config,
    parse_config,
    platform_data_dir,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={})
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'agent.toml'}: ")
    return message.split(": ", 1)[1]


def test_it_has_documented_defaults_for_an_empty_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""), env={})
    assert config.agent.collector_url is None
    assert config.agent.log_level == "INFO"
    assert config.schedule.splay_seconds == 30
    assert config.schedule.jitter_seconds == 10
    assert config.outbox.max_bytes == 50 * 1024 * 1024
    assert config.outbox.max_age_days == 14
    assert config.upload.interval_seconds == 10
    assert config.check("heartbeat").enabled
    assert config.check("heartbeat").interval_seconds is None


def test_it_reads_every_section(tmp_path: Path) -> None:
    config = load_config(
        write(
            tmp_path,
            """
[agent]
collector_url = "https://fp.example.net/"
state_dir = "/srv/fieldpost"
log_level = "DEBUG"

[schedule]
splay_seconds = 0
jitter_seconds = 2.5

[checks.heartbeat]
interval_seconds = 30
enabled = false

[outbox]
max_bytes = 1048576
max_age_days = 3

[upload]
interval_seconds = 5
""",
        ),
        env={},
    )
    assert config.agent.collector_url == "https://fp.example.net"
    assert config.agent.state_dir == Path("/srv/fieldpost")
    assert config.schedule.jitter_seconds == 2.5
    assert config.check("heartbeat").interval_seconds == 30
    assert not config.check("heartbeat").enabled
    assert config.outbox.max_bytes == 1048576
    assert config.upload.interval_seconds == 5


def test_it_names_the_line_of_a_toml_syntax_error(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[agent]\nlog_level = \n")
    assert message.startswith("not valid TOML:")
    assert "line 2" in message


def test_it_names_the_key_of_a_value_out_of_range(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[checks.heartbeat]\ninterval_seconds = 0\n") == (
        "checks.heartbeat.interval_seconds: Input should be greater than 0"
    )


def test_it_names_the_key_of_a_wrong_type(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[outbox]\nmax_bytes = "lots"\n').startswith(
        "outbox.max_bytes: Input should be a valid integer"
    )


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[agnet]\n", "agnet"),
        ("[schedule]\nsplay = 5\n", "schedule.splay"),
        ("[checks.heartbeat]\nintervall_seconds = 5\n", "checks.heartbeat.intervall_seconds"),
    ],
)
def test_it_rejects_unknown_keys_so_typos_are_not_ignored(tmp_path: Path, text: str, key: str) -> None:
    assert error_of(tmp_path, text) == f"{key}: Extra inputs are not permitted"


def test_it_rejects_an_unknown_check(tmp_path: Path) -> None:
    assert error_of(tmp_path, "[checks.hearbeat]\nenabled = true\n") == (
        f"checks.hearbeat: unknown check (known: {', '.join(sorted(all_checks()))})"
    )


def test_it_rejects_a_collector_url_that_is_not_http(tmp_path: Path) -> None:
    assert error_of(tmp_path, '[agent]\ncollector_url = "fp.example.net"\n').startswith(
        "agent.collector_url: Value error, must be an http:// or https:// URL"
    )


def test_it_counts_further_problems_in_the_same_line(tmp_path: Path) -> None:
    message = error_of(tmp_path, "[upload]\ninterval_seconds = -1\n[outbox]\nmax_age_days = 0\n")
    assert message.endswith("greater than 0 (and 1 more)")


class PrinterSettings(BaseModel):
    """Settings of a test check."""

    model_config = ConfigDict(extra="forbid")
    probe: bool = Field(True)
    subnets: list[str] = Field(default_factory=list)


class PrinterCheck(Check):
    """A check that declares settings."""

    kind = "printers"
    settings_model: ClassVar[type[BaseModel]] = PrinterSettings


@pytest.fixture
def with_printer_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        agent.config, "all_checks", lambda: {"heartbeat": HeartbeatCheck, "printers": PrinterCheck}
    )


@pytest.mark.usefixtures("with_printer_check")
def test_it_passes_check_settings_through_with_their_defaults() -> None:
    config = parse_config('[checks.printers]\nsubnets = ["10.0.0.0/24"]\n', "agent.toml")
    assert config.check("printers").settings == {"probe": True, "subnets": ["10.0.0.0/24"]}


@pytest.mark.usefixtures("with_printer_check")
def test_it_validates_check_settings_against_the_checks_model() -> None:
    with pytest.raises(
        ConfigError, match=r"^agent.toml: checks.printers.prob: Extra inputs are not permitted$"
    ):
        parse_config("[checks.printers]\nprob = false\n", "agent.toml")


def test_a_missing_file_that_was_asked_for_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml", env={})


def test_the_environment_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[upload]\ninterval_seconds = 3\n")
    assert load_config(env={CONFIG_ENV: str(path)}).upload.interval_seconds == 3
    with pytest.raises(ConfigError, match="no such file"):
        load_config(env={CONFIG_ENV: str(tmp_path / "nope.toml")})


@pytest.mark.skipif(default_config_path().exists(), reason="this machine has a real agent.toml")
def test_a_missing_default_file_means_defaults() -> None:
    assert load_config(env={}) == AgentConfig()


def test_it_knows_each_platforms_usual_places() -> None:
    windows = {"ProgramData": r"D:\ProgramData"}
    assert default_config_path("linux", {}) == Path("/etc/fieldpost/agent.toml")
    assert platform_data_dir("linux", {}) == Path("/var/lib/fieldpost")
    assert default_config_path("darwin", {}) == Path("/Library/Application Support/fieldpost/agent.toml")
    assert platform_data_dir("darwin", {}) == Path("/Library/Application Support/fieldpost")
    assert platform_data_dir("win32", windows) == Path(r"D:\ProgramData") / "fieldpost"
    assert default_config_path("win32", windows) == Path(r"D:\ProgramData") / "fieldpost" / "agent.toml"
