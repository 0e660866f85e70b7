"""The `reachability` signal: devices without an agent (recorders, cameras, NAS, switches...) as the site's
agents see them, and the signed, versioned site document that tells the agents what to probe (and, when the
client turned recovery-key escrow on, the key to seal recovery passwords to)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Literal, get_args

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import SerializerFunctionWrapHandler, ValidationError, model_serializer, model_validator

from shared.base import PRINTABLE, Int, Signal, Timestamp, WireModel, fact
from shared.escrow import B64_32

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# Where an agent fetches its site's document (a signed GET).
SITE_CONFIG_PATH = "/api/v1/site-config"
# Enough for a small business's recorders, cameras and switches; the document stays small at the bound.
MAX_TARGETS = 64
# The signed document as sent (JSON text plus signature): bigger is refused before it is parsed. The largest
# document the bounds allow (MAX_TARGETS targets with every text at its longest) fits.
MAX_DOCUMENT_BYTES = 256 * 1024
DeviceKind = Literal["camera_recorder", "camera", "nas", "switch", "access_point", "printer", "ups", "router"]
DEVICE_KINDS: tuple[str, ...] = get_args(DeviceKind)
ProbeKind = Literal["icmp", "tcp", "http"]
PROBE_KINDS: tuple[str, ...] = get_args(ProbeKind)
# up: it answered; down: it was asked and did not answer (or answered wrongly); could_not_look: the probe could
# not run here (no ICMP socket allowed, no route), which says nothing about the device.
ProbeState = Literal["up", "down", "could_not_look"]
# A host name or an IPv4/IPv6 address: letters, digits, dots, colons and hyphens only.
ADDRESS = r"^[A-Za-z0-9][A-Za-z0-9.:-]{0,252}$"
# Signed ahead of the document, so that its signature can never pass for one over another kind of message.
SIGNED_PREFIX = b"fieldpost-site-config-v1\n"
HOURS = r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$"


class Target(WireModel):
    """One device without an agent and how to check it, as declared for its site."""

    name: str = fact("The device's name at the site (Recorder, Camera yard, NAS)", min_length=1, max_length=100,
                     pattern=PRINTABLE)
    address: str = fact("Its host name or IP address", min_length=1, max_length=253, pattern=ADDRESS)
    kind: DeviceKind = fact("What it is: " + ", ".join(DEVICE_KINDS))
    probe: ProbeKind = fact("How to check it: icmp (echo), tcp (connect to port) or http (status of url)")
    port: Int | None = fact("TCP port to connect to (probe tcp)", "TCP port", default=None, ge=1, le=65535)
    url: str | None = fact("http:// or https:// URL to fetch (probe http)", default=None, max_length=1024,
                           pattern=r"^https?://[^\s]+$")
    expect_status: Int | None = fact("HTTP status that means up (probe http; default 200)", "HTTP status code",
                                     default=None,
                                     ge=100, le=599)
    tls_days: Int | None = fact("Warn when its TLS certificate expires within this many days (https only)",
                                "days", default=None, ge=1, le=3650)
    hours: str | None = fact("Local hours it is expected to answer, HH:MM-HH:MM; null: always", default=None,
                             pattern=HOURS)

    @model_validator(mode="after")
    def _probe_complete(self) -> Target:
        """A tcp probe needs its port, an http probe its URL; a TLS expiry needs https."""
        if self.probe == "tcp" and self.port is None:
            raise ValueError("a tcp probe needs a port")
        if self.probe == "http" and self.url is None:
            raise ValueError("an http probe needs a url")
        if self.tls_days is not None and not (self.url or "").startswith("https://"):
            raise ValueError("tls_days needs an https:// url")
        return self

    def how(self) -> str:
        """The probe in words: icmp, tcp:554, https://nas/ (200)."""
        if self.probe == "tcp":
            return f"tcp:{self.port}"
        if self.probe == "http":
            return f"{self.url} ({self.expect_status or 200})"
        return "icmp"


