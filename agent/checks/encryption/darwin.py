"""macOS provider: `fdesetup status` for FileVault on the startup volume, and whether a recovery key exists."""

from __future__ import annotations

import re
from datetime import datetime

from agent.checks import CheckContext
from agent.checks.encryption import checked_run
from shared.encryption import Encryption, Volume, VolumeState

PROGRESS = re.compile(r"(Encryption|Decryption) in progress:.*?Percent completed = ([\d.]+)", re.IGNORECASE)
STARTUP_VOLUME = "startup volume"


def parse_status(stdout: str) -> tuple[VolumeState, float | None]:
    """The startup volume's state and percentage from `fdesetup status`; unknown for words it does not know."""
    progress = PROGRESS.search(stdout)
    if progress:
        percent = min(float(progress[2]), 100.0)
        return ("encrypting" if progress[1].lower() == "encryption" else "decrypting"), percent
    if "FileVault is On." in stdout:
        return "encrypted", 100.0
    # "FileVault is Off, but will be enabled after the next restart." is still off today.
    if "FileVault is Off" in stdout:
        return "not_encrypted", 0.0
    return "unknown", None


def parse_bool(stdout: str) -> bool | None:
    """`true` or `false` as `fdesetup has...recoverykey` prints it; None for anything else."""
    word = stdout.strip().lower()
    return {"true": True, "false": False}.get(word)


class FileVaultProvider:
    """FileVault state of the startup volume."""

    def __init__(self, context: CheckContext) -> None:
        self.context = context

    def recovery_key_exists(self, errors: list[str]) -> bool | None:
        """Whether a personal or institutional recovery key is set (the answer is true/false, never a key)."""
        answers = []
        for verb in ("haspersonalrecoverykey", "hasinstitutionalrecoverykey"):
            result = self.context.run(["fdesetup", verb], timeout=30.0)
            answer = parse_bool(result.stdout) if result.returncode == 0 else None
            if answer is None:
                errors.append(f"fdesetup {verb} failed ({result.returncode}): {result.stderr.strip()[:200]}")
            answers.append(answer)
        if True in answers:
            return True
        return False if answers == [False, False] else None

    def collect(self, now: datetime) -> Encryption:
        """Ask fdesetup; a failure raises (unknown), words it does not know give an unknown volume state."""
        state, percent = parse_status(checked_run(self.context.run, ["fdesetup", "status"], timeout=30.0).stdout)
        errors: list[str] = []
        recovery = self.recovery_key_exists(errors) if state != "not_encrypted" else None
        volume = Volume(name=STARTUP_VOLUME, mount_point="/", system=True, state=state,
                        percent_encrypted=percent, recovery_protector=recovery)
        return Encryption(collected_at=now, mechanism="filevault", volumes=[volume], errors=errors)
