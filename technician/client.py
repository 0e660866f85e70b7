"""The collector's API as the technician's token sees it: where it is, the token, one request, one error type."""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import aiohttp

from shared.clock import Clock

CONFIG_PATH = Path("~/.config/fieldpost/technician.toml").expanduser()
DEFAULT_URL = "http://127.0.0.1:8470"


class CliError(Exception):
    """Something the technician must fix; printed as one line."""


@dataclass(frozen=True)
class Connection:
    """Where the collector is and how to authenticate to it."""

    url: str
    token: str


def connection(url: str | None, token: str | None) -> Connection:
    """Collector URL and token from options, else FIELDPOST_URL/FIELDPOST_TOKEN, else the config file."""
    file: dict[str, Any] = {}
    if CONFIG_PATH.exists():
        try:
            file = tomllib.loads(CONFIG_PATH.read_text()).get("technician", {})
        except tomllib.TOMLDecodeError as exc:
            raise CliError(f"{CONFIG_PATH}: not valid TOML: {exc}") from exc
    url = url or os.environ.get("FIELDPOST_URL") or file.get("url") or DEFAULT_URL
    token = token or os.environ.get("FIELDPOST_TOKEN") or file.get("token")
    if not token:
        raise CliError(
            "no technician token: pass --token, set FIELDPOST_TOKEN, or put token = \"...\" under [technician] "
            f"in {CONFIG_PATH} (the collector writes one to the file admin-token next to its database)"
        )
    if not url.startswith(("http://", "https://")):
        raise CliError(f"collector URL {url!r} must start with http:// or https://")
    return Connection(url.rstrip("/"), token)


def refusal(status: int, body: bytes) -> CliError:
    """The collector's answer to a request it did not carry out, as one line."""
    if status == 401:
        return CliError("collector refused the technician token (401): check --token, FIELDPOST_TOKEN or "
                        f"{CONFIG_PATH}; `fieldpost-collector admin-token` issues a new one")
    try:
        answer = json.loads(body)
    except ValueError:
        # A proxy's or another server's page: its text on one line, cut short.
        text = " ".join(body.decode(errors="replace").split())
        return CliError(f"collector answered {status}: {text[:200]}")
    if not isinstance(answer, dict):
        return CliError(f"collector answered {status}: {answer}")
    problems = "; ".join(f"{p['field']}: {p['message']}" for p in answer.get("problems", []))
    reason = answer.get("error", answer)
    return CliError(f"collector answered {status}: {reason}" + (f" ({problems})" if problems else ""))


@dataclass
class Collector:
    """The collector's API; the URL and token are looked up at the first request, so offline commands need none."""

    url: str | None
    token: str | None

    @cached_property
    def connection(self) -> Connection:
        """The resolved URL and token."""
        return connection(self.url, self.token)

    def session(self, timeout: aiohttp.ClientTimeout | None = None) -> aiohttp.ClientSession:
        """An HTTP session that sends the technician token."""
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {self.connection.token}"},
                                     timeout=timeout or aiohttp.ClientTimeout())

    async def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        """The body of a 200/201 answer to `method path`, or CliError with the collector's reason."""
        conn = self.connection
        try:
            async with (
                self.session() as session,
                session.request(method, conn.url + path, json=body) as response,
            ):
                answer = await response.read()
                if response.status not in (200, 201):
                    raise refusal(response.status, answer)
                return answer
        except aiohttp.ClientError as exc:
            raise CliError(f"cannot reach the collector at {conn.url}: {exc or type(exc).__name__}") from exc

    async def get(self, path: str) -> Any:
        """GET an API path and return its JSON."""
        return json.loads(await self.request("GET", path))

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        """POST a JSON body to an API path and return the JSON answer."""
        return json.loads(await self.request("POST", path, body))

    async def delete(self, path: str) -> Any:
        """DELETE an API path and return the JSON answer."""
        return json.loads(await self.request("DELETE", path))

    async def fetch(self, path: str) -> bytes:
        """GET a non-JSON API path (a CSV, a page, a PDF) as bytes."""
        return await self.request("GET", path)


@dataclass(frozen=True)
class Context:
    """What every command runs with: the collector's API and the clock."""

    collector: Collector
    clock: Clock
