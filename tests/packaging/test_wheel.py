"""The wheel built from this repository installs the slim agent, and the technician CLI, into a fresh environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import shared

pytestmark = pytest.mark.slow  # builds a wheel and installs it into a new environment

REPO = Path(__file__).resolve().parents[2]
# What a wheel is built from; copied so that building leaves no build/ or egg-info in the working tree.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "agent", "collector", "shared", "technician", "packaging")

COLLECTOR_ONLY = {"netaddr", "asyncpg", "jinja2", "apprise", "psycopg", "pytest", "ruff"}


def run(*argv: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd, timeout=300, check=False)
    assert done.returncode == 0, f"{argv}: {done.stderr[-2000:]}"
    return done.stdout


def test_the_wheel_installs_the_agent_with_only_its_slim_dependencies(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", tmp_path / "dist", source)
    (wheel,) = (tmp_path / "dist").glob("fieldpost-*.whl")

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin/python", "-m", "pip", "install", "--quiet", wheel)

    assert run(venv / "bin/fieldpost-agent", "--version").strip() == f"fieldpost-agent {shared.__version__}"
    assert "--collector URL" in run(venv / "bin/fieldpost-agent", "install", "--help")
    # The technician's CLI is an HTTP client: the base dependencies are all it needs.
    assert run(venv / "bin/fieldpost", "--version").strip() == f"fieldpost {shared.__version__}"
    assert "fieldpost alerts --follow" in run(venv / "bin/fieldpost", "alerts", "--help")
    find = "from agent.install import templates_dir; print(templates_dir())"
    templates = run(venv / "bin/python", "-c", find, cwd=tmp_path)
    assert Path(templates.strip()) == venv / "share/fieldpost/packaging", "install finds its service templates"
    installed = {p["name"].lower() for p in json.loads(run(venv / "bin/python", "-m", "pip", "list", "--format=json"))}
    assert {"fieldpost", "psutil", "aiohttp", "apscheduler", "pydantic", "cryptography", "pynacl"} <= installed
    assert installed & COLLECTOR_ONLY == set()
