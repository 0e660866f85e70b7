"""The encryption check: BitLocker, FileVault or LUKS state of the device's volumes, the system volume marked.

Recovery keys are not read unless the client turned escrow on: each provider asks its tool only whether a
recovery protector exists (BitLocker's protector *types*, `fdesetup haspersonalrecoverykey`). With escrow on
(in the verified site document, never by a command) BitLocker's recovery passwords are read and sent only
sealed to the collector's escrow key (see `agent.checks.encryption.escrow`).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import ClassVar, Protocol, cast, runtime_checkable

from agent.checks import CheckContext, ProviderCheck, platform_provider
from agent.checks.encryption.escrow import escrow, escrow_document
from agent.commands import CommandResult, Runner
from shared.base import Signal
from shared.encryption import Encryption


class Provider(Protocol):
    """One platform's way of reading disk encryption."""

    def collect(self, now: datetime) -> Encryption: ...


@runtime_checkable
class Escrowable(Protocol):
    """A platform whose recovery passwords can be read back (BitLocker), for escrow."""

    def recovery_passwords(self, volume: str) -> list[tuple[str, str]]: ...


def checked_run(run: Runner, argv: Sequence[str], timeout: float = 60.0) -> CommandResult:
    """Run a tool (C locale, bounded by `timeout`); a non-zero exit raises with what it said, so the check
    reports unknown rather than 'not encrypted'."""
    result = run(argv, timeout=timeout)
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip())[:300]
        raise RuntimeError(f"{argv[0]} {argv[1] if len(argv) > 1 else ''} failed ({result.returncode}): {said}")
    return result


def provider_for(platform: str, context: CheckContext) -> Provider:
    """The provider for `platform` (a sys.platform value)."""
    names = {"windows": "BitLockerProvider", "darwin": "FileVaultProvider", "linux": "LuksProvider"}
    return cast(Provider, platform_provider(__name__, names, platform, context))


class EncryptionCheck(ProviderCheck[Provider]):
    """Reports each volume's encryption state and whether a recovery protector exists; never a key."""

    provider_for = staticmethod(provider_for)
    kind: ClassVar[str] = "encryption"
    timeout: ClassVar[float] = 120.0
    # Encryption changes rarely, and only by someone's hand: a few times a day is enough.
    default_interval: ClassVar[float] = 6 * 3600.0

    def collect(self) -> list[Signal]:
        """One encryption signal; with escrow on, the recovery passwords in it, sealed."""
        signal = self.provider.collect(self.context.clock())
        state_dir = self.context.state_dir
        config = escrow_document(state_dir)
        if config is None or state_dir is None:
            return [signal]
        read = self.provider.recovery_passwords if isinstance(self.provider, Escrowable) else None
        return [signal.model_copy(update={"escrow": escrow(signal, config, state_dir, read)})]
