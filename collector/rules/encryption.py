"""The encryption rule: a device's system volume not encrypted, judged by its class and its client's policy;
an encrypted system volume with no recovery protector; with escrow on, a laptop's system volume whose recovery
key was not escrowed (so an escrow failure is never silent).

The client's policy (`[collector.rules.encryption]`, per client `[collector.client_rules."<client>".encryption]`)
names what an unencrypted system volume is for each device class: `warning`, `critical` or `ignore`. By
default a laptop's is a warning (it leaves the office and gets stolen) and a workstation's or server's is
ignored (they stay behind a locked door, and alerting on every office PC on day one buries the laptops);
a device whose class is not known yet is judged as a laptop, so that nothing is hidden.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from collector.rules import AlertRule, Caught, Evaluation, History, RuleSpec, Status, thresholds
from shared.device_class import DEVICE_CLASSES, DeviceClass
from shared.encryption import Encryption, Volume

RULE = "encryption"
SUBJECT = "system-volume"
RECOVERY_RULE = "encryption.recovery"
RECOVERY_SUBJECT = "recovery"
ESCROW_RULE = "encryption.escrow"
ESCROW_SUBJECT = "escrow"
# Volumes a recovery password unlocks (the agent escrows theirs).
PROTECTED = ("encrypted", "encrypting", "suspended")
Verdict = Literal["warning", "critical", "ignore"]
VERDICTS: tuple[str, ...] = get_args(Verdict)
# A device whose class is not known yet (an agent older than classes, a first report) is judged as a laptop.
UNCLASSIFIED: DeviceClass = "laptop"
MECHANISMS = {"bitlocker": "BitLocker", "filevault": "FileVault", "luks": "LUKS"}
# Not protecting the data today, each in words for the summary.
UNPROTECTED = {
    "not_encrypted": "is not encrypted",
    "suspended": "is encrypted but its protection is suspended (the key is stored in the clear)",
    "decrypting": "is being decrypted",
}


@dataclass(frozen=True)
class Policy:
    """What an unencrypted system volume is, per device class; and an encrypted one with no recovery protector."""

    laptop: Verdict = "warning"
    workstation: Verdict = "ignore"
    server: Verdict = "ignore"
    recovery: Verdict = "warning"


def check_policy(values: Mapping[str, Any], where: str) -> None:
    """Refuse a policy naming an unknown key or verdict, with what is allowed (settings are checked at load)."""
    for key, value in values.items():
        if key not in (*DEVICE_CLASSES, "recovery"):
            raise ValueError(f"{where}: unknown key {key!r} (use {', '.join(DEVICE_CLASSES)} or recovery)")
        if value not in VERDICTS:
            raise ValueError(f"{where}.{key}: {value!r} is not one of {', '.join(VERDICTS)}")


def label(volume: Volume) -> str:
    """`C:` or `laptop--vg-root (/)`: the volume as a technician finds it."""
    if volume.mount_point and volume.mount_point != volume.name:
        return f"{volume.name} ({volume.mount_point})"
    return volume.name


def volume_details(signal: Encryption, volume: Volume | None, device_class: DeviceClass) -> dict[str, Any]:
    """What the alert shows besides its summary."""
    details: dict[str, Any] = {"mechanism": signal.mechanism, "device_class": device_class}
    if volume is not None:
        details.update(volume=volume.name, state=volume.state, method=volume.method,
                       percent_encrypted=volume.percent_encrypted, recovery_protector=volume.recovery_protector)
    if signal.errors:
        details["errors"] = list(signal.errors)
    return details


def evaluate_system(signal: Encryption, history: History, policy: Policy) -> Evaluation:
    """The system volume against the policy for the device's class."""
    what = history.device_class or UNCLASSIFIED
    verdict: Verdict = getattr(policy, what)
    volume = signal.system_volume()
    details = volume_details(signal, volume, what)
    mechanism = MECHANISMS[signal.mechanism]
    if verdict == "ignore" and (volume is None or volume.state != "encrypted"):
        return Evaluation(RULE, SUBJECT, "ok", f"encryption of the system volume is not required of a {what} "
                          "by the client's policy", details)
    if volume is None or volume.state == "unknown":
        why = "; ".join(signal.errors) or f"{mechanism} did not say"
        return Evaluation(RULE, SUBJECT, "unknown", f"could not tell whether the system volume is encrypted: {why}",
                          details)
    name = label(volume)
    if volume.state == "encrypted":
        return Evaluation(RULE, SUBJECT, "ok", f"system volume {name} is encrypted ({mechanism})", details)
    if volume.state == "encrypting":
        done = f", {volume.percent_encrypted:g}% done" if volume.percent_encrypted is not None else ""
        return Evaluation(RULE, SUBJECT, "ok", f"{mechanism} is encrypting system volume {name}{done}", details)
    status: Status = "critical" if verdict == "critical" else "warning"
    return Evaluation(RULE, SUBJECT, status,
                      f"{history.hostname} ({what}): system volume {name} {UNPROTECTED[volume.state]}", details)


