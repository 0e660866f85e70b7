"""The wire schema: one versioned envelope carrying typed signals from an agent to the collector."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, model_validator

from shared.backup_results import BackupResults
from shared.base import PRINTABLE, HardwareAddress, Int, IPInterface, IPv4, Signal, Timestamp, WireModel, fact
from shared.device_class import DeviceClass
from shared.disk_health import DiskHealth
from shared.encryption import Encryption
from shared.pending_reboot import PendingReboot
from shared.printer_ip_conflict import PrinterIpConflict
from shared.reachability import Reachability
from shared.security_center import SecurityCenter
from shared.updates import Updates

SCHEMA_VERSION = 1
MAX_SIGNALS_PER_ENVELOPE = 200
# One check run yields one signal of its kind, and the agent queues one envelope per run: more of one kind
# is no agent's report, and the collector's work (history reads, rules) grows with it.
MAX_OF_ONE_KIND_PER_ENVELOPE = 10
MAX_ENVELOPES_PER_UPLOAD = 100
# A backlog of one signal of a kind per envelope always fits in one upload.
MAX_OF_ONE_KIND_PER_UPLOAD = MAX_ENVELOPES_PER_UPLOAD
ERROR_MAX = 2000  # characters of a check's failure text; the agent cuts longer ones
# The stream of an envelope that names none: agents from before epochs, and outboxes they created.
LEGACY_EPOCH = "legacy"


class Interface(WireModel):
    """One network interface of the device."""

    name: str = fact("Interface name as the OS shows it")
    mac: HardwareAddress | None = fact(
        "Hardware address, lower-case colon-separated", "MAC-48 (or longer)", default=None
    )
    addresses: list[IPInterface] = fact("IPv4/IPv6 addresses with prefix length", "CIDR", default_factory=list)


class FilesystemUse(WireModel):
    """Space used on one mounted filesystem, as summarised in the heartbeat."""

    mount: str = fact("Mount point or drive letter")
    total_bytes: Int = fact("Size of the filesystem", "bytes", ge=0)
    used_bytes: Int = fact("Space in use", "bytes", ge=0)


class UserSession(WireModel):
    """One logged-on user session."""

    name: str = fact("User name")
    terminal: str | None = fact("Terminal or session name (console, rdp-tcp#0, pts/1)", default=None)
    host: str | None = fact("Remote host the session comes from, if any", default=None)
    started_at: Timestamp | None = fact("When the session started", "ISO 8601 timestamp", default=None)


class Heartbeat(Signal):
    """The device is alive: who and what it is, and a summary of its load."""

    kind: Literal["heartbeat"] = "heartbeat"
    hostname: str = fact("Host name of the device", min_length=1, max_length=255, pattern=PRINTABLE)
    os_name: str = fact("Operating system family (Windows, Linux, Darwin)")
    os_version: str = fact("Operating system release and version")
    agent_version: str = fact("fieldpost agent version")
    boot_time: Timestamp = fact("When the device last booted", "ISO 8601 timestamp")
    uptime_seconds: float = fact("Time since boot", "seconds", ge=0)
    interfaces: list[Interface] = fact("Network interfaces with addresses", default_factory=list)
    default_gateway: IPv4 | None = fact("Default IPv4 gateway address", "IPv4 address", default=None)
    cpu_count: Int = fact("Logical CPUs", "count", ge=1)
    cpu_percent: float = fact("CPU use over the last sampling interval", "percent", ge=0, le=100)
    memory_total_bytes: Int = fact("Physical memory", "bytes", ge=0)
    memory_used_percent: float = fact("Physical memory in use", "percent", ge=0, le=100)
    filesystems: list[FilesystemUse] = fact("Space used per mounted filesystem", default_factory=list)
    users: list[UserSession] = fact("Logged-on user sessions", default_factory=list)
    refused_reports: Int = fact(
        "Reports in the agent's outbox that the collector refused as never acceptable (kept there, not resent)",
        "count", ge=0, default=0,
    )
    last_refusal: str | None = fact("The collector's reason for the newest refused report", default=None,
                                    max_length=ERROR_MAX)
    last_refusal_queued_at: Timestamp | None = fact(
        "When the newest refused report was collected and queued", "ISO 8601 timestamp", default=None
    )
    outbox_warning: str | None = fact(
        "What went wrong with the agent's outbox itself (a damaged file moved aside and a new one started, "
        "routine reports dropped to stay within its bounds)",
        default=None, max_length=ERROR_MAX,
    )
    outbox_warning_at: Timestamp | None = fact("When that went wrong", "ISO 8601 timestamp", default=None)
    dropped_reports: Int = fact(
        "Routine reports the agent's outbox dropped, oldest first, to stay within its bounds (since it was created)",
        "count", ge=0, default=0,
    )
    device_class: DeviceClass | None = fact(
        "What the device is, as its agent sees it: server (a server OS), laptop (has a battery) or workstation; "
        "it sets what is expected of it (a server is always on, a workstation during business hours)",
        default=None,
    )


class Unknown(Signal):
    """A check could not look: the facts are unknown, never assumed healthy."""

    kind: Literal["unknown"] = "unknown"
    check: str = fact("Name of the check that could not collect (e.g. disk_health)")
    error: str = fact("Why the check could not collect, including what to do about it when known",
                      max_length=ERROR_MAX)


KnownSignal = (
    Heartbeat | Unknown | DiskHealth | PendingReboot | Updates | BackupResults | PrinterIpConflict
    | Encryption | SecurityCenter | Reachability
)
AnySignal = Annotated[KnownSignal, Field(discriminator="kind")]


class Envelope(WireModel):
    """One upload from one agent: a sequence-numbered batch of signals."""

    schema_version: Literal[1] = fact("Wire schema version; the collector rejects versions it does not know", "version")
    agent_id: str = fact("Agent id issued at enrolment", min_length=1, max_length=64)
    epoch: str | None = fact(
        "The agent's stream: a random id chosen when its outbox was created (a new one after a lost or damaged "
        f"outbox); sequence numbers count within it. Absent: the {LEGACY_EPOCH!r} stream of older agents",
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$", default=None,
    )
    seq: Int = fact("Per-stream sequence number, increasing by one per envelope, kept across restarts",
                    "count", ge=1)
    boot_id: str = fact("Identifier of the device's current boot; changes at every reboot",
                        min_length=1, max_length=64)
    sent_at: Timestamp = fact("When the agent first queued this envelope", "ISO 8601 timestamp")
    signals: list[AnySignal] = fact(f"The signals carried, at most {MAX_OF_ONE_KIND_PER_ENVELOPE} of one kind",
                                    min_length=1, max_length=MAX_SIGNALS_PER_ENVELOPE)

    @model_validator(mode="after")
    def _few_of_one_kind(self) -> Envelope:
        """Refuse an envelope with more than MAX_OF_ONE_KIND_PER_ENVELOPE signals of one kind."""
        _refuse_crowded(self.signals, MAX_OF_ONE_KIND_PER_ENVELOPE, "envelope")
        return self


class ReportBatch(WireModel):
    """The body of `POST /api/v1/reports`: one or more envelopes from the same agent, oldest first."""

    envelopes: list[Envelope] = fact(
        f"Envelopes in sequence order, with at most {MAX_OF_ONE_KIND_PER_UPLOAD} signals of one kind in all",
        min_length=1, max_length=MAX_ENVELOPES_PER_UPLOAD,
    )

    @model_validator(mode="after")
    def _few_of_one_kind(self) -> ReportBatch:
        """Refuse an upload with more than MAX_OF_ONE_KIND_PER_UPLOAD signals of one kind."""
        _refuse_crowded([s for e in self.envelopes for s in e.signals], MAX_OF_ONE_KIND_PER_UPLOAD, "upload")
        return self


def _refuse_crowded(signals: list[Signal], limit: int, where: str) -> None:
    """Raise naming the kind when more than `limit` of `signals` are of one kind."""
    if len(signals) <= limit:
        return  # no kind can be crowded: the common case, a few signals, costs no count
    kind, count = Counter(s.kind for s in signals).most_common(1)[0] if signals else ("", 0)
    if count > limit:
        raise ValueError(f"{count} {kind} signals in one {where}; at most {limit} of one kind are accepted")


SIGNAL_ADAPTER: TypeAdapter[KnownSignal] = TypeAdapter(AnySignal)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a report batch, as the collector accepts it."""
    return ReportBatch.model_json_schema()