class SiteConfig(WireModel):
    """What the collector tells a site's agents to probe: data only, never commands."""

    version: Int = fact("The site's configuration version; it grows with every change", "count", ge=0)
    client: str = fact("The client the document is for", max_length=200)
    site: str = fact("The site the document is for", max_length=200)
    issued_at: Timestamp = fact("When the collector signed it", "ISO 8601 timestamp")
    targets: list[Target] = fact("The devices without an agent to probe", default_factory=list,
                                 max_length=MAX_TARGETS)
    # Absent from documents of clients without escrow (and from older collectors' documents): off.
    escrow: bool = fact("The client turned recovery-key escrow on: send recovery passwords, sealed to escrow_key",
                        default=False)
    escrow_key: str | None = fact("Base64 raw X25519 public key of the collector's escrow key (escrow on)",
                                  default=None, pattern=B64_32, max_length=44)
    escrow_round: Int = fact("Grows each time escrow is turned on or the kept keys are purged: send keys again",
                             "count", default=0, ge=0)

    @model_validator(mode="after")
    def _escrow_has_key(self) -> SiteConfig:
        """Escrow on needs the key to seal to."""
        if self.escrow and self.escrow_key is None:
            raise ValueError("escrow on needs an escrow_key")
        return self

    @model_serializer(mode="wrap")
    def _no_escrow_fields_when_off(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without escrow the document has no escrow fields, so agents older than escrow still accept it."""
        data: dict[str, Any] = handler(self)
        if not self.escrow:
            for name in ("escrow", "escrow_key", "escrow_round"):
                data.pop(name, None)
        return data


class SignedDocument(WireModel):
    """The site document as the collector sends it: its exact JSON text, the signature over it, the signing key."""

    document: str = fact("The SiteConfig as JSON text, exactly the bytes signed", max_length=MAX_DOCUMENT_BYTES)
    signature: str = fact("Base64 Ed25519 signature of 'fieldpost-site-config-v1\\n' and the document",
                          max_length=200)
    key: str = fact("Base64 raw Ed25519 public key that signed it (pinned by the agent at enrolment)",
                    max_length=64)


class DocumentRefused(ValueError):
    """A site document that is too big, not signed by the pinned key, or not a site document; says which."""


def public_key_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The raw Ed25519 public key in base64 (how the collector's configuration key is handed to agents)."""
    # Here, not at the top: the agent imports this module and only verifies (with PyNaCl).
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return base64.b64encode(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def sign_document(key: Ed25519PrivateKey, config: SiteConfig) -> bytes:
    """The signed document as sent: the document's exact JSON text and the signature over those bytes."""
    text = config.model_dump_json()
    signature = base64.b64encode(key.sign(SIGNED_PREFIX + text.encode())).decode()
    return SignedDocument(document=text, signature=signature, key=public_key_text(key)).model_dump_json().encode()


def verify_document(body: bytes, pinned: str) -> SiteConfig:
    """The site document in `body` when it is signed by the `pinned` key (base64); DocumentRefused otherwise."""
    if len(body) > MAX_DOCUMENT_BYTES:
        raise DocumentRefused(f"site document of {len(body)} bytes refused (at most {MAX_DOCUMENT_BYTES})")
    try:
        wrapper = SignedDocument.model_validate_json(body)
        signature = base64.b64decode(wrapper.signature, validate=True)
        key = VerifyKey(base64.b64decode(pinned, validate=True))
        key.verify(SIGNED_PREFIX + wrapper.document.encode(), signature)
    except BadSignatureError as exc:
        raise DocumentRefused("site document not signed by the collector's configuration key") from exc
    except ValueError as exc:  # a ValidationError too
        raise DocumentRefused(f"site document malformed ({type(exc).__name__})") from exc
    try:
        return SiteConfig.model_validate_json(wrapper.document)
    except ValidationError as exc:
        raise DocumentRefused(f"site document does not match the schema: {exc.errors()[0]['msg']}") from exc


class ProbeResult(WireModel):
    """One target as this agent saw it: up, down, or could not look, with latency and loss."""

    target: Target = fact("The declared device and probe, as the site document gave it")
    how: str = fact("The probe as run: icmp, tcp:554, https://nas/ (200); icmp falls back to tcp connects where "
                    "unprivileged echo is not allowed", max_length=1100)
    state: ProbeState = fact("up, down, or could_not_look (the probe could not run here; says nothing of the "
                             "device)")
    sent: Int = fact("Probes sent", "count", ge=0, default=0)
    received: Int = fact("Answers received", "count", ge=0, default=0)
    latency_ms: float | None = fact("Mean round-trip time of the answers", "milliseconds", default=None, ge=0)
    http_status: Int | None = fact("HTTP status received (probe http)", "HTTP status code", default=None,
                                   ge=100, le=599)
    tls_days_left: float | None = fact("Days until the TLS certificate expires (https)", "days", default=None)
    error: str | None = fact("Why it is down or could not be looked at", default=None, max_length=500)

    @property
    def loss_percent(self) -> float | None:
        """Share of probes unanswered, or None when none were sent."""
        return 100.0 * (self.sent - self.received) / self.sent if self.sent else None


class Reachability(Signal):
    """The site's devices without an agent, probed from this device."""

    kind: Literal["reachability"] = "reachability"
    config_version: Int = fact("Version of the site document the targets came from", "count", ge=0)
    results: list[ProbeResult] = fact("One result per declared target", default_factory=list,
                                      max_length=MAX_TARGETS)