def evaluate_recovery(signal: Encryption, history: History, policy: Policy) -> list[Evaluation]:
    """An encrypted system volume that nothing but its TPM or password unlocks: one fault and the data is gone."""
    volume = signal.system_volume()
    if volume is None or volume.recovery_protector is None or volume.state not in ("encrypted", "encrypting"):
        return []
    details = volume_details(signal, volume, history.device_class or UNCLASSIFIED)
    name = label(volume)
    if volume.recovery_protector:
        return [Evaluation(RECOVERY_RULE, RECOVERY_SUBJECT, "ok", f"system volume {name} has a recovery protector",
                           details)]
    if policy.recovery == "ignore":
        return [Evaluation(RECOVERY_RULE, RECOVERY_SUBJECT, "ok", f"system volume {name} has no recovery "
                           "protector, which the client's policy allows", details)]
    status: Status = "critical" if policy.recovery == "critical" else "warning"
    return [Evaluation(RECOVERY_RULE, RECOVERY_SUBJECT, status,
                       f"system volume {name} is encrypted with no recovery password or key: a failed TPM or a "
                       "forgotten password loses the data", details)]


def evaluate_escrow(signal: Encryption, history: History) -> list[Evaluation]:
    """With escrow on (the report says so), a laptop's encrypted system volume whose recovery key the device did
    not escrow; LUKS has no recovery password to escrow, which is said, not alerted."""
    what = history.device_class or UNCLASSIFIED
    volume = signal.system_volume()
    if signal.escrow is None or what != "laptop" or volume is None or volume.state not in PROTECTED:
        return []
    details = {**volume_details(signal, volume, what), "escrow_note": signal.escrow.note}
    name = label(volume)
    if any(key.volume == volume.name for key in signal.escrow.keys):
        return [Evaluation(ESCROW_RULE, ESCROW_SUBJECT, "ok", f"recovery key of system volume {name} escrowed",
                           details)]
    why = signal.escrow.note or "no recovery password protector was found"
    if signal.mechanism == "luks":
        return [Evaluation(ESCROW_RULE, ESCROW_SUBJECT, "ok", f"system volume {name}: {why}", details)]
    return [Evaluation(ESCROW_RULE, ESCROW_SUBJECT, "warning", f"{history.hostname}: escrow is on but the "
                       f"recovery key of system volume {name} was not escrowed: {why}", details)]


def evaluate(signal: Encryption, history: History) -> list[Evaluation]:
    """The system volume's encryption, its recovery protector and its escrowed key, each its own alert subject."""
    policy = thresholds(Policy, history.settings, RULE)
    return [evaluate_system(signal, history, policy), *evaluate_recovery(signal, history, policy),
            *evaluate_escrow(signal, history)]


def client_sentence(c: Caught) -> str:
    """What a business owner reads for an unencrypted system disk."""
    done = "; it is encrypted now" if c.outcome != "open" else ""
    return f"The system disk of {c.device} was not encrypted, so a lost or stolen device would expose its data{done}."


def recovery_sentence(c: Caught) -> str:
    """What a business owner reads for an encrypted disk with no recovery key."""
    done = "; a recovery key was added" if c.outcome != "open" else ""
    return f"The encrypted disk of {c.device} had no recovery key, so a forgotten password would lose its data{done}."


def escrow_sentence(c: Caught) -> str:
    """What a business owner reads for a laptop whose recovery key could not be escrowed."""
    done = "; it is escrowed now" if c.outcome != "open" else ""
    return f"The recovery key of {c.device}'s disk could not be kept safe with us{done}."


SPEC = RuleSpec(evaluate, alerts=(
    AlertRule(RULE, subject=SUBJECT, action="turn on BitLocker, FileVault or LUKS for the system volume (or "
              "resume BitLocker protection)", sentence=client_sentence),
    AlertRule(RECOVERY_RULE, subject=RECOVERY_SUBJECT, action="add a recovery password and keep it where the "
              "client can find it (not on the device)", sentence=recovery_sentence),
    AlertRule(ESCROW_RULE, subject=ESCROW_SUBJECT, action="add a BitLocker recovery password (manage-bde "
              "-protectors -add C: -RecoveryPassword) or, on a Mac, an institutional recovery key; the agent "
              "escrows it at its next check", sentence=escrow_sentence),
))
