"""Recovery-key escrow: a BitLocker recovery password sealed on the device to the collector's X25519 escrow key.

Sealing is ephemeral X25519 + HKDF-SHA256 + AES-256-GCM. The associated data binds the device, the volume and
the protector: a sealed key copied onto another device's or volume's record does not open. Only the collector,
holding the private half, opens a sealed key, and only when a technician asks it to reveal one.
"""

from __future__ import annotations

import base64
import json
import os

from shared.base import Int, WireModel, fact

# cryptography is imported inside the functions that use it, not above: every agent imports this module for its
# wire models, but seals only when a disk has a recovery protector (its OpenSSL extension costs about 6 MiB).
# Bound into every key derivation and associated data, so a sealed key can never pass for another message.
CONTEXT = b"fieldpost-escrow-v1"
B64_32 = r"^[A-Za-z0-9+/]{43}=$"
# A recovery password is 48 digits; its sealed form is a little longer.
SEALED_MAX = 400
# Why a volume's key cannot be escrowed, by mechanism (said in the signal, so nothing fails silently).
NOT_ESCROWABLE = {
    "filevault": "not escrowable: a FileVault personal recovery key cannot be read back after setup; use an "
                 "institutional recovery key",
    "luks": "escrow not applicable: LUKS has no recovery password (keyslots only)",
}


class SealedKey(WireModel):
    """A recovery password sealed to the collector's escrow key; only the collector can open it."""

    ephemeral: str = fact("Base64 raw X25519 public key made for this one sealing", pattern=B64_32, max_length=44)
    nonce: str = fact("Base64 AES-GCM nonce (12 bytes)", max_length=16)
    ciphertext: str = fact("Base64 AES-256-GCM ciphertext and tag of the recovery password", max_length=SEALED_MAX)


class EscrowedKey(WireModel):
    """One recovery password protector of a volume, sealed in this report or in an earlier one."""

    volume: str = fact("The volume it unlocks (C:)", max_length=256)
    protector_id: str = fact("The protector's id ({GUID}); a new protector gets a new id", max_length=64,
                             pattern=r"^\{[0-9A-Fa-f-]{36}\}$")
    sealed: SealedKey | None = fact("The sealed password; null when it was sent in an earlier report",
                                    default=None)


class Escrow(WireModel):
    """What the device escrowed because its client turned escrow on (absent from the report when off)."""

    round: Int = fact("The escrow round of the site document that asked for it (a new round asks again)",
                      "count", ge=0)
    keys: list[EscrowedKey] = fact("Each recovery password protector of the encrypted volumes",
                                   default_factory=list, max_length=64)
    note: str | None = fact("Why keys could not be escrowed (not escrowable, not applicable, a tool failed)",
                            default=None, max_length=500)


class SealRefused(ValueError):
    """A sealed key that does not open: another device, volume or protector, or altered."""


def new_private_key() -> str:
    """A fresh X25519 escrow private key, raw in base64."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    raw = X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return base64.b64encode(raw).decode()


def public_of(private: str) -> str:
    """The public half (raw, base64) of an escrow private key (raw, base64)."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private))
    return base64.b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


def associated(device: str, volume: str, protector_id: str) -> bytes:
    """What a sealed key is bound to: the device, the volume and the protector (unambiguous JSON)."""
    return CONTEXT + b"\n" + json.dumps([device, volume, protector_id.upper()]).encode()


def _aes_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    """The AES-256 key from an X25519 shared secret, bound to both public keys."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=CONTEXT + ephemeral + recipient).derive(shared)


def seal(public: str, device: str, volume: str, protector_id: str, password: str) -> SealedKey:
    """Seal `password` to the escrow public key (base64), bound to device, volume and protector."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    recipient = base64.b64decode(public, validate=True)
    ephemeral = X25519PrivateKey.generate()
    ephemeral_raw = ephemeral.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _aes_key(ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient)), ephemeral_raw, recipient)
    nonce = os.urandom(12)
    ciphertext = AESGCM(key).encrypt(nonce, password.encode(), associated(device, volume, protector_id))
    return SealedKey(ephemeral=base64.b64encode(ephemeral_raw).decode(), nonce=base64.b64encode(nonce).decode(),
                     ciphertext=base64.b64encode(ciphertext).decode())


def open_sealed(private: str, device: str, volume: str, protector_id: str, sealed: SealedKey) -> str:
    """The password in `sealed`, when it was sealed for this device, volume and protector; SealRefused if not."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    key = X25519PrivateKey.from_private_bytes(base64.b64decode(private))
    recipient = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    try:
        ephemeral = base64.b64decode(sealed.ephemeral, validate=True)
        aes = _aes_key(key.exchange(X25519PublicKey.from_public_bytes(ephemeral)), ephemeral, recipient)
        plain = AESGCM(aes).decrypt(base64.b64decode(sealed.nonce, validate=True),
                                    base64.b64decode(sealed.ciphertext, validate=True),
                                    associated(device, volume, protector_id))
    except (InvalidTag, ValueError) as exc:
        raise SealRefused(f"the sealed key of {volume} {protector_id} does not open for device {device}: it was "
                          "sealed for another device, volume or protector, or altered") from exc
    return plain.decode()
