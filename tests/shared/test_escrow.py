"""A recovery password sealed to the collector's escrow key opens only there, and only for the device, volume
and protector it was sealed for."""

from __future__ import annotations

import base64

import pytest

from shared.escrow import SealRefused, new_private_key, open_sealed, public_of, seal

PASSWORD = "318428-051524-632841-229471-615340-075823-409167-551287"
PROTECTOR = "{4D3E9C2A-6B1F-4E8A-9C7D-2F5B8A1E0C34}"


def test_a_sealed_password_opens_with_the_collectors_key() -> None:
    private = new_private_key()
    sealed = seal(public_of(private), "ag_laptop", "C:", PROTECTOR, PASSWORD)

    assert PASSWORD not in sealed.model_dump_json()
    assert open_sealed(private, "ag_laptop", "C:", PROTECTOR, sealed) == PASSWORD
    # Two sealings of one password look unrelated (a fresh ephemeral key and nonce each time).
    again = seal(public_of(private), "ag_laptop", "C:", PROTECTOR, PASSWORD)
    assert (again.ephemeral, again.ciphertext) != (sealed.ephemeral, sealed.ciphertext)


@pytest.mark.parametrize(("device", "volume", "protector"), [
    ("ag_other", "C:", PROTECTOR),  # replayed onto another device's record
    ("ag_laptop", "D:", PROTECTOR),  # onto another volume
    ("ag_laptop", "C:", "{00000000-0000-4000-8000-000000000000}"),  # onto another protector
])
def test_a_sealed_key_moved_to_another_record_is_refused(device: str, volume: str, protector: str) -> None:
    private = new_private_key()
    sealed = seal(public_of(private), "ag_laptop", "C:", PROTECTOR, PASSWORD)

    with pytest.raises(SealRefused, match="does not open"):
        open_sealed(private, device, volume, protector, sealed)


def test_an_altered_sealed_key_or_another_collectors_key_is_refused() -> None:
    private = new_private_key()
    sealed = seal(public_of(private), "ag_laptop", "C:", PROTECTOR, PASSWORD)
    raw = bytearray(base64.b64decode(sealed.ciphertext))
    raw[0] ^= 1
    altered = sealed.model_copy(update={"ciphertext": base64.b64encode(bytes(raw)).decode()})

    with pytest.raises(SealRefused):
        open_sealed(private, "ag_laptop", "C:", PROTECTOR, altered)
    with pytest.raises(SealRefused):
        open_sealed(new_private_key(), "ag_laptop", "C:", PROTECTOR, sealed)
