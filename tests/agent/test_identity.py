"""Enrolment and identity: key pair, owner-only key file (OpenSSL's PKCS8 PEM, read and written without it),
refusal to enrol twice, collector's reasons."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import unused_port
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

from agent.identity import (
    IDENTITY_FILE,
    KEY_FILE,
    DamagedIdentity,
    EnrolmentError,
    NotEnrolled,
    enrol,
    load_identity,
    save_identity,
    write_private_file,
)
from agent.outbox import OUTBOX_FILE, Outbox
from shared.signing import signed_message
from tests.agent.support import T0, heartbeat, loopback_server, make_identity


class Enrolments:
    """A loopback enrol endpoint answering from a script; records what agents sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.url = ""

    async def enrol(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        status, body = (
            self.answers.pop(0)
            if self.answers
            else (
                201,
                {"agent_id": f"ag_{len(self.requests)}", "client": "Acme Tooling", "site": "Main office"},
            )
        )
        return web.json_response(body, status=status)


def files_in(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


@pytest.fixture
async def enrolments() -> AsyncIterator[Enrolments]:
    fake = Enrolments()
    async with loopback_server("/api/v1/enrol", fake.enrol) as fake.url:
        yield fake


async def test_enrolment_registers_a_fresh_public_key_and_keeps_the_issued_identity(
    state_dir: Path, enrolments: Enrolments
) -> None:
    identity = await enrol(state_dir, enrolments.url + "/", "tok-123", hostname="pc-01")
    [sent] = enrolments.requests
    assert (sent["token"], sent["hostname"]) == ("tok-123", "pc-01")
    public = identity.key.verify_key.encode()
    assert base64.b64decode(sent["public_key"]) == public
    assert len(public) == 32

    loaded = load_identity(state_dir)
    assert (loaded.agent_id, loaded.client, loaded.site) == ("ag_1", "Acme Tooling", "Main office")
    assert loaded.collector_url == enrolments.url
    assert loaded.enrolled_at == identity.enrolled_at
    assert loaded.key.verify_key.encode() == public
    assert set(json.loads((state_dir / IDENTITY_FILE).read_text())) == {
        "agent_id",
        "collector_url",
        "client",
        "site",
        "enrolled_at",
    }


async def test_the_private_key_is_readable_by_its_owner_only(state_dir: Path, enrolments: Enrolments) -> None:
    old = os.umask(0)  # even a permissive umask must not widen the key file
    try:
        await enrol(state_dir, enrolments.url, "tok")
    finally:
        os.umask(old)
    assert stat.S_IMODE((state_dir / KEY_FILE).stat().st_mode) == 0o600
    assert files_in(state_dir) == sorted([IDENTITY_FILE, KEY_FILE]), "no temporary file is left behind"


async def test_the_state_dir_and_every_file_in_it_are_owner_only_under_the_usual_umask(
    tmp_path: Path, enrolments: Enrolments
) -> None:
    state_dir = tmp_path / "var" / "state"
    state_dir.parent.mkdir()
    state_dir.mkdir(mode=0o755)  # left wide by an earlier version or by hand
    old = os.umask(0o022)
    try:
        identity = await enrol(state_dir, enrolments.url, "tok")
        outbox = Outbox(state_dir / OUTBOX_FILE, identity.agent_id, "boot-1")
        outbox.put([heartbeat()], now=T0)
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state_dir.iterdir()}
        outbox.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert modes == {name: 0o600 for name in (KEY_FILE, IDENTITY_FILE, OUTBOX_FILE, f"{OUTBOX_FILE}-wal",
                                              f"{OUTBOX_FILE}-shm")}


def test_a_private_file_is_replaced_atomically_and_keeps_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    target.write_text("old")
    target.chmod(0o644)
    write_private_file(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


async def test_it_refuses_to_enrol_twice_unless_forced(state_dir: Path, enrolments: Enrolments) -> None:
    first = await enrol(state_dir, enrolments.url, "tok")
    with pytest.raises(EnrolmentError, match=r"already enrolled.*--force"):
        await enrol(state_dir, enrolments.url, "tok")
    assert len(enrolments.requests) == 1
    again = await enrol(state_dir, enrolments.url, "tok", force=True)
    assert again.agent_id != first.agent_id
    assert load_identity(state_dir).agent_id == again.agent_id


async def test_a_refused_token_reports_the_collectors_reason_and_writes_nothing(
    state_dir: Path, enrolments: Enrolments
) -> None:
    enrolments.answers = [(401, {"error": "enrolment token expired"})]
    with pytest.raises(EnrolmentError, match=r"refused enrolment \(HTTP 401\): enrolment token expired$"):
        await enrol(state_dir, enrolments.url, "tok")
    assert files_in(state_dir) == []


async def test_validation_problems_are_named(state_dir: Path, enrolments: Enrolments) -> None:
    problem = {"field": "hostname", "message": "String should have at least 1 character"}
    enrolments.answers = [
        (422, {"error": "enrolment request does not match the schema", "problems": [problem]})
    ]
    with pytest.raises(EnrolmentError, match=r"\(hostname: String should have at least 1 character\)"):
        await enrol(state_dir, enrolments.url, "tok")


async def test_an_unreachable_collector_is_said_to_be_so(state_dir: Path) -> None:
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(EnrolmentError, match=re.escape(f"cannot reach the collector at {url}/api/v1/enrol")):
        await enrol(state_dir, url, "tok")
    assert files_in(state_dir) == []


async def test_an_unwritable_state_directory_is_found_before_contacting_the_collector(
    tmp_path: Path, enrolments: Enrolments
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    with pytest.raises(EnrolmentError, match="cannot create the state directory"):
        await enrol(blocker / "state", enrolments.url, "tok")
    assert enrolments.requests == []


def test_loading_before_enrolment_says_how_to_enrol(state_dir: Path) -> None:
    how = "run fieldpost-agent enroll --collector URL --token TOKEN"
    with pytest.raises(NotEnrolled, match=rf"^not enrolled \(no .*identity\.json\): {how}$"):
        load_identity(state_dir)


def pkcs8(key: Any, encoding: Encoding = Encoding.PEM) -> bytes:
    """A private key as unencrypted PKCS8, written by cryptography (OpenSSL)."""
    return key.private_bytes(encoding, PrivateFormat.PKCS8, NoEncryption())


def pem(der: bytes) -> bytes:
    """DER bytes in a PEM private key block."""
    return b"-----BEGIN PRIVATE KEY-----\n" + base64.encodebytes(der) + b"-----END PRIVATE KEY-----\n"


def test_a_key_file_written_by_cryptography_loads_and_signs_as_cryptography_does(state_dir: Path) -> None:
    written = Ed25519PrivateKey.generate()  # how agents before PyNaCl made and kept their key
    save_identity(state_dir, make_identity())
    (state_dir / KEY_FILE).write_bytes(pkcs8(written))
    message = signed_message("ag_test", "POST", "/api/v1/reports", 1714978800, b'{"envelopes": []}')
    # Ed25519 signatures are deterministic: the same key signs the same message with the same bytes.
    assert load_identity(state_dir).key.sign(message).signature == written.sign(message)


def test_the_key_file_the_agent_writes_is_the_pkcs8_pem_cryptography_writes(state_dir: Path) -> None:
    identity = make_identity()
    save_identity(state_dir, identity)
    written = (state_dir / KEY_FILE).read_bytes()
    read = load_pem_private_key(written, password=None)
    assert isinstance(read, Ed25519PrivateKey)
    assert read.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == identity.key.verify_key.encode()
    assert pkcs8(read) == written


NOT_ED25519 = "not an Ed25519 private key"
UNREADABLE = "not a readable PEM private key"
WRONG_KEYS = {
    "an RSA key": (lambda: pkcs8(rsa.generate_private_key(65537, 2048)), NOT_ED25519),
    "an EC key": (lambda: ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.TraditionalOpenSSL, NoEncryption()), NOT_ED25519),
    "an X25519 key (same length, another algorithm)": (lambda: pkcs8(X25519PrivateKey.generate()), NOT_ED25519),
    "an Ed25519 key cut short": (lambda: pem(pkcs8(Ed25519PrivateKey.generate(), Encoding.DER)[:-1]),
                                 f"{UNREADABLE}: 47 bytes where an Ed25519 key has 48"),
    "a passphrase-protected Ed25519 key": (lambda: Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, BestAvailableEncryption(b"secret")), f"{UNREADABLE}: it is encrypted"),
    "bad base64": (lambda: b"-----BEGIN PRIVATE KEY-----\nMC4C*QAw\n-----END PRIVATE KEY-----\n", UNREADABLE),
    "garbage": (lambda: b"\x00\xff\x13 not a key", UNREADABLE),
    "no END line": (lambda: b"-----BEGIN PRIVATE KEY-----\nMC4CAQAw", UNREADABLE),
}


@pytest.mark.parametrize("wrong", list(WRONG_KEYS))
def test_a_key_file_without_a_usable_ed25519_key_is_damaged_and_says_why(state_dir: Path, wrong: str) -> None:
    content, problem = WRONG_KEYS[wrong]
    save_identity(state_dir, make_identity())
    path = state_dir / KEY_FILE
    path.write_bytes(content())
    expected = f"{path} is damaged or unreadable ({problem}"
    with pytest.raises(DamagedIdentity, match=f"^{re.escape(expected)}"):
        load_identity(state_dir)
