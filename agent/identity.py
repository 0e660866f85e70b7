"""The agent's identity: its Ed25519 key pair and the agent id the collector issued at enrolment."""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.transport import InsecureTransport, check_collector_url, collector_session, ssl_context
from shared.clock import Clock, system_clock
from shared.private import private_dir
from shared.signing import enrol_request

KEY_FILE = "agent.key"
IDENTITY_FILE = "identity.json"
# The collector's site-document key (see agent.site_config, which reads it under this name).
CONFIG_PIN_FILE = "collector-config.pub"
ENROL_PATH = "/api/v1/enrol"
ENROL_TIMEOUT = 30.0


class IdentityError(Exception):
    """The identity cannot be used; the message says why and what to do."""


class NotEnrolled(IdentityError):
    """This agent has no identity yet."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(f"not enrolled (no {state_dir / IDENTITY_FILE}): "
                         "run fieldpost-agent enroll --collector URL --token TOKEN")


class DamagedIdentity(IdentityError):
    """The identity or key file is unreadable or damaged."""

    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(
            f"{path} is damaged or unreadable ({problem}): restore the state directory from a backup, or enrol "
            "this PC again with `fieldpost-agent enroll --force --collector URL --token TOKEN` (it then "
            "reports as a new device)")


class EnrolmentError(Exception):
    """Enrolment failed; the message says why (the collector's reason when it gave one)."""


@dataclass(frozen=True)
class Identity:
    """Who this agent is to the collector, and the key that proves it."""

    agent_id: str
    collector_url: str
    client: str
    site: str
    enrolled_at: datetime
    key: Ed25519PrivateKey


def is_enrolled(state_dir: Path) -> bool:
    """True when the state directory holds an identity."""
    return (state_dir / IDENTITY_FILE).exists()


def load_identity(state_dir: Path) -> Identity:
    """The identity written at enrolment; `NotEnrolled` when there is none, `DamagedIdentity` when its
    identity or key file cannot be read or makes no sense."""
    path = state_dir / IDENTITY_FILE
    try:
        facts = json.loads(path.read_text())
        identity = {name: facts[name] for name in ("agent_id", "collector_url", "client", "site")}
        if not all(isinstance(value, str) and value for value in identity.values()):
            raise DamagedIdentity(path, "agent_id, collector_url, client and site must be non-empty text")
        enrolled_at = datetime.fromisoformat(facts["enrolled_at"])
    except FileNotFoundError as exc:
        raise NotEnrolled(state_dir) from exc
    except OSError as exc:
        raise DamagedIdentity(path, exc.strerror or type(exc).__name__) from exc
    except ValueError as exc:
        raise DamagedIdentity(path, f"not valid JSON or not a date: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise DamagedIdentity(path, f"missing or wrong entry {exc}") from exc
    return Identity(**identity, enrolled_at=enrolled_at, key=load_key(state_dir / KEY_FILE))


def load_key(path: Path) -> Ed25519PrivateKey:
    """The agent's private key, or `DamagedIdentity` saying what is wrong with its file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise DamagedIdentity(path, exc.strerror or type(exc).__name__) from exc
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise DamagedIdentity(path, f"not a readable PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise DamagedIdentity(path, "not an Ed25519 private key")
    return key


def write_private_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` atomically with `data`; the file is created with `mode`, never wider even briefly."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    # O_EXCL: a file planted at the temporary name (with wider rights) is never written into.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def collector_reason(body: str) -> str:
    """The collector's error message (and named problems), or the start of whatever else it answered."""
    try:
        answer = json.loads(body)
        message = answer["error"]
    except (ValueError, KeyError, TypeError):
        return body.strip()[:200] or "(empty answer)"
    problems = "; ".join(f"{p['field']}: {p['message']}" for p in answer.get("problems", []))
    return f"{message} ({problems})" if problems else message


def prepare_state_dir(state_dir: Path) -> None:
    """Create the state directory (owner-only) and make sure this account can write to it."""
    try:
        private_dir(state_dir)
    except OSError as exc:
        raise EnrolmentError(f"cannot create the state directory {state_dir}: {exc.strerror}") from exc
    if not os.access(state_dir, os.W_OK):
        raise EnrolmentError(f"cannot write to the state directory {state_dir}: run as the account the "
                             "service runs as (or an administrator), or set agent.state_dir")


def save_identity(state_dir: Path, identity: Identity) -> None:
    """Write the private key and then the identity file into the state directory, all owner-only."""
    private_dir(state_dir)
    pem = identity.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    write_private_file(state_dir / KEY_FILE, pem)
    # The identity file goes last: its presence is what "enrolled" means, so a crash leaves none.
    facts = {"agent_id": identity.agent_id, "collector_url": identity.collector_url,
             "client": identity.client, "site": identity.site,
             "enrolled_at": identity.enrolled_at.isoformat()}
    write_private_file(state_dir / IDENTITY_FILE, (json.dumps(facts, indent=2) + "\n").encode())


async def enrol(state_dir: Path, collector_url: str, token: str, *, force: bool = False,
                hostname: str | None = None, clock: Clock = system_clock, insecure_http: bool = False,
                ca_file: Path | None = None) -> Identity:
    """Create a key pair, register its public half with the collector, and keep the issued identity.

    Nothing is written unless the collector accepts; an existing identity is kept unless `force`.
    The state directory is checked first, so that the collector never registers an agent that
    could not keep its identity. Plain http:// to another machine is refused unless `insecure_http`;
    `ca_file` pins the CA the collector's certificate must be signed by.
    """
    if is_enrolled(state_dir) and not force:
        raise EnrolmentError(f"already enrolled ({state_dir / IDENTITY_FILE}); use --force to enrol again")
    try:
        check_collector_url(collector_url, insecure_http)
        session = collector_session(ssl_context(ca_file), ENROL_TIMEOUT)
    except InsecureTransport as exc:
        raise EnrolmentError(str(exc)) from exc
    url = collector_url.rstrip("/") + ENROL_PATH
    async with session:
        prepare_state_dir(state_dir)
        key = Ed25519PrivateKey.generate()
        request = enrol_request(key, token, hostname or socket.gethostname())
        try:
            async with session.post(url, json=request) as response:
                body = await response.text()
        except aiohttp.ClientSSLError as exc:
            raise EnrolmentError(f"the collector at {url} is not who it should be: its certificate is not "
                                 f"trusted ({exc}); if it uses a private CA, set agent.ca_file to that CA's "
                                 "certificate") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EnrolmentError(f"cannot reach the collector at {url}: {exc or type(exc).__name__}") from exc
    if response.status != 201:
        raise EnrolmentError(
            f"the collector refused enrolment (HTTP {response.status}): {collector_reason(body)}")
    issued = json.loads(body)
    identity = Identity(
        agent_id=issued["agent_id"], collector_url=collector_url.rstrip("/"), client=issued["client"],
        site=issued["site"], enrolled_at=clock(), key=key,
    )
    save_identity(state_dir, identity)
    if isinstance(issued.get("config_key"), str):
        # The key that signs the site documents, pinned now: a later document signed by another is refused.
        write_private_file(state_dir / CONFIG_PIN_FILE, issued["config_key"].encode())
    return identity
