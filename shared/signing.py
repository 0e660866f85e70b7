"""Request signatures: an agent signs method, path, time and body digest with its Ed25519 key."""

from __future__ import annotations

import base64
import hashlib

from nacl.signing import SigningKey

AGENT_HEADER = "X-Fieldpost-Agent"
TIME_HEADER = "X-Fieldpost-Timestamp"
SIGNATURE_HEADER = "X-Fieldpost-Signature"


def enrol_request(key: SigningKey, token: str, hostname: str) -> dict[str, str]:
    """The body of `POST /api/v1/enrol`: the token, the raw public key in base64, the hostname."""
    return {"token": token, "public_key": base64.b64encode(key.verify_key.encode()).decode(), "hostname": hostname}


def signed_message(agent_id: str, method: str, path: str, timestamp: int, body: bytes) -> bytes:
    """The exact bytes that are signed: everything a replay or a tamper would have to change."""
    digest = hashlib.sha256(body).hexdigest()
    return f"fieldpost-v1\n{agent_id}\n{method.upper()}\n{path}\n{timestamp}\n{digest}".encode()


def sign_headers(
    key: SigningKey, agent_id: str, method: str, path: str, body: bytes, timestamp: int
) -> dict[str, str]:
    """HTTP headers that authenticate one request."""
    signature = key.sign(signed_message(agent_id, method, path, timestamp, body)).signature
    return {
        AGENT_HEADER: agent_id,
        TIME_HEADER: str(timestamp),
        SIGNATURE_HEADER: base64.b64encode(signature).decode(),
    }

