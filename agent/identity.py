"""The agent's identity: its Ed25519 key pair and the agent id the collector issued at enrolment."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import aiohttp
from nacl.signing import SigningKey

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
# The key file is PKCS8 PEM as OpenSSL writes it. An Ed25519 key's PKCS8 DER (RFC 8410) is this fixed prefix and
# the 32-byte seed, so it is written and read by hand: the agent never loads cryptography's OpenSSL extension.
PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")
PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY)-----(.*?)-----END \1-----", re.DOTALL)


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
    key: SigningKey


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


def key_pem(key: SigningKey) -> bytes:
    """The key as unencrypted PKCS8 PEM, byte for byte what OpenSSL (and cryptography) writes."""
    der = base64.b64encode(PKCS8_ED25519 + key.encode())  # 64 characters: one line
    return b"-----BEGIN PRIVATE KEY-----\n" + der + b"\n-----END PRIVATE KEY-----\n"


def key_from_pem(pem: bytes) -> SigningKey:
    """The Ed25519 key in an unencrypted PKCS8 PEM; `ValueError` saying what is wrong when it is not one."""
    block = PEM_BLOCK.search(pem)
    if block is None:
        raise ValueError("not a readable PEM private key: no BEGIN and END PRIVATE KEY lines")
    try:
        der = base64.b64decode(b"".join(block[2].split()), validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not a readable PEM private key: {exc}") from exc
    if block[1] == b"ENCRYPTED PRIVATE KEY":
        raise ValueError("not a readable PEM private key: it is encrypted (the agent keeps its key unencrypted, "
                         "readable by its account only)")
    if block[1] != b"PRIVATE KEY" or not der.startswith(PKCS8_ED25519):
        raise ValueError("not an Ed25519 private key")
    if len(der) != len(PKCS8_ED25519) + 32:
        raise ValueError(f"not a readable PEM private key: {len(der)} bytes where an Ed25519 key has 48")
    return SigningKey(der[len(PKCS8_ED25519):])


def load_key(path: Path) -> SigningKey:
    """The agent's private key, or `DamagedIdentity` saying what is wrong with its file."""
    try:
        return key_from_pem(path.read_bytes())
    except OSError as exc:
        raise DamagedIdentity(path, exc.strerror or type(exc).__name__) from exc
    except ValueError as exc:
        raise DamagedIdentity(path, str(exc)) from exc


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
    write_private_file(state_dir / KEY_FILE, key_pem(identity.key))
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
        key = SigningKey.generate()
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
