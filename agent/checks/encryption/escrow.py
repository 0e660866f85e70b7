"""Recovery-key escrow on the device: only when the verified site document says the client turned it on, the
recovery passwords are read, each sealed at once to the collector's escrow key; the plaintext never lands on
disk. A protector is sent once per escrow round (its id kept in the state directory, never its password)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from agent.identity import IdentityError, load_identity, write_private_file
from agent.site_config import stored_document
from shared.encryption import Encryption
from shared.escrow import NOT_ESCROWABLE, Escrow, EscrowedKey, seal
from shared.reachability import DocumentRefused, SiteConfig

log = logging.getLogger(__name__)

SENT_FILE = "escrowed.json"
# Volumes whose recovery passwords are worth escrowing: those whose data a password unlocks.
PROTECTED = ("encrypted", "encrypting", "suspended")
# A volume's recovery password protectors: (protector id, password); raises RuntimeError saying why not.
ReadPasswords = Callable[[str], list[tuple[str, str]]]


def escrow_document(state_dir: Path | None) -> SiteConfig | None:
    """The kept site document when it is verified and says escrow on; None otherwise (escrow stays off)."""
    if state_dir is None:
        return None
    try:
        config = stored_document(state_dir)
    except DocumentRefused as exc:
        log.warning("recovery-key escrow off: %s", exc)
        return None
    return config if config is not None and config.escrow and config.escrow_key else None


def sent_before(state_dir: Path, config: SiteConfig) -> set[str]:
    """The protectors sent in this escrow round to this escrow key (`volume|id`); a new round sends all again."""
    try:
        kept = json.loads((state_dir / SENT_FILE).read_text())
    except (OSError, ValueError):
        return set()
    if not isinstance(kept, dict) or (kept.get("key"), kept.get("round")) != (config.escrow_key,
                                                                               config.escrow_round):
        return set()
    return {str(item) for item in kept.get("sent") or []}


def escrow(signal: Encryption, config: SiteConfig, state_dir: Path, read: ReadPasswords | None) -> Escrow:
    """The escrow part of the signal: each recovery password of the encrypted volumes, sealed to the escrow key
    (or only its id when sent before in this round), or why none could be escrowed."""
    assert config.escrow_key is not None  # escrow_document only gives documents with escrow on
    if read is None or signal.mechanism in NOT_ESCROWABLE:
        return Escrow(round=config.escrow_round, note=NOT_ESCROWABLE.get(signal.mechanism, "not escrowable"))
    try:
        device = load_identity(state_dir).agent_id
    except IdentityError as exc:
        return Escrow(round=config.escrow_round, note=f"not escrowed: {exc}")
    sent = sent_before(state_dir, config)
    keys: list[EscrowedKey] = []
    problems: list[str] = []
    for volume in signal.volumes:
        if volume.state not in PROTECTED or not volume.recovery_protector:
            continue
        try:
            found = read(volume.name)
        except RuntimeError as exc:
            problems.append(str(exc))
            continue
        for protector_id, password in found:
            name = f"{volume.name}|{protector_id}"
            sealed = None if name in sent else seal(config.escrow_key, device, volume.name, protector_id, password)
            keys.append(EscrowedKey(volume=volume.name, protector_id=protector_id, sealed=sealed))
    write_private_file(state_dir / SENT_FILE, json.dumps({
        "key": config.escrow_key, "round": config.escrow_round,
        "sent": sorted(f"{key.volume}|{key.protector_id}" for key in keys)}).encode())
    return Escrow(round=config.escrow_round, keys=keys, note="; ".join(problems)[:500] or None)
