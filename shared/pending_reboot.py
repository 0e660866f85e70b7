"""The `pending_reboot` signal: whether the device waits for a reboot, why, since when, and who is on."""

from __future__ import annotations

from typing import Literal

from shared.base import Signal, Timestamp, WireModel, fact

Confidence = Literal["high", "low"]
RebootActionName = Literal["reboot", "warn_then_reboot", "skip"]
SessionState = Literal["active", "disconnected", "locked"]


class RebootReason(WireModel):
    """One indicator that a reboot is pending, with how far it can be trusted."""

    source: str = fact("Stable name of the indicator (e.g. cbs-reboot-pending, reboot-required-file)")
    confidence: Confidence = fact(
        "high: the OS or its updater says a reboot is needed; "
        "low: often set by other software (shown, not alerted)"
    )
    detail: str = fact("What the indicator says, for a technician (package names, key path, kernel versions)")


class InteractiveSession(WireModel):
    """One logged-on user session, with its idle time where the OS lets us see it."""

    user: str = fact("User name")
    terminal: str | None = fact("Terminal or session name (console, tty1, pts/0, rdp-tcp#0)", default=None)
    started: Timestamp | None = fact("When the session started", "ISO 8601 timestamp", default=None)
    idle_seconds: float | None = fact(
        "Time since the user last typed in this session; null when the OS does not tell",
        "seconds",
        default=None,
        ge=0,
    )
    state: SessionState | None = fact(
        "active, disconnected (remote session left running) or locked; null where the OS does not tell",
        default=None,
    )


class RebootAction(WireModel):
    """What the agent's reboot policy last decided, and why."""

    policy: str = fact("Reboot policy in force (never, when-required-and-idle, when-required)")
    action: RebootActionName = fact("What the agent did: reboot, warn_then_reboot or skip")
    reason: str = fact("Why, in words (e.g. 'skipped: user session active since 17:42')")
    decided_at: Timestamp = fact("When the policy was applied", "ISO 8601 timestamp")


class PolicyReboot(WireModel):
    """The reboot policy's last reboot of the device, and the reasons it did not clear."""

    rebooted_at: Timestamp = fact("When the policy rebooted the device", "ISO 8601 timestamp")
    not_cleared: list[RebootReason] = fact(
        "High-confidence reasons seen before that reboot and still present after it", default_factory=list
    )


class PendingReboot(Signal):
    """The device's pending-reboot state: reasons, age, boot identity and logged-on users."""

    kind: Literal["pending_reboot"] = "pending_reboot"
    pending: bool = fact(
        "A high-confidence reason says a reboot is needed (low-confidence reasons alone do not)"
    )
    reasons: list[RebootReason] = fact("Every indicator found, high and low confidence", default_factory=list)
    pending_since: Timestamp | None = fact(
        "Earliest time a high-confidence reason of this boot is known to have been set (the OS's date, "
        "else when the agent first saw it); null when neither is known",
        "ISO 8601 timestamp",
        default=None,
    )
    boot_time: Timestamp | None = fact("When the device last booted", "ISO 8601 timestamp", default=None)
    boot_id: str | None = fact(
        "Identifier of the current boot; changes at every reboot", default=None, max_length=64
    )
    sessions: list[InteractiveSession] = fact("Logged-on user sessions", default_factory=list)
    last_action: RebootAction | None = fact("The reboot policy's last decision on this device", default=None)
    policy_reboot: PolicyReboot | None = fact(
        "The policy's last reboot when reasons survived it (the policy will not reboot for those again)",
        default=None,
    )
    errors: list[str] = fact(
        "What could not be read, beside the reasons that were (e.g. PowerShell blocked by AppLocker)",
        default_factory=list,
    )
